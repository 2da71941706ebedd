"""Compare a proposed file with the task's scope: far hunks, large deletions and new public names."""

from __future__ import annotations

import difflib
import re

from pygments.lexers import get_lexer_for_filename
from pygments.token import Keyword, Name
from pygments.util import ClassNotFound

from sddtui.guards.findings import guard_finding
from sddtui.guards.model import Finding, Severity
from sddtui.spec.model import Spec
from sddtui.tasks.model import Task, TaskAction

# Lines around the named region that still count as inside it.
REGION_MARGIN_LINES = 3
# A rewrite warns when it keeps less than this share of the old lines and the file shrinks below it.
KEPT_SHARE_MIN = 0.5
# Files shorter than this (non-blank lines) are small enough that a large rewrite is expected.
DELETION_MIN_OLD_LINES = 12
MAX_FAR_HUNK_FINDINGS = 5

_SHRINK_WORDS = re.compile(
    r"\b(?:remove|delete|drop|strip|simplify|shorten|shrink|trim|clean\s+up|rewrite|replace|refactor|split|move)\b"
    r"|削除|除去|簡略|短く|整理|書き直|置き換|分割|移動",
    re.IGNORECASE,
)
_DEFINITION_WORDS = r"(?:def|fun|func|function|class|interface|object|struct|enum|record|trait|protocol|type)"
# Names a task points at: `name`, name(), or "the name function".
_NAMED_IN_BACKTICKS = re.compile(r"`([A-Za-z_][A-Za-z0-9_]*)(?:\(\))?`")
_NAMED_WITH_PARENS = re.compile(r"\b([A-Za-z_][A-Za-z0-9_]*)\(\)")
_NAMED_BY_WORD = re.compile(
    r"\b(?:function|method|class|fun|def|composable|screen|interface|object)\s+`?([A-Za-z_][A-Za-z0-9_]*)"
    r"|\b([A-Za-z_][A-Za-z0-9_]*)`?\s+(?:function|method|class|composable|interface)\b"
    r"|([A-Za-z_][A-Za-z0-9_]*)\s*(?:関数|メソッド|クラス)",
    re.IGNORECASE,
)
_HEADER_LINE = re.compile(r"^\s*(?:import|from\s+\S+\s+import|package|using|#include|require|@file:)\b")
_PRIVATE_WORDS = {"private", "internal", "fileprivate", "protected"}


def check_scope(
    old_content: str | None, new_content: str, path: str, task: Task, spec: Spec, lang: str = "en"
) -> list[Finding]:
    """Return warnings for hunks far from the named region, a large deletion, and new public names."""
    findings: list[Finding] = []
    if old_content is not None:
        findings += far_hunks(old_content, new_content, path, task, lang)
        findings += large_deletion(old_content, new_content, path, task, lang)
    findings += new_public_names(old_content, new_content, path, task, spec, lang)
    return findings


def named_region(old_content: str, task: Task) -> tuple[str, int, int] | None:
    """Return (name, first line, last line), 0-based, of the definition the task names, or None.

    The names come from the instruction (`name`, name(), "the name function"); the first one
    defined in the old file wins. The region ends where braces balance again, or, without
    braces, where the indentation returns to the definition's level.
    """
    lines = old_content.splitlines()
    for name in _names_in(task.instruction):
        definition = re.compile(
            rf"\b{_DEFINITION_WORDS}\s+(?:[A-Za-z_][\w.<>, ]*\.)?{re.escape(name)}\b"
            rf"|^\s*(?:[\w<>\[\],?]+\s+)+{re.escape(name)}\s*\([^;]*$"
        )
        for index, line in enumerate(lines):
            if definition.search(line):
                return name, index, _region_end(lines, index)
    return None


def _names_in(instruction: str) -> list[str]:
    """Return the identifiers an instruction names, in order, without repeats."""
    names: list[str] = []
    for pattern in (_NAMED_IN_BACKTICKS, _NAMED_WITH_PARENS, _NAMED_BY_WORD):
        for match in pattern.finditer(instruction):
            name = next(group for group in match.groups() if group)
            if name.lower() not in {"the", "a", "an", "new", "this", "that"}:
                names.append(name)
    return list(dict.fromkeys(names))


def _region_end(lines: list[str], start: int) -> int:
    """Return the last line of the definition that starts at `start`."""
    opened = next((index for index in range(start, min(start + 3, len(lines))) if "{" in lines[index]), None)
    if opened is not None:
        depth = 0
        for index in range(start, len(lines)):
            depth += lines[index].count("{") - lines[index].count("}")
            if depth <= 0 and index >= opened:
                return index
        return len(lines) - 1

    indent = len(lines[start]) - len(lines[start].lstrip())
    end = start
    for index in range(start + 1, len(lines)):
        text = lines[index]
        if text.strip() and len(text) - len(text.lstrip()) <= indent and not text.strip().startswith((")", "]")):
            break
        if text.strip():
            end = index
    return end


