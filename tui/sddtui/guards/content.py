"""Find placeholders that stand for omitted code, and encoding damage, in a proposed file."""

from __future__ import annotations

import re

from sddtui.guards.findings import guard_finding
from sddtui.guards.model import Finding, Severity

# The start of a comment in the common languages: # // /* * <!-- -- ; and {/* in JSX.
_COMMENT_START = re.compile(r"(?:^|\s)(?:#|//|/\*+|\*|<!--|--|;|\{/\*)\s?")

# Phrases that stand for code left out. English and Japanese; matched case-insensitively in
# comment text or on a line of their own.
_ELISION_PHRASES = re.compile(
    r"(?:rest|remainder)\s+of\s+(?:the\s+)?(?:code|file|class|methods?|functions?|implementation|body|imports?)"
    r"|(?:existing|other|remaining|previous|same|original)\s+(?:code|methods?|functions?|implementation|imports?|content|logic)"
    r"(?:\s+(?:here|unchanged|remains?|stays?|as\s+(?:before|is)|omitted|goes\s+here))?"
    r"|(?:code|methods?|functions?|implementation|content|logic)\s+(?:is\s+|are\s+)?"
    r"(?:unchanged|omitted|elided|not\s+shown|remains?\s+the\s+same|stays?\s+the\s+same|as\s+before)"
    r"|(?:omitted|elided|truncated|abbreviated)\s+for\s+(?:brevity|clarity|space)"
    r"|\.\.\.\s*(?:unchanged|same\s+as\s+before|etc\.?)\s*\.{0,3}"
    r"|unchanged\s*\.\.\."
    r"|以下略|以下省略|省略|中略|後略|(?:既存|残り|その他|他)の(?:コード|メソッド|関数|処理|実装|部分)"
    r"|(?:変更なし|変更無し|同じ|そのまま)(?:です|のまま)?\s*(?:\.\.\.|…)",
    re.IGNORECASE,
)
# A comment that contains nothing but an ellipsis, e.g. "// ..." or "# …".
_BARE_ELLIPSIS_COMMENT = re.compile(r"^\s*(?:#|//|/\*+|<!--|--|\{/\*)\s*(?:\.\.\.|…)\s*(?:\*/|-->|\*/\})?\s*$")

# Literal byte tokens that a tokenizer emits for a byte it could not decode, e.g. <0xE3>.
_BYTE_TOKEN = re.compile(r"<0x[0-9A-Fa-f]{2}>")
_REPLACEMENT_CHARACTER = "\ufffd"


def find_elisions(new_content: str, old_content: str | None, path: str, lang: str = "en") -> list[Finding]:
    """Return a block finding for each placeholder line in `new_content` that the old file does not contain.

    Writing such a file would delete the code the placeholder stands for.
    """
    old_lines = {_squash(line) for line in (old_content or "").splitlines()}
    findings: list[Finding] = []
    for number, line in enumerate(new_content.splitlines(), start=1):
        if not _is_placeholder(line) or _squash(line) in old_lines:
            continue
        findings.append(guard_finding("elided_code", Severity.BLOCK, lang, path=path, line=number, evidence=line))
    return findings


def _is_placeholder(line: str) -> bool:
    """Return True when a line is a comment or a bare remark that stands for omitted code."""
    if _BARE_ELLIPSIS_COMMENT.match(line):
        return True
    stripped = line.strip()
    if not stripped:
        return False
    comment = _COMMENT_START.search(line)
    if comment is not None:
        text = line[comment.end():]
    elif stripped.startswith(("...", "…", "(...", "[...")):
        # A line with no comment marker counts only when it opens with an ellipsis, so it cannot be code.
        text = stripped
    else:
        return False
    return bool(_ELISION_PHRASES.search(text))


def _squash(line: str) -> str:
    """Return a line without surrounding whitespace and with inner runs of spaces collapsed."""
    return " ".join(line.split())


def find_encoding_damage(new_content: str, old_content: str | None, path: str, lang: str = "en") -> list[Finding]:
    """Return a block finding when `new_content` has more U+FFFD or <0xNN> byte tokens than the old file.

    Both are what a tokenizer leaves behind when it splits a multi-byte character, so writing them
    would corrupt the file.
    """
    old = old_content or ""
    findings: list[Finding] = []
    if new_content.count(_REPLACEMENT_CHARACTER) > old.count(_REPLACEMENT_CHARACTER):
        line, text = _first_line_with(new_content, lambda text: _REPLACEMENT_CHARACTER in text, old)
        findings.append(
            guard_finding("encoding_damage", Severity.BLOCK, lang, path=path, line=line, evidence=text, token="U+FFFD")
        )
    if len(_BYTE_TOKEN.findall(new_content)) > len(_BYTE_TOKEN.findall(old)):
        line, text = _first_line_with(new_content, lambda text: bool(_BYTE_TOKEN.search(text)), old)
        token = _BYTE_TOKEN.search(text)
        findings.append(
            guard_finding(
                "encoding_damage", Severity.BLOCK, lang, path=path, line=line, evidence=text,
                token=token.group(0) if token else "<0x..>",
            )
        )
    return findings


def _first_line_with(content: str, test, old_content: str) -> tuple[int, str]:
    """Return the number and text of the first line that passes `test` and is not in the old file."""
    old_lines = set(old_content.splitlines())
    first: tuple[int, str] | None = None
    for number, line in enumerate(content.splitlines(), start=1):
        if test(line):
            first = first or (number, line)
            if line not in old_lines:
                return number, line
    return first or (1, "")
