"""Find whole-file fenced blocks, and the patch blocks not yet supported, in a model's answer."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from sddtui.edits.model import FileBlock

# An opening or closing fence: three or more backticks or tildes, indented by any whitespace
# because models indent blocks inside list items.
_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")

# Languages whose files can themselves contain fences, so a bare fence inside them may open an
# inner block rather than close the file.
_MARKUP_LANGUAGES = {"markdown", "md", "mdx", "rst", "text", "txt", "plaintext", "asciidoc", "adoc"}
_MARKUP_SUFFIXES = (".md", ".mdx", ".markdown", ".rst", ".txt", ".adoc")

# File names that are paths although they have neither a folder nor an extension.
_BARE_FILE_NAMES = {
    "Makefile", "Dockerfile", "Containerfile", "Procfile", "Gemfile", "Rakefile", "Jenkinsfile",
    "Vagrantfile", "Brewfile", "Justfile", "justfile", "LICENSE", "README", "CHANGELOG", "NOTICE",
}

# Words a model writes around a path on the line before a block, e.g. "Updated `x`", "File: x".
_LEAD_WORDS = re.compile(
    r"^(?:(?:here\s+is|here's|this\s+is)(?:\s+|$))?(?:the(?:\s+|$))?"
    r"(?:(?:updated|modified|new|changed|complete|full|final|corrected|fixed|revised|created|edited)(?:\s+|$))*"
    r"(?:(?:file\s*name|filename|file|path|code)(?=[\s:：]|$)\s*(?:(?:for|of|in)\s+)?)?[:：]?\s*",
    re.IGNORECASE,
)
_JAPANESE_LEAD = re.compile(r"^(?:ファイル名?|パス|更新|変更|新規(?:ファイル)?|修正)\s*[:：]\s*")
_NO_CHANGES = re.compile(
    r"no\s+changes?(?:\s+(?:needed|required|necessary|made))?|unchanged|not\s+changed|変更なし|変更不要|変更はありません",
    re.IGNORECASE,
)
# A trailing remark after the path: "(no changes needed)", "— unchanged", "- new file".
_TRAILING_REMARK = re.compile(r"\s*(?:[(（\[][^)）\]]*[)）\]]|\s[-–—]\s.*)\s*$")
_LIST_MARKER = re.compile(r"^(?:[-*+]\s+|\d+[.)]\s+)")
_UNDERSCORE_BOLD = re.compile(r"^__(?P<inner>[^_\s]\S*[./]\S*)__(?P<tail>\s*(?:[:：(（\[-–—].*)?)$")
_HEADING_MARKER = re.compile(r"^#{1,6}\s+")
_UNSAFE_PATH_CHARS = re.compile(r"[\s`'\"<>|*?]")
_EXTENSION = re.compile(r"\.[A-Za-z0-9_+-]{1,12}$")
_INFO_PATH_ATTRIBUTE = re.compile(r"""(?:title|file|filename|path)\s*=\s*["']?([^"'\s]+)["']?""", re.IGNORECASE)

_SEARCH_START = re.compile(r"^\s*<{5,9} ?SEARCH\s*$")
_REPLACE_END = re.compile(r"^\s*>{5,9} ?REPLACE\s*$")
_PREVIOUS_LINES_SEARCHED = 3

# A write delivered as tool-call text although no tools were offered, in the XML form
# (<function=write_file><parameter=path>...) or the JSON form inside <tool_call> tags.
_XML_FUNCTION = re.compile(r"<function=(?P<name>[^>\s]+)>(?P<body>.*?)(?:</function>|$)", re.DOTALL)
_XML_PARAMETER = re.compile(r"<parameter=(?P<key>[^>\s]+)>(?P<value>.*?)(?P<end></parameter>|(?=<parameter=)|$)", re.DOTALL)
_JSON_TOOL_CALL = re.compile(r"<tool_call>\s*(?P<json>\{.*?\})\s*</tool_call>", re.DOTALL)
_TOOL_PATH_KEYS = ("path", "file_path", "filepath", "filename", "file")
_TOOL_CONTENT_KEYS = ("content", "file_text", "contents", "text", "new_content", "code")


@dataclass(frozen=True)
class _Fence:
    indent: int
    char: str
    length: int
    info: str


@dataclass(frozen=True)
class _Line:
    text: str
    end: str


def parse_answer(text: str) -> list[FileBlock]:
    """Return the whole-file fenced blocks of an answer, in order, each kept whole.

    Blocks that hold a unified diff or SEARCH/REPLACE edits are left out; `parse_patches`
    returns those.
    """
    fenced = _parse_fenced(text)
    blocks = [block for block in fenced if not is_patch(block)]

    inside_fence = _fenced_line_numbers(fenced, _split_lines(text))
    for tool_block in _parse_tool_call_text(text):
        if tool_block.start_line - 1 not in inside_fence:
            blocks.append(tool_block)
    blocks.sort(key=lambda block: block.start_line)
    return blocks


def parse_patches(text: str) -> list[FileBlock]:
    """Return the unified-diff and SEARCH/REPLACE blocks of an answer, fenced or not.

    Their content is the raw patch text; sddtui cannot apply these formats yet, so callers
    show them as not applied.
    """
    fenced = _parse_fenced(text)
    patches = [_with_header_path(block) for block in fenced if is_patch(block)]
    patches.extend(_parse_bare_search_replace(text, fenced))
    patches.sort(key=lambda block: block.start_line)
    return patches


def is_patch(block: FileBlock) -> bool:
    """Return True when a block holds a unified diff or SEARCH/REPLACE edits rather than a file."""
    path, _ = normalize_path(block.path or "")
    if path and path.endswith((".diff", ".patch")):
        return False
    if block.language.lower() in {"diff", "patch", "udiff", "search-replace"}:
        return True

    lines = block.content.split("\n")
    if any(_SEARCH_START.match(line) for line in lines) and any(_REPLACE_END.match(line) for line in lines):
        return True
    meaningful = [line for line in lines if line.strip()]
    if meaningful and meaningful[0].startswith("diff --git "):
        return True
    return len(meaningful) >= 2 and meaningful[0].startswith("--- ") and meaningful[1].startswith("+++ ")


def _with_header_path(block: FileBlock) -> FileBlock:
    """Return the block with its path taken from a "+++ " header when no heading named one."""
    if block.path is not None:
        return block
    for line in block.content.split("\n"):
        if line.startswith("+++ "):
            # A header may end with a tab and a timestamp: "+++ b/app.py\t2024-01-01 ...".
            header_path = line[4:].split("\t", 1)[0].strip()
            if header_path and header_path != "/dev/null":
                return block.model_copy(update={"path": header_path})
    return block


def normalize_path(raw: str) -> tuple[str | None, bool]:
    """Return the path named by a heading line and whether the line marks the file as unchanged.

    Removes heading marks, list markers, bold, backticks, lead words ("Updated", "File:"), a
    trailing remark such as "(no changes needed)", a leading "./" and the `a/` or `b/` prefix of
    diff headers. The path is None when the line is prose rather than a path.
    """
    line = raw.strip()
    no_changes = False

    line = _HEADING_MARKER.sub("", line)
    line = _LIST_MARKER.sub("", line)
    line = line.replace("**", "").strip()
    # "__" marks bold only around the whole heading, because file names such as "__init__.py" contain it.
    underscored = _UNDERSCORE_BOLD.match(line)
    if underscored:
        line = underscored.group("inner") + underscored.group("tail")
    line = _JAPANESE_LEAD.sub("", line)

    remark = _TRAILING_REMARK.search(line)
    while remark and remark.start() > 0:
        if _NO_CHANGES.search(remark.group(0)):
            no_changes = True
        line = line[: remark.start()].rstrip()
        remark = _TRAILING_REMARK.search(line)

    line = line.rstrip(":：").strip()
    if _NO_CHANGES.search(line):
        no_changes = True
        line = _NO_CHANGES.sub("", line).strip(" :：-–—,")

    quoted = re.findall(r"`([^`]+)`", line)
    if quoted:
        outside = re.sub(r"`[^`]+`", " ", line)
        if len(quoted) != 1 or _LEAD_WORDS.sub("", outside.strip()).strip(" :：-–—,"):
            return None, no_changes
        line = quoted[0].strip()
    else:
        line = _LEAD_WORDS.sub("", line).strip()

    path = _strip_path_prefixes(line)
    if not _looks_like_path(path):
        return None, no_changes
    return path, no_changes


def _strip_path_prefixes(path: str) -> str:
    path = path.replace("\\", "/")
    if path.startswith(("a/", "b/")) and len(path) > 2:
        path = path[2:]
    while path.startswith("./"):
        path = path[2:]
    return path


def _looks_like_path(text: str) -> bool:
    if not text or _UNSAFE_PATH_CHARS.search(text) or "://" in text:
        return False
    name = text.rstrip("/").rsplit("/", 1)[-1]
    if not name or name in {".", ".."}:
        return False
    if _EXTENSION.search(name) or name in _BARE_FILE_NAMES:
        return True
    # A dotfile such as ".gitignore", or a folder path ending in an extensionless file.
    return name.startswith(".") or ("/" in text and any(char.isalpha() for char in name))


def _split_lines(text: str) -> list[_Line]:
    """Split on "\\n" only, keeping each line's ending, so CRLF and odd separators survive."""
    lines: list[_Line] = []
    for piece in text.split("\n"):
        lines.append(_Line(piece, "\n"))
    last = lines.pop()
    if last.text:
        lines.append(_Line(last.text, ""))
    return lines


