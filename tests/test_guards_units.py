"""Check the single guards on small inputs: feedback text, placeholders, literals, resources and paths."""

from __future__ import annotations

from pathlib import Path

import pytest
from pygments.lexers import get_lexer_for_filename

from sddtui.guards.content import find_elisions, find_encoding_damage
from sddtui.guards.feedback import MAX_FEEDBACK_LINES, feedback_lines, feedback_prompt
from sddtui.guards.model import Finding, Severity, blocks_write
from sddtui.guards.paths import case_variant
from sddtui.guards.ui_text import android_strings, forbids_ui_text_change, string_literals, task_asks_for_ui_text
from sddtui.spec.model import Spec
from sddtui.tasks.model import Task, TaskAction


def _finding(kind: str, severity: Severity, feedback: str, not_applied: bool = False) -> Finding:
    return Finding(kind=kind, severity=severity, message=kind, feedback=feedback, not_applied=not_applied)


def _task(instruction: str) -> Task:
    return Task(id="T1", path="src/a.kt", action=TaskAction.MODIFY, requirement_ids=[], instruction=instruction)


def test_feedback_prompt_lists_blocks_first_with_note():
    findings = [
        _finding("far_hunk", Severity.WARN, "Change only save."),
        _finding("elided_code", Severity.BLOCK, "Write the complete file."),
        _finding("far_hunk", Severity.WARN, "Change only save."),
    ]

    text = feedback_prompt(findings, note="  Keep the Room entity.  ")

    lines = text.splitlines()
    assert lines[0] == "Your previous answer was rejected. Fix these problems:"
    assert lines[1] == "- Write the complete file."
    assert lines[2] == "- Change only save."
    assert lines[-1] == "Note from the developer: Keep the Room entity."
    assert len([line for line in lines if line.startswith("- ")]) == 2


def test_feedback_prompt_note_only():
    assert feedback_prompt([], note="Use Room.") == "Note from the developer: Use Room."
    assert feedback_prompt([], note="") == ""


def test_feedback_lines_capped():
    findings = [_finding("far_hunk", Severity.WARN, f"Change only function {index}.") for index in range(20)]
    assert len(feedback_lines(findings)) == MAX_FEEDBACK_LINES


def test_not_applied_block_does_not_block_write():
    assert blocks_write([_finding("path_parent", Severity.BLOCK, "x", not_applied=True)]) is False
    assert blocks_write([_finding("elided_code", Severity.BLOCK, "x")]) is True
    assert blocks_write([_finding("far_hunk", Severity.WARN, "x")]) is False


@pytest.mark.parametrize(
    "line",
    [
        "    // ... rest of code unchanged ...",
        "    # ... rest of methods unchanged ...",
        "    /* existing code here */",
        "<!-- rest of the file stays the same -->",
        "-- remaining functions omitted for brevity",
        "    // 以下略",
        "    # 省略",
        "    // 既存のコードはそのまま",
        "    // ...",
        "    ...existing code...",
    ],
)
def test_elision_placeholder_found(line):
    findings = find_elisions(f"class A {{\n{line}\n}}\n", "class A {\n    val a = 1\n}\n", "src/A.kt")
    assert [finding.kind for finding in findings] == ["elided_code"]
    assert findings[0].line == 2
    assert findings[0].severity == "block"


@pytest.mark.parametrize(
    "line",
    [
        '    print("rest of the code")',
        "    value = ...",
        "    // Save the habit, then refresh the list.",
    ],
)
def test_elision_ignores_code_and_comments(line):
    assert find_elisions(f"def f():\n{line}\n", None, "src/a.py") == []


def test_elision_kept_when_original_has_it():
    original = "def f():\n    # ... rest of code unchanged ...\n    pass\n"
    assert find_elisions(original, original, "src/a.py") == []


def test_encoding_damage_only_when_new():
    assert find_encoding_damage("a = '\ufffd'\n", "a = '\ufffd'\n", "src/a.py") == []
    findings = find_encoding_damage("a = 'x'\nb = '<0xE3>'\n", "a = 'x'\n", "src/a.py")
    assert [(finding.kind, finding.line) for finding in findings] == [("encoding_damage", 2)]
    assert "<0xE3>" in findings[0].message


