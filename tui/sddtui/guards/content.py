"""Find placeholders that stand for omitted code, and encoding damage or control characters, in a proposed file."""

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
# C0 control characters other than tab, line feed and carriage return, and DEL. Source files do not
# contain them, and a terminal would act on an escape sequence shown in the diff.
_CONTROL_CHARACTER = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
# ASCII names of the control characters, indexed by code point; DEL is 0x7f.
_CONTROL_NAMES = (
    "NUL SOH STX ETX EOT ENQ ACK BEL BS HT LF VT FF CR SO SI "
    "DLE DC1 DC2 DC3 DC4 NAK SYN ETB CAN EM SUB ESC FS GS RS US"
).split()
# Characters of a line kept before its first control character in a finding's evidence.
_EVIDENCE_LEAD_CHARS = 60


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
    """Return a block finding when `new_content` has more U+FFFD or <0xNN> byte tokens than the old file,
    or control characters that the old file does not contain.

    The first two are what a tokenizer leaves behind when it splits a multi-byte character, so
    writing them would corrupt the file.
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
    findings.extend(_find_control_characters(new_content, old, path, lang))
    return findings


def _find_control_characters(new_content: str, old_content: str, path: str, lang: str) -> list[Finding]:
    """Return a block finding when `new_content` has control characters that the old file does not contain."""
    allowed = set(_CONTROL_CHARACTER.findall(old_content))
    added = sorted({character for character in _CONTROL_CHARACTER.findall(new_content)} - allowed)
    if not added:
        return []

    # Numbered by "\n" alone, as an editor counts lines: str.splitlines() also breaks at VT, FF and FS.
    for number, line in enumerate(new_content.split("\n"), start=1):
        first = next((character for character in line if character in added), None)
        if first is not None:
            break
    # The evidence starts shortly before the first such character, so a long line cannot hide it.
    start = max(0, line.index(first) - _EVIDENCE_LEAD_CHARS)
    evidence = ("…" if start else "") + _escape_controls(line[start:])
    characters = ", ".join(_describe_control(character) for character in added)
    return [
        guard_finding(
            "control_character", Severity.BLOCK, lang, path=path, line=number, evidence=evidence, characters=characters,
        )
    ]


def _describe_control(character: str) -> str:
    """Return a control character as its code point and ASCII name, e.g. "U+0000 NUL"."""
    code = ord(character)
    name = "DEL" if code == 0x7F else _CONTROL_NAMES[code]
    return f"U+{code:04X} {name}"


def _escape_controls(line: str) -> str:
    """Return `line` with each control character written as a \\xNN escape, so the evidence can be shown."""
    return _CONTROL_CHARACTER.sub(lambda match: f"\\x{ord(match.group(0)):02x}", line.rstrip("\r"))


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