def _fence_of(line: _Line) -> _Fence | None:
    match = _FENCE.match(line.text.rstrip("\r"))
    if not match:
        return None
    fence = match.group("fence")
    info = match.group("info").strip()
    if fence[0] == "`" and "`" in info:
        return None
    return _Fence(len(match.group("indent").expandtabs(4)), fence[0], len(fence), info)


def _closes(fence: _Fence, opening: _Fence) -> bool:
    return not fence.info and fence.char == opening.char and fence.length >= opening.length


def _parse_fenced(text: str) -> list[FileBlock]:
    lines = _split_lines(text)
    blocks: list[FileBlock] = []
    index = 0
    previous_end = 0

    while index < len(lines):
        opening = _fence_of(lines[index])
        if opening is None:
            index += 1
            continue

        heading = _heading_before(lines, index, previous_end)
        language, info_path = _split_info(opening.info)
        raw_path = heading if heading is not None else info_path
        end, closed = _find_block_end(lines, index, opening, _is_markup(language, raw_path))
        content = _join_content(lines[index + 1 : end], opening.indent)
        blocks.append(FileBlock(path=raw_path, content=content, language=language, start_line=index + 1, closed=closed))

        index = end + 1
        previous_end = index
    return blocks


def _heading_before(lines: list[_Line], fence_index: int, previous_end: int) -> str | None:
    """Return the path line just above a fence, skipping blank lines, or None when there is none."""
    candidate = fence_index - 1
    while candidate >= previous_end and fence_index - candidate <= _PREVIOUS_LINES_SEARCHED:
        text = lines[candidate].text.strip()
        if text:
            path, _ = normalize_path(text)
            return text if path is not None else None
        candidate -= 1
    return None


