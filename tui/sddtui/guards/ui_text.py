"""Find UI text that an answer changed when the spec forbids changing it: string literals and resources."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ElementTree
from collections import Counter
from pathlib import PurePosixPath

from pygments.lexers import get_lexer_for_filename
from pygments.token import String
from pygments.util import ClassNotFound

from sddtui.guards.findings import guard_finding
from sddtui.guards.model import Finding, Severity
from sddtui.spec.model import Spec
from sddtui.tasks.model import Task

# A spec sentence that forbids changing UI text, e.g. "Do NOT modify UI text without explicit instruction".
_FORBIDS_UI_TEXT = re.compile(
    r"(?:do\s+not|don't|never|must\s+not|shall\s+not|may\s+not)\b[^.\n]{0,40}?"
    r"\b(?:modify|change|edit|alter|rewrite|rephrase|translate|touch)\b[^.\n]{0,30}?"
    r"\b(?:ui|user[- ](?:facing|visible|interface)|displayed|screen)\s+(?:text|strings?|copy|labels?|wording|messages?)"
    r"|(?:UI|画面|表示)\s*(?:の)?\s*(?:テキスト|文言|文字列|ラベル)[^。\n]{0,20}?(?:変更しない|変更禁止|変えない|変更しては|変更不可|触らない)",
    re.IGNORECASE,
)
# A task instruction that asks to change UI text, which lifts the rule for that task: a change verb
# before a UI text noun ("change the button label"), or a request to translate or localise.
_ASKS_FOR_UI_TEXT = re.compile(
    r"\b(?:change|modify|edit|rename|reword|rephrase|rewrite|update|replace|fix|correct)\b[^.\n]{0,40}?"
    r"\b(?:text|texts|labels?|wording|captions?|titles?|strings?|messages?|copy)\b"
    r"|\b(?:translat\w*|locali[sz]\w*)\b"
    r"|(?:文言|テキスト|ラベル|表記|文字列)[^。\n]{0,20}?(?:変更|修正|書き換|直|翻訳)|翻訳|多言語",
    re.IGNORECASE,
)
_ANDROID_STRING_ELEMENTS = ("string", "string-array", "plurals")
# A literal that reads as text for a person: two letters and a space, or any non-ASCII letter.
_READS_AS_TEXT = re.compile(r"[A-Za-z]{2,}\s+\S|[^\x00-\x7f]")


def forbids_ui_text_change(spec: Spec) -> bool:
    """Return True when the spec's constraints (or its text) forbid changing UI text."""
    return any(_FORBIDS_UI_TEXT.search(item) for item in spec.constraints) or bool(_FORBIDS_UI_TEXT.search(spec.text))


def task_asks_for_ui_text(task: Task) -> bool:
    """Return True when the task's instruction asks to change UI text, which lifts the rule for it."""
    return bool(_ASKS_FOR_UI_TEXT.search(task.instruction))


def check_ui_text(
    old_content: str | None, new_content: str, path: str, spec: Spec, task: Task, lang: str = "en"
) -> list[Finding]:
    """Return findings for UI text that the new file changes or removes, when the spec forbids it.

    Only text present in the old file counts, because new literals belong to new code. A changed
    Android string resource blocks. A changed literal in code blocks when it reads as text for a
    person, and warns otherwise (a key, a tag, a format).
    """
    if old_content is None or not forbids_ui_text_change(spec) or task_asks_for_ui_text(task):
        return []
    if _is_android_strings(path):
        return _check_string_resources(old_content, new_content, path, lang)
    return _check_literals(old_content, new_content, path, lang)


def _is_android_strings(path: str) -> bool:
    """Return True for an Android values resource such as res/values-ja/strings.xml."""
    pure = PurePosixPath(path)
    return pure.suffix == ".xml" and pure.parent.name.startswith("values")


