"""Parse a free-form Markdown spec (English or Japanese) into a Spec, and lint what planning needs."""

from __future__ import annotations

import json
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from sddtui.errors import SddtuiError
from sddtui.i18n import translate
from sddtui.spec.model import Architecture, Requirement, Section, Spec

# Section kinds, each matched by a whole normalised title (bullet and bold headings) and, for `#`
# headings only, by a keyword inside the title. Order matters: "Testing Source" is a test section
# before it is a source section, and "非機能要件" is a constraint before it is a function.
_EXACT_TITLES: dict[str, str] = {
    "tests": r"(unit |instrumented )?(testing|tests?)( sources?| structure| code| roots?| director(y|ies)| folders?)?"
    r"|unit tests?|テスト|テストソース|テストコード|テスト構成|テストのソース|テスト用ソース",
    "source": r"sources?( structure| code| roots?| director(y|ies)| folders?| layout)?|source code structure"
    r"|ソース|ソース構成|ソース構造|ソースコード|ソースディレクトリ|ソースの場所|ソースコードの場所",
    "constraints": r"(implementation |technical )?(constraints|rules)|non-functional requirements"
    r"|制約|制約事項|実装制約|実装上の制約|禁止事項|非機能要件|ルール",
    "mvp": r"mvp( scope)?|minimum viable product|mvp範囲|mvpの範囲|最小機能|初期リリース",
    "architecture": r"architecture|project settings?|project setup|tech(nology)? stack"
    r"|アーキテクチャ|構成|技術構成|プロジェクト設定|プロジェクト構成|技術スタック|開発環境",
    "objective": r"(project )?(objectives?|goals?|purpose|overview)|目的|目標|ゴール|概要",
    "prohibitions": r"users? (cannot|can't|can not)|prohibitions|できないこと|ユーザーができないこと",
    "function": r"functions?|functional requirements|requirements|features?|feature list|user stories"
    r"|機能|機能要件|機能一覧|要件|要求|要求仕様|ユーザーストーリー",
}
_KEYWORDS: list[tuple[str, tuple[str, ...]]] = [
    ("tests", ("test", "テスト")),
    ("source", ("source", "ソース")),
    ("constraints", ("constraint", "non-functional", "制約", "非機能", "禁止事項")),
    ("mvp", ("mvp", "minimum viable", "最小機能")),
    ("architecture", ("architecture", "tech stack", "アーキテクチャ", "技術", "プロジェクト設定")),
    ("objective", ("objective", "goal", "purpose", "目的", "目標", "概要")),
    ("prohibitions", ("cannot", "できないこと")),
    ("function", ("function", "feature", "requirement", "機能", "要件", "要求")),
]