def far_hunks(old_content: str, new_content: str, path: str, task: Task, lang: str = "en") -> list[Finding]:
    """Return a warning for each hunk outside the region the task names; none when it names none.

    Hunks that only touch imports or the package line are allowed anywhere.
    """
    region = named_region(old_content, task)
    if region is None:
        return []
    name, first, last = region
    low, high = first - REGION_MARGIN_LINES, last + REGION_MARGIN_LINES
    old_lines = old_content.splitlines()
    new_lines = new_content.splitlines()

    findings: list[Finding] = []
    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    for tag, old_start, old_end, new_start, new_end in matcher.get_opcodes():
        if tag == "equal":
            continue
        touched = old_lines[old_start:old_end] + new_lines[new_start:new_end]
        if all(not line.strip() or _HEADER_LINE.match(line) for line in touched):
            continue
        if old_end - 1 >= low and old_start <= high:
            continue
        evidence = next((line for line in touched if line.strip()), "")
        findings.append(
            guard_finding(
                "far_hunk", Severity.WARN, lang, path=path, line=old_start + 1, evidence=evidence,
                name=name, first=first + 1, last=last + 1,
            )
        )
        if len(findings) >= MAX_FAR_HUNK_FINDINGS:
            break
    return findings


def large_deletion(old_content: str, new_content: str, path: str, task: Task, lang: str = "en") -> list[Finding]:
    """Return a warning when a rewrite keeps less than half of a file that the task did not ask to shrink."""
    if task.action != TaskAction.MODIFY or _SHRINK_WORDS.search(task.instruction):
        return []
    old_lines = [line for line in old_content.splitlines() if line.strip()]
    new_lines = [line for line in new_content.splitlines() if line.strip()]
    if len(old_lines) < DELETION_MIN_OLD_LINES:
        return []

    matcher = difflib.SequenceMatcher(a=old_lines, b=new_lines, autojunk=False)
    kept = sum(block.size for block in matcher.get_matching_blocks())
    if kept >= KEPT_SHARE_MIN * len(old_lines) or len(new_lines) >= KEPT_SHARE_MIN * len(old_lines):
        return []
    removed = len(old_lines) - kept
    first_removed = next(
        (line for tag, start, end, _, _ in matcher.get_opcodes() if tag in ("delete", "replace") for line in old_lines[start:end]),
        "",
    )
    return [
        guard_finding(
            "large_deletion", Severity.WARN, lang, path=path, evidence=first_removed,
            removed=removed, total=len(old_lines), remaining=len(new_lines),
        )
    ]


def new_public_names(
    old_content: str | None, new_content: str, path: str, task: Task, spec: Spec, lang: str = "en"
) -> list[Finding]:
    """Return a warning for each new public function or class that the task never mentions.

    For a new file only classes count, because a created class brings its own members. A name
    counts as mentioned when the instruction, the file name or a served requirement contains it.
    """
    try:
        lexer = get_lexer_for_filename(path, stripnl=False, ensurenl=False)
    except ClassNotFound:
        return []
    old_names = {name for name, _, _ in public_definitions(old_content or "", lexer)}
    requirement_text = " ".join(item.text for item in spec.requirements if item.id in task.requirement_ids)
    mentioned = f"{task.instruction} {path} {requirement_text}".lower()

    findings: list[Finding] = []
    for name, kind, line in public_definitions(new_content, lexer):
        if name in old_names or name.lower() in mentioned:
            continue
        if old_content is None and kind != "class":
            continue
        old_names.add(name)
        findings.append(
            guard_finding("new_public_name", Severity.WARN, lang, path=path, line=line, evidence=name, name=name)
        )
    return findings


def public_definitions(content: str, lexer) -> list[tuple[str, str, int]]:
    """Return (name, "class" or "function", line) for each public definition in `content`.

    A definition is private when its line carries private, internal, fileprivate or protected,
    when it overrides (the name comes from elsewhere), or when its name starts with "_".
    """
    definitions: list[tuple[str, str, int]] = []
    line = 1
    line_words: list[str] = []
    for token_type, value in lexer.get_tokens(content):
        if token_type in Keyword or token_type in Name.Decorator:
            line_words.append(value.strip().lstrip("@"))
        if token_type in Name.Function or token_type in Name.Class:
            private = bool(_PRIVATE_WORDS.intersection(line_words)) or "override" in line_words
            if not private and not value.startswith("_"):
                kind = "class" if token_type in Name.Class else "function"
                definitions.append((value, kind, line))
        newlines = value.count("\n")
        if newlines:
            line += newlines
            line_words = []
    return definitions