def _check_string_resources(old_content: str, new_content: str, path: str, lang: str) -> list[Finding]:
    """Return a block finding for each string resource whose text changed or that was removed."""
    old_strings = android_strings(old_content)
    new_strings = android_strings(new_content)
    if old_strings is None or new_strings is None:
        return []

    findings: list[Finding] = []
    for name, old_text in old_strings.items():
        new_text = new_strings.get(name)
        if new_text == old_text:
            continue
        line = _line_of(new_content, f'name="{name}"') or _line_of(old_content, f'name="{name}"')
        shown_new = "(removed)" if new_text is None else new_text
        findings.append(
            guard_finding(
                "ui_resource_changed", Severity.BLOCK, lang, path=path, line=line,
                evidence=f"{name}: {old_text!r} -> {shown_new!r}", name=name, old=old_text,
            )
        )
    return findings


def android_strings(content: str) -> dict[str, str] | None:
    """Return the text of each string resource by name (arrays and plurals joined), or None when not XML."""
    try:
        root = ElementTree.fromstring(content)
    except ElementTree.ParseError:
        return None
    strings: dict[str, str] = {}
    for element in root:
        if element.tag not in _ANDROID_STRING_ELEMENTS or "name" not in element.attrib:
            continue
        if element.tag == "string":
            text = "".join(element.itertext())
        else:
            text = " | ".join("".join(item.itertext()) for item in element)
        strings[element.attrib["name"]] = text
    return strings


def _check_literals(old_content: str, new_content: str, path: str, lang: str) -> list[Finding]:
    """Return a finding for each string literal of the old file that the new file no longer contains."""
    try:
        lexer = get_lexer_for_filename(path, stripnl=False, ensurenl=False)
    except ClassNotFound:
        # NOTE: files that Pygments cannot name (and so cannot tokenize) are not checked for UI text.
        return []
    old_literals = string_literals(old_content, lexer)
    new_literals = Counter(text for text, _ in string_literals(new_content, lexer))

    findings: list[Finding] = []
    seen: set[str] = set()
    for text, old_line in old_literals:
        if new_literals[text] > 0:
            new_literals[text] -= 1
            continue
        if text in seen or not _has_words(text):
            continue
        seen.add(text)
        severity = Severity.BLOCK if _READS_AS_TEXT.search(_unquote(text)) else Severity.WARN
        findings.append(
            guard_finding(
                "ui_text_changed", severity, lang, path=path, line=old_line, evidence=text, old=text,
            )
        )
    return findings


def string_literals(content: str, lexer) -> list[tuple[str, int]]:
    """Return each string literal of `content` with its 1-based line, interpolations included.

    Docstrings and character literals are left out. Adjacent string tokens (a quote, the text,
    an interpolation) join into one literal.
    """
    literals: list[tuple[str, int]] = []
    parts: list[str] = []
    start_line = 1
    line = 1
    interpolation_depth = 0
    for token_type, value in lexer.get_tokens(content):
        in_string = token_type in String and token_type not in String.Doc and token_type not in String.Char
        if in_string or (parts and interpolation_depth > 0):
            if not parts:
                start_line = line
            parts.append(value)
            if token_type in String.Interpol:
                interpolation_depth += value.count("{") - value.count("}")
        elif parts:
            literals.append(("".join(parts), start_line))
            parts = []
            interpolation_depth = 0
        line += value.count("\n")
    if parts:
        literals.append(("".join(parts), start_line))
    return literals


def _has_words(text: str) -> bool:
    """Return True when a literal contains a letter, so that empty strings and separators are not UI text."""
    return any(character.isalpha() for character in _unquote(text))


def _unquote(text: str) -> str:
    """Return a literal's text without its prefix and quotes."""
    return text.strip().lstrip("rRbBuUfF@$").strip("\"'`")


def _line_of(content: str, needle: str) -> int | None:
    """Return the 1-based line that first contains `needle`, or None."""
    index = content.find(needle)
    return None if index < 0 else content.count("\n", 0, index) + 1