_ATX_HEADING = re.compile(r"^ {0,3}(#{1,6})\s+(.*?)\s*#*\s*$")
_SETEXT_UNDERLINE = re.compile(r"^ {0,3}(=+|-{2,})\s*$")
_BULLET = re.compile(r"^(\s*)[-*+]\s+(.*)$")
_NUMBERED = re.compile(r"^(\s*)\d{1,3}[.)]\s+(.*)$")
_FENCE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_BOLD_ONLY = re.compile(r"^\s*(\*\*|__)(.+?)\1\s*[:：]?\s*$")
_REQUIREMENT_ID = r"[A-Z][A-Z0-9_]*-\d+"
_REQUIREMENT_LINE = re.compile(
    rf"^\s*(?:[-*+]\s+|\d{{1,3}}[.)]\s+)?(?:\*\*|__)?({_REQUIREMENT_ID})(?:\*\*|__)?\s*(?:[.:)：．]\s*|\s+)(?:\*\*|__)?\s*(.+)$"
)
_ID_TOKEN = re.compile(rf"\b{_REQUIREMENT_ID}\b")
_ID_RANGE = re.compile(
    rf"\b([A-Z][A-Z0-9_]*)-(\d+)\s*(?:\s-\s|–|—|~|〜|～|\bto\b|\bthrough\b|\bthru\b|から)\s*(?:\1-)?(\d+)\b(?:まで)?"
)
_CAN_LABEL = re.compile(r"^(the )?users? can\s*[:：]?$|^ユーザー[はが]?(以下の(こと|操作)が)?できる(こと)?\s*[:：]?$", re.I)
_CANNOT_LABEL = re.compile(
    r"^(the )?users? (cannot|can't|can not)\s*[:：]?$|^ユーザー[はが]?(以下の(こと|操作)が)?できない(こと)?\s*[:：]?$", re.I
)
_KEY_VALUE = re.compile(r"^\s*(?:[-*+]\s+)?(?:\*\*|__)?([^:：*|`]{1,60}?)(?:\*\*|__)?\s*[:：]\s*(?:\*\*|__)?\s*(.+?)\s*$")
_TABLE_ROW = re.compile(r"^\s*\|\s*([^|]+?)\s*\|\s*([^|]+?)\s*\|\s*$")
_CODE_SPAN = re.compile(r"`([^`\n]+)`")
_PLATFORM = re.compile(r"\bthis is (?:an? )?(.{1,40}?\b(?:app|application|library|service|tool))\b", re.I)
_PLATFORM_JA = re.compile(r"([A-Za-z0-9 ]{0,20}(?:アプリ|アプリケーション|ライブラリ|サービス))(?:です|である|を作る|を開発)")
_MVP_NEGATION = re.compile(
    r"\bnot\b|n't\b|\bno\b|\bexclud|\bexcept\b|\blater\b|\bout of scope\b|\bpostpone|\bdefer"
    r"|不要|対象外|除く|除外|含まない|しない|後回し|後で|以降|ない"
)

_ARCHITECTURE_KEYS: dict[str, str] = {
    "name": "name", "app name": "name", "project name": "name", "名前": "name", "アプリ名": "name",
    "プロジェクト名": "name", "名称": "name",
    "package": "package", "package name": "package", "パッケージ": "package", "パッケージ名": "package",
    "save location": "save_location", "project location": "save_location", "project directory": "save_location",
    "保存場所": "save_location", "保存先": "save_location", "プロジェクトの場所": "save_location",
    "language": "language", "programming language": "language", "言語": "language",
    "プログラミング言語": "language", "開発言語": "language", "使用言語": "language",
    "minimum sdk": "min_sdk", "min sdk": "min_sdk", "minsdk": "min_sdk", "最小sdk": "min_sdk",
    "最低sdk": "min_sdk", "最小 sdk": "min_sdk",
    "build configuration language": "build_language", "build language": "build_language",
    "ビルド設定言語": "build_language", "ビルド構成言語": "build_language",
    "platform": "platform", "プラットフォーム": "platform",
}

# Source file extensions per programming language, keyed by the lower-cased language name.
SOURCE_EXTENSIONS: dict[str, tuple[str, ...]] = {
    "kotlin": (".kt",), "java": (".java",), "swift": (".swift",), "python": (".py",),
    "typescript": (".ts", ".tsx"), "javascript": (".js", ".jsx", ".mjs"), "go": (".go",), "rust": (".rs",),
    "c": (".c", ".h"), "c++": (".cpp", ".cc", ".hpp", ".h"), "c#": (".cs",), "dart": (".dart",),
    "ruby": (".rb",), "php": (".php",), "scala": (".scala",), "objective-c": (".m", ".h"),
    "elixir": (".ex", ".exs"), "haskell": (".hs",), "lua": (".lua",),
}
_LANGUAGE_ALIASES: dict[str, str] = {
    "ts": "typescript", "js": "javascript", "py": "python", "python3": "python", "golang": "go",
    "cpp": "c++", "csharp": "c#", "objc": "objective-c", "obj-c": "objective-c", "node.js": "javascript",
}