def _split_info(info: str) -> tuple[str, str | None]:
    """Split an info string into the language and a path ("kotlin app/X.kt", "py:app.py", "app.py")."""
    if not info:
        return "", None
    attribute = _INFO_PATH_ATTRIBUTE.search(info)
    words = info.split()
    first = words[0]
    if attribute:
        language = first if "=" not in first else ""
        return language, attribute.group(1)

    if ":" in first and not first.endswith(":"):
        language, _, path = first.partition(":")
        if normalize_path(path)[0] is not None:
            return language, path
    if len(words) >= 2 and normalize_path(words[1])[0] is not None:
        return first, words[1]
    if len(words) == 1 and ("/" in first or _EXTENSION.search(first)) and normalize_path(first)[0] is not None:
        return "", first
    return first, None


def _is_markup(language: str, raw_path: str | None) -> bool:
    if language.lower() in _MARKUP_LANGUAGES:
        return True
    path, _ = normalize_path(raw_path or "")
    return bool(path) and path.lower().endswith(_MARKUP_SUFFIXES)


def _find_block_end(lines: list[_Line], start: int, opening: _Fence, markup: bool) -> tuple[int, bool]:
    """Return the index of the fence that closes the block at `start` and whether one was found.

    Fences are balanced: inside the block a fence with an info string opens an inner block and
    a bare fence closes the innermost one. In a Markdown-like file a bare fence that would close
    the file early opens an inner block instead when the text after it reads as its content.
    """
    stack = [opening]
    index = start + 1
    while index < len(lines):
        fence = _fence_of(lines[index])
        if fence is None:
            index += 1
            continue

        if fence.info:
            stack.append(fence)
        elif _closes(fence, stack[-1]):
            if len(stack) == 1 and markup and _opens_inner_block(lines, index, opening):
                stack.append(fence)
            else:
                stack.pop()
                if not stack:
                    return index, True
        index += 1
    return len(lines), False