def test_control_characters_blocked():
    new = 'a = "x"\nb = "\x1b[31mred\x00"\nc = "\x7f"\n'
    findings = find_encoding_damage(new, 'a = "x"\n', "src/a.py")

    assert [(finding.kind, finding.severity, finding.line) for finding in findings] == [
        ("control_character", "block", 2)
    ]
    finding = findings[0]
    assert finding.evidence == 'b = "\\x1b[31mred\\x00"'
    assert "U+0000 NUL, U+001B ESC, U+007F DEL" in finding.message
    assert "\x00" not in finding.message
    assert "\x1b" not in finding.feedback
    assert "\\x1b" in finding.feedback


def test_control_characters_allowed_when_original_has_them():
    original = "a = 1\n\x0c\nb = 2\n"
    assert find_encoding_damage(original + "c = 3\n", original, "src/a.py") == []


def test_control_character_not_in_original_still_blocked():
    original = "a = 1\n\x0c\nb = 2\n"
    findings = find_encoding_damage(original + "c = '\x00'\n", original, "src/a.py")

    assert [finding.kind for finding in findings] == ["control_character"]
    assert "U+000C" not in findings[0].message
    assert "U+0000 NUL" in findings[0].message


def test_control_character_line_counts_only_newlines():
    # str.splitlines() would count the form feed as a line break and report line 3.
    findings = find_encoding_damage("a = 1\x0cb = 2\nc = '\x00'\n", "a = 1\x0cb = 2\n", "src/a.py")
    assert findings[0].line == 2


def test_control_character_evidence_near_character():
    line = "x = '" + "a" * 400 + "\x00'"
    findings = find_encoding_damage(line + "\n", None, "src/a.py")
    assert "\\x00" in findings[0].evidence
    assert findings[0].evidence.startswith("…")


def test_tab_and_crlf_are_not_control_damage():
    assert find_encoding_damage("a = 1\r\n\tb = 2\r\n", None, "src/a.py") == []


def test_kotlin_literals_with_interpolation():
    lexer = get_lexer_for_filename("a.kt", stripnl=False, ensurenl=False)
    literals = string_literals('val a = "Hi ${name}!"\nval c = \'x\'\nText("Save")\n', lexer)
    assert literals == [('"Hi ${name}!"', 1), ('"Save"', 3)]


def test_python_docstring_not_a_literal():
    lexer = get_lexer_for_filename("a.py", stripnl=False, ensurenl=False)
    literals = string_literals('def f():\n    """Return the title."""\n    return "Title"\n', lexer)
    assert literals == [('"Title"', 3)]


def test_android_strings_parsed():
    xml = '<resources><string name="a">Add</string><plurals name="d"><item quantity="one">1 day</item></plurals></resources>'
    assert android_strings(xml) == {"a": "Add", "d": "1 day"}
    assert android_strings("<resources><string") is None


def test_habit_spec_forbids_ui_text(repo_root):
    from sddtui.spec.parse import load_spec

    assert forbids_ui_text_change(load_spec(repo_root / "specs" / "habit.md"))
    assert not forbids_ui_text_change(Spec(path=Path("s.md"), text="Build a habit app."))
    assert forbids_ui_text_change(Spec(path=Path("s.md"), text="制約: UIの文言は指示なしに変更しないこと。"))


@pytest.mark.parametrize(
    ("instruction", "asks"),
    [
        ('Change the button label to "Done".', True),
        ("Translate the screen into Japanese.", True),
        ("ボタンの文言を「完了」に変更する。", True),
        ("Add a string resource for the empty list message.", False),
        ("Add a title field to Habit.", False),
        ("Call onDelete when the button is clicked.", False),
    ],
)
def test_task_asks_for_ui_text(instruction, asks):
    assert task_asks_for_ui_text(_task(instruction)) is asks


def test_case_variant_found(tmp_path):
    (tmp_path / "src" / "Main").mkdir(parents=True)
    (tmp_path / "src" / "Main" / "Habit.kt").write_text("x")

    assert case_variant(tmp_path, "src/main/habit.kt") == "src/Main/Habit.kt"
    assert case_variant(tmp_path, "src/Main/Habit.kt") is None
    assert case_variant(tmp_path, "src/Main/Other.kt") is None