def canonical_language(language: str | None) -> str | None:
    """Return the table name of a language as written ("Kotlin 1.9" → "kotlin"), or None if unknown."""
    if not language:
        return None
    words = re.split(r"[\s(（/,]+", language.strip().lower())
    first = words[0] if words else ""
    name = _LANGUAGE_ALIASES.get(first, first)
    return name if name in SOURCE_EXTENSIONS else None


def source_extensions(language: str | None) -> tuple[str, ...]:
    """Return the file extensions of a language as written, or () when it is not in the table."""
    name = canonical_language(language)
    return SOURCE_EXTENSIONS[name] if name else ()


# ---------------------------------------------------------------------------------------------
# Reading the file


def load_spec(path: Path) -> Spec:
    """Read the spec file at `path` and parse it, raising SddtuiError when it is not a Markdown text."""
    if not path.exists():
        raise SddtuiError("spec.not_found", path=path)
    if path.is_dir():
        raise SddtuiError("spec.is_directory", path=path)
    _require_regular_file(path)
    try:
        data = path.read_bytes()
    except OSError as error:
        raise SddtuiError("spec.unreadable", path=path, reason=error.strerror or str(error)) from error

    if b"\x00" in data:
        raise SddtuiError("spec.not_text", path=path, reason="NUL bytes")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise SddtuiError("spec.not_text", path=path, reason=f"invalid UTF-8 at byte {error.start}") from error
    return parse_spec(text, path)


def _require_regular_file(path: Path) -> None:
    """Raise SddtuiError unless `path` is a regular file, because opening a FIFO blocks until a writer appears."""
    try:
        mode = path.stat().st_mode
    except OSError as error:
        raise SddtuiError("spec.unreadable", path=path, reason=error.strerror or str(error)) from error
    if stat.S_ISREG(mode):
        return
    if stat.S_ISFIFO(mode):
        kind = "FIFO"
    elif stat.S_ISSOCK(mode):
        kind = "socket"
    elif stat.S_ISCHR(mode):
        kind = "character device"
    elif stat.S_ISBLK(mode):
        kind = "block device"
    else:
        kind = "special file"
    raise SddtuiError("spec.not_regular_file", path=path, kind=kind)