def _opens_inner_block(lines: list[_Line], index: int, opening: _Fence) -> bool:
    """Return True when a bare fence at `index` reads as the start of an inner block.

    Three conditions make it one. Code follows on the next line, and the next fence is bare and
    closes it. Nothing between the two fences looks like a file heading or an introduction that
    ends in a colon. A further bare fence remains to close the outer block.
    """
    following = index + 1
    if following >= len(lines) or not lines[following].text.strip() or _fence_of(lines[following]):
        return False

    inner_end = None
    for position in range(following, len(lines)):
        fence = _fence_of(lines[position])
        if fence is not None:
            inner_end = position if _closes(fence, opening) else None
            break
        text = lines[position].text.strip()
        if text and normalize_path(text)[0] is not None:
            return False
    if inner_end is None:
        return False

    last_text = next(
        (lines[position].text.strip() for position in range(inner_end - 1, index, -1) if lines[position].text.strip()),
        "",
    )
    if last_text.endswith((":", "：")):
        return False

    for position in range(inner_end + 1, len(lines)):
        fence = _fence_of(lines[position])
        if fence is not None:
            return _closes(fence, opening)
    return False


def _join_content(lines: list[_Line], indent: int) -> str:
    """Join a block's lines, removing up to the opening fence's indentation from each."""
    parts = []
    for line in lines:
        text = line.text
        if indent:
            expanded_prefix = len(text) - len(text.lstrip(" \t"))
            removable = min(indent, expanded_prefix)
            text = text[removable:]
        parts.append(text + (line.end or "\n"))
    return "".join(parts)


def _parse_bare_search_replace(text: str, fenced: list[FileBlock]) -> list[FileBlock]:
    """Return SEARCH/REPLACE edits written outside any fence, one block per edit."""
    lines = _split_lines(text)
    inside_fence = _fenced_line_numbers(fenced, lines)
    blocks: list[FileBlock] = []

    index = 0
    while index < len(lines):
        if index in inside_fence or not _SEARCH_START.match(lines[index].text):
            index += 1
            continue

        end = index + 1
        while end < len(lines) and not _REPLACE_END.match(lines[end].text):
            end += 1
        closed = end < len(lines)
        content = "".join(line.text + (line.end or "\n") for line in lines[index : min(end + 1, len(lines))])
        heading = _heading_before(lines, index, 0)
        blocks.append(
            FileBlock(path=heading, content=content, language="search-replace", start_line=index + 1, closed=closed)
        )
        index = end + 1
    return blocks


def _fenced_line_numbers(blocks: list[FileBlock], lines: list[_Line]) -> set[int]:
    inside: set[int] = set()
    for block in blocks:
        first = block.start_line - 1
        length = block.content.count("\n") + 2
        inside.update(range(first, min(first + length, len(lines))))
    return inside


def _parse_tool_call_text(text: str) -> list[FileBlock]:
    """Return the file writes written as tool-call text, so that they get the same review as a block."""
    blocks: list[FileBlock] = []
    for match in _XML_FUNCTION.finditer(text):
        parameters: dict[str, tuple[str, bool]] = {}
        for parameter in _XML_PARAMETER.finditer(match.group("body")):
            parameters[parameter.group("key").lower()] = (parameter.group("value"), bool(parameter.group("end")))
        path = next((parameters[key][0].strip() for key in _TOOL_PATH_KEYS if key in parameters), None)
        content_key = next((key for key in _TOOL_CONTENT_KEYS if key in parameters), None)
        if not path or content_key is None:
            continue

        value, value_closed = parameters[content_key]
        content = _trim_parameter_value(value)
        closed = value_closed and match.group(0).endswith("</function>")
        start_line = text.count("\n", 0, match.start()) + 1
        blocks.append(FileBlock(path=path, content=content, language="", start_line=start_line, closed=closed))

    for match in _JSON_TOOL_CALL.finditer(text):
        try:
            call = json.loads(match.group("json"))
        except json.JSONDecodeError:
            continue
        arguments = call.get("arguments", call.get("parameters")) if isinstance(call, dict) else None
        if isinstance(arguments, str):
            try:
                arguments = json.loads(arguments)
            except json.JSONDecodeError:
                continue
        if not isinstance(arguments, dict):
            continue
        path = next((arguments[key] for key in _TOOL_PATH_KEYS if isinstance(arguments.get(key), str)), None)
        content = next((arguments[key] for key in _TOOL_CONTENT_KEYS if isinstance(arguments.get(key), str)), None)
        if not path or content is None:
            continue
        if content and not content.endswith("\n"):
            content += "\n"
        start_line = text.count("\n", 0, match.start()) + 1
        blocks.append(FileBlock(path=path.strip(), content=content, language="", start_line=start_line, closed=True))
    return blocks


def _trim_parameter_value(value: str) -> str:
    """Remove the line break that follows <parameter=...> and end the text with one line break."""
    if value.startswith("\r\n"):
        value = value[2:]
    elif value.startswith("\n"):
        value = value[1:]
    if value and not value.endswith("\n"):
        value += "\n"
    return value