def parse_spec(text: str, path: Path) -> Spec:
    """Parse spec `text` read from `path` into a Spec, raising SddtuiError when it is not Markdown."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if not text.strip():
        raise SddtuiError("spec.empty", path=path)
    body = _strip_front_matter(text)
    blocks = _split_sections(body)
    _require_markdown(body, blocks, path)

    spec = Spec(path=path, text=text)
    spec.sections = [Section(title=block.title, body="\n".join(block.lines).strip()) for block in blocks if block.title]
    function_blocks = [block for block in blocks if block.kind == "function"]

    for block in blocks:
        if block.kind == "objective" and not spec.objective:
            spec.objective = _paragraph_text(block.lines)
        elif block.kind == "function":
            requirements, prohibitions = _read_functions(block.lines)
            spec.requirements.extend(requirements)
            spec.prohibitions.extend(prohibitions)
        elif block.kind == "prohibitions":
            spec.prohibitions.extend(_list_items(block.lines))
        elif block.kind == "mvp":
            spec.mvp_text = (spec.mvp_text + "\n" + "\n".join(block.lines)).strip()
        elif block.kind == "architecture":
            _read_architecture(block.lines, spec.architecture)
        elif block.kind == "constraints":
            spec.constraints.extend(_list_items(block.lines))
        elif block.kind == "source":
            _extend_unique(spec.source_roots, _paths_in(block.lines))
        elif block.kind == "tests":
            _extend_unique(spec.test_roots, _paths_in(block.lines))

    # A spec without a function section may still list "FUNC-1. ..." lines anywhere.
    if not function_blocks:
        requirements, prohibitions = _read_functions(body.split("\n"))
        spec.requirements.extend(requirements)
        spec.prohibitions.extend(prohibitions)

    spec.mvp_ids = mvp_ids(spec.mvp_text)
    return spec


def _strip_front_matter(text: str) -> str:
    """Return `text` without a leading YAML front matter block, when it is followed by Markdown."""
    match = re.match(r"^---\n.*?\n(---|\.\.\.)\n", text, re.S)
    if match and text[match.end():].strip():
        return text[match.end():]
    return text


# ---------------------------------------------------------------------------------------------
# Sections


@dataclass
class _Block:
    """A run of lines under one heading, whose kind is None when the parser does not know the heading."""

    title: str
    kind: str | None
    level: int
    lines: list[str] = field(default_factory=list)


def _normalise_title(title: str) -> str:
    """Return a heading title without emphasis, numbering, brackets and trailing colon, lower-cased."""
    title = re.sub(r"(\*\*|__|`)", "", title).strip()
    title = re.sub(r"\s*[(（][^)）]*[)）]\s*", " ", title)
    title = re.sub(r"^(\d+(\.\d+)*[.)]?|[IVX]+\.|第\d+章)\s*", "", title)
    title = title.strip().rstrip(":：").strip()
    return re.sub(r"\s+", " ", title).lower()


def _title_kind(title: str, *, by_keyword: bool) -> str | None:
    """Return the section kind a heading title names, or None."""
    normalised = _normalise_title(title)
    if not normalised or re.match(_REQUIREMENT_ID, title.strip("*_` ")):
        return None
    # "Objective / 目的" names one section in two languages, but "tests/unit" is a path, not two names.
    for part in [normalised, *re.split(r"\s+/\s+|\s*／\s*", normalised)]:
        for kind, pattern in _EXACT_TITLES.items():
            if re.fullmatch(pattern, part):
                return kind
    if by_keyword and len(normalised) <= 60:
        for kind, keywords in _KEYWORDS:
            if any(keyword in normalised for keyword in keywords):
                return kind
    return None


def _split_sections(text: str) -> list[_Block]:
    """Split Markdown into blocks at `#` headings, setext headings, and known bullet or bold headings."""
    blocks = [_Block(title="", kind=None, level=0)]
    lines = text.split("\n")
    fence: str | None = None

    for index, line in enumerate(lines):
        current = blocks[-1]
        fence_match = _FENCE.match(line)
        if fence is not None:
            if fence_match and fence_match.group(1)[0] == fence[0] and len(fence_match.group(1)) >= len(fence):
                fence = None
            current.lines.append(line)
            continue
        if fence_match:
            fence = fence_match.group(1)
            current.lines.append(line)
            continue

        heading = _ATX_HEADING.match(line)
        if heading:
            level = len(heading.group(1))
            kind = _title_kind(heading.group(2), by_keyword=True)
            # An unknown deeper heading such as "### User cannot" stays inside its known section.
            if kind is None and current.kind is not None and level > current.level:
                current.lines.append(heading.group(2))
            else:
                blocks.append(_Block(title=heading.group(2).strip(), kind=kind, level=level))
            continue

        next_line = lines[index + 1] if index + 1 < len(lines) else ""
        if line.strip() and not _BULLET.match(line) and _SETEXT_UNDERLINE.match(next_line):
            kind = _title_kind(line, by_keyword=True)
            blocks.append(_Block(title=line.strip(), kind=kind, level=1 if "=" in next_line else 2))
            continue
        if _SETEXT_UNDERLINE.match(line) and current.title and not current.lines:
            continue

        heading_text = _bullet_or_bold_heading(line)
        if heading_text is not None:
            kind = _title_kind(heading_text, by_keyword=False)
            if kind is not None:
                blocks.append(_Block(title=heading_text, kind=kind, level=current.level if current.kind else 1))
                continue
        current.lines.append(line)

    return blocks


def _bullet_or_bold_heading(line: str) -> str | None:
    """Return the text of a column-0 list item or a bold-only line that could be a section name."""
    bold = _BOLD_ONLY.match(line)
    if bold:
        return bold.group(2)
    bullet = _BULLET.match(line) or _NUMBERED.match(line)
    if bullet and not bullet.group(1):
        candidate = bullet.group(2).strip()
        # "- **Name**: Habit Tracker" is a fact and "- `tests`" a path, not headings.
        if re.search(r"[:：]\s*\S", candidate) or "`" in candidate:
            return None
        return candidate
    return None


def _require_markdown(text: str, blocks: list[_Block], path: Path) -> None:
    """Raise SddtuiError unless `text` is Markdown with at least one heading or known section."""
    stripped = text.strip()
    if stripped[:1] in "{[":
        try:
            json.loads(stripped)
        except ValueError:
            pass
        else:
            raise SddtuiError("spec.not_markdown", path=path, reason="JSON")

    known_sections = [block for block in blocks if block.kind is not None]
    if known_sections:
        return
    if _looks_like_yaml(stripped):
        raise SddtuiError("spec.not_markdown", path=path, reason="YAML")
    if not any(block.title for block in blocks):
        raise SddtuiError("spec.not_markdown", path=path, reason="no headings")


def _looks_like_yaml(text: str) -> bool:
    """Return True when every content line is a YAML key, list item, comment or document marker."""
    yaml_line = re.compile(r"^(\s*#.*|---|\.\.\.|\s*-(\s.*)?|\s*[\w\"'.-][\w\"' .-]*:(\s.*)?|\s+\S.*)$")
    lines = [line for line in text.split("\n") if line.strip()]
    key_lines = [line for line in lines if re.match(r"^\s*[\w\"'.-][\w\"' .-]*:(\s|$)", line)]
    return bool(key_lines) and all(yaml_line.match(line) for line in lines)


# ---------------------------------------------------------------------------------------------
# Section contents


def _plain(line: str) -> str:
    """Return a line without heading marks, emphasis and surrounding space."""
    line = re.sub(r"^\s*#{1,6}\s+", "", line)
    return re.sub(r"(\*\*|__)", "", line).strip()


def _paragraph_text(lines: list[str]) -> str:
    """Return the non-empty lines of a section joined as one text."""
    return "\n".join(line.strip() for line in lines if line.strip())


def _list_items(lines: list[str]) -> list[str]:
    """Return the bullet or numbered items in `lines`, each with its continuation lines joined."""
    items: list[str] = []
    for line in lines:
        match = _BULLET.match(line) or _NUMBERED.match(line)
        if match:
            items.append(_plain(match.group(2)))
        elif items and line.strip() and line[:1].isspace():
            items[-1] = f"{items[-1]} {line.strip()}"
    return [item for item in items if item]


def _read_functions(lines: list[str]) -> tuple[list[Requirement], list[str]]:
    """Return the numbered requirements and the "User cannot" items of a function section."""
    requirements: list[Requirement] = []
    prohibitions: list[str] = []
    in_cannot = False
    last: str | None = None  # "requirement", "prohibition" or None, for continuation lines

    for line in lines:
        plain = _plain(line)
        if not plain:
            last = None
            continue
        if _CANNOT_LABEL.match(plain):
            in_cannot, last = True, None
            continue
        if _CAN_LABEL.match(plain):
            in_cannot, last = False, None
            continue

        requirement = _REQUIREMENT_LINE.match(line)
        if requirement:
            requirements.append(Requirement(id=requirement.group(1), text=_plain(requirement.group(2))))
            in_cannot, last = False, "requirement"
            continue

        item = _BULLET.match(line) or _NUMBERED.match(line)
        if in_cannot and item:
            prohibitions.append(_plain(item.group(2)))
            last = "prohibition"
        elif last == "requirement" and line[:1].isspace():
            requirements[-1].text = f"{requirements[-1].text} {plain}"
        elif last == "prohibition" and line[:1].isspace():
            prohibitions[-1] = f"{prohibitions[-1]} {plain}"
        else:
            last = None
    return requirements, prohibitions


def _read_architecture(lines: list[str], architecture: Architecture) -> None:
    """Fill `architecture` from the `Key: value` lines, table rows and prose of a section."""
    for line in lines:
        if re.match(r"^\s*\|[\s:|-]+\|\s*$", line):
            continue
        match = _TABLE_ROW.match(line) or _KEY_VALUE.match(line)
        if match:
            key = _plain(match.group(1)).strip().lower()
            value = _plain(match.group(2)).strip().strip("`").strip()
            if not value or key in ("key", "item", "項目"):
                continue
            attribute = _ARCHITECTURE_KEYS.get(key)
            if attribute is None:
                architecture.extra.setdefault(_plain(match.group(1)), value)
            elif getattr(architecture, attribute) is None:
                setattr(architecture, attribute, value)
            continue

        platform = _PLATFORM.search(line) or _PLATFORM_JA.search(line)
        if platform and architecture.platform is None:
            architecture.platform = platform.group(1).strip()


def _paths_in(lines: list[str]) -> list[str]:
    """Return the folder paths a source or test section names: code spans, else bare path lines."""
    paths: list[str] = []
    for line in lines:
        for span in _CODE_SPAN.findall(line):
            if re.fullmatch(r"[~\w./\\:-]+", span.strip()):
                paths.append(span.strip())
    if paths:
        return paths
    for line in lines:
        candidate = re.sub(r"^\s*(?:[-*+]\s+|\d{1,3}[.)]\s+)?", "", line).strip()
        if candidate and " " not in candidate and ("/" in candidate or "\\" in candidate):
            paths.append(candidate)
    return paths


def _extend_unique(target: list[str], values: list[str]) -> None:
    """Append each value of `values` not yet in `target`, keeping order."""
    for value in values:
        if value not in target:
            target.append(value)


# ---------------------------------------------------------------------------------------------
# MVP scope


def mvp_ids(text: str) -> list[str]:
    """Return the requirement ids an MVP text puts in scope, in order, leaving out those it excludes.

    "First, FUNC-1 should be implemented. Other functions are not required now." gives ["FUNC-1"].
    "FUNC-1 to FUNC-3" expands the range. A clause with a negation ("FUNC-2 later", "FUNC-3 は不要")
    excludes the ids it names.
    """
    included: list[str] = []
    excluded: set[str] = set()
    for clause, negative in _mvp_clauses(text):
        ids = _ids_in(clause)
        if negative:
            excluded.update(ids)
        else:
            _extend_unique(included, ids)
    return [requirement_id for requirement_id in included if requirement_id not in excluded]


def _ids_in(text: str) -> list[str]:
    """Return the requirement ids in `text` in order, with ranges such as "FUNC-1 to FUNC-3" expanded."""
    found: list[tuple[int, str]] = []
    covered: list[tuple[int, int]] = []
    for match in _ID_RANGE.finditer(text):
        prefix, first, last = match.group(1), int(match.group(2)), int(match.group(3))
        if first <= last <= first + 50:
            found.extend((match.start(), f"{prefix}-{number}") for number in range(first, last + 1))
            covered.append(match.span())
    for match in _ID_TOKEN.finditer(text):
        if not any(start <= match.start() < end for start, end in covered):
            found.append((match.start(), match.group(0)))
    ordered: list[str] = []
    _extend_unique(ordered, [requirement_id for _, requirement_id in sorted(found, key=lambda pair: pair[0])])
    return ordered


def _mvp_clauses(text: str) -> list[tuple[str, bool]]:
    """Split MVP text into clauses, each with whether it excludes what it names.

    A clause that is only a list of ids ("FUNC-1," before "FUNC-2 are not required") joins the next
    clause, so that the list takes that clause's polarity.
    """
    clauses: list[tuple[str, bool]] = []
    for sentence in re.split(r"(?<=[.!?])\s+|[。！？\n;；]", text):
        pending = ""
        pieces = re.split(r"[,、]|\bbut\b|\bhowever\b|ただし|但し|一方", sentence)
        for index, piece in enumerate(pieces):
            piece = pending + " " + piece if pending else piece
            pending = ""
            if _is_id_list(piece) and index + 1 < len(pieces):
                pending = piece
                continue
            if piece.strip():
                clauses.append((piece, bool(_MVP_NEGATION.search(_ID_TOKEN.sub(" ", piece)))))
    return clauses


def _is_id_list(piece: str) -> bool:
    """Return True when `piece` contains ids and nothing else but conjunctions."""
    if not _ID_TOKEN.search(piece):
        return False
    rest = _ID_TOKEN.sub(" ", piece)
    rest = re.sub(r"\b(and|or)\b|及び|および|と|&|[、,\s]", "", rest)
    return rest == ""


# ---------------------------------------------------------------------------------------------
# Lint


@dataclass(frozen=True)
class LintProblem:
    """One thing a spec lacks for planning: a message key from spec.toml and its values."""

    key: str
    params: dict[str, object] = field(default_factory=dict)

    def render(self, lang: str = "en") -> str:
        """Return the problem as a sentence in `lang`."""
        return translate(self.key, lang, **self.params)

    def __str__(self) -> str:
        return self.render("en")


def lint_spec(spec: Spec) -> list[LintProblem]:
    """Return the problems that stop a plan for `spec`, or an empty list when it can be planned."""
    problems: list[LintProblem] = []
    if not spec.source_roots:
        problems.append(LintProblem("spec.lint.no_source_root"))

    if not spec.architecture.language:
        problems.append(LintProblem("spec.lint.no_language"))
    elif canonical_language(spec.architecture.language) is None:
        problems.append(
            LintProblem(
                "spec.lint.unknown_language",
                {"language": spec.architecture.language, "known": ", ".join(sorted(SOURCE_EXTENSIONS))},
            )
        )

    ids = [requirement.id for requirement in spec.requirements]
    if not ids:
        problems.append(LintProblem("spec.lint.no_requirements"))
    duplicates = sorted({requirement_id for requirement_id in ids if ids.count(requirement_id) > 1})
    if duplicates:
        problems.append(LintProblem("spec.lint.duplicate_requirements", {"ids": ", ".join(duplicates)}))

    if not spec.mvp_text.strip():
        problems.append(LintProblem("spec.lint.no_mvp"))
    elif not spec.mvp_ids:
        problems.append(LintProblem("spec.lint.mvp_without_ids"))
    else:
        unknown = [requirement_id for requirement_id in spec.mvp_ids if requirement_id not in ids]
        if unknown and ids:
            problems.append(LintProblem("spec.lint.mvp_unknown_ids", {"ids": ", ".join(unknown)}))
    return problems


class SpecNotPlannable(SddtuiError):
    """An error for a spec that lacks what a plan needs, listing every problem in the chosen language."""

    def __init__(self, path: Path, problems: list[LintProblem]) -> None:
        super().__init__("spec.not_plannable", path=path, problems="")
        self.problems = problems

    def render(self, lang: str = "en") -> str:
        """Return the message in `lang` with one line per problem."""
        listed = "\n".join(f"  - {problem.render(lang)}" for problem in self.problems)
        return translate(self.key, lang, path=self.params["path"], problems=listed)


def require_plannable(spec: Spec) -> None:
    """Raise SpecNotPlannable listing every problem of `spec`, or return when it can be planned."""
    problems = lint_spec(spec)
    if problems:
        raise SpecNotPlannable(spec.path, problems)
