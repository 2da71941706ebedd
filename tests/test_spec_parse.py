"""Tests of the Markdown spec parser, its input errors and the planning lint."""

from __future__ import annotations

import concurrent.futures
import os
import re
import socket
import tomllib
from pathlib import Path

import pytest

from sddtui.errors import SddtuiError
from sddtui.spec.parse import (
    SpecNotPlannable,
    canonical_language,
    lint_spec,
    load_spec,
    mvp_ids,
    parse_spec,
    require_plannable,
    source_extensions,
)

REPO = Path(__file__).resolve().parent.parent
HABIT_SPEC = REPO / "specs" / "habit.md"
MESSAGES = REPO / "tui" / "sddtui" / "messages"

JAPANESE_SPEC = """\
# 習慣トラッカー 仕様書

## 目的

ユーザーが良い習慣を続けられるようにする。

## 機能

ユーザーができること:

FUNC-1. 習慣を作成、更新、削除できる
FUNC-2. 習慣を続けた日数を確認できる
FUNC-3. 削除した習慣の記録も確認できる

ユーザーができないこと:

1. 回数で記録すること。状態は「完了」か「未完了」だけ。

## MVP

FUNC-1 と FUNC-2 を実装する。FUNC-3 は不要。

## アーキテクチャ

Androidアプリです。

| 項目 | 値 |
|---|---|
| パッケージ名 | com.example.habits |
| 言語 | Kotlin |
| 最小SDK | API 26 |

## 制約

- 仕様書に書かれたことだけを実装する
- UI の文言を勝手に変えない

## ソース構成

`app/src/main/java/com/example/habits`

## テストソース

`app/src/test/java/com/example/habits`
"""

HEADING_SPEC = """\
Habit Tracker
=============

## Overview

Help people keep a streak of good habits.

## Functional Requirements

- **FUNC-1**: Create, update and delete habits
  from the main screen.
- **FUNC-2**: Show the current streak.
- **FUNC-3**: Keep the history of deleted habits.

### User cannot

- Record how many times a habit was done.

## MVP Scope

FUNC-1 to FUNC-2 now, FUNC-3 later.

## Architecture

- Language: Python 3.12
- Package: habits

```text
# Not a heading: inside a code fence
- Objective
```

## Constraints

1. Use only the standard library.
2. Keep functions short.

## Source

- `src/habits`

## Tests

- `tests`
"""


def write(tmp_path: Path, text: str, name: str = "spec.md") -> Path:
    """Write `text` to a spec file under `tmp_path` and return its path."""
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


# ---------------------------------------------------------------------------------------------
# The habit spec


def test_habit_requirements():
    spec = load_spec(HABIT_SPEC)
    assert [requirement.id for requirement in spec.requirements] == ["FUNC-1", "FUNC-2", "FUNC-3"]
    assert spec.requirements[0].text == "Create, update and delete habits"
    assert spec.requirements[1].text.startswith("Track their progress.")
    assert spec.requirements[2].text.startswith("Even the habits are deleted")


def test_habit_scope_and_prohibitions():
    spec = load_spec(HABIT_SPEC)
    assert spec.mvp_ids == ["FUNC-1"]
    assert "FUNC-1 should be implemented" in spec.mvp_text
    assert len(spec.prohibitions) == 1
    assert spec.prohibitions[0].startswith("Track the progress by recording")


def test_habit_architecture():
    architecture = load_spec(HABIT_SPEC).architecture
    assert architecture.name == "Habit Tracker"
    assert architecture.language == "Kotlin"
    assert architecture.package == "com.example.habittracker"
    assert architecture.min_sdk is not None
    assert architecture.min_sdk.startswith("API 24")
    assert architecture.save_location == "~/code/com.example.habittracker"
    assert architecture.build_language is not None
    assert architecture.build_language.startswith("Kotlin DSL")
    assert architecture.platform == "Android app"


def test_habit_constraints_and_objective():
    spec = load_spec(HABIT_SPEC)
    assert len(spec.constraints) == 4
    assert spec.constraints[0] == "Implement ONLY what is specified in this document"
    assert spec.constraints[3] == 'Do NOT add "nice to have" improvements'
    assert spec.objective == "Users will be motivated to streak their good habits using this app."


def test_habit_roots():
    spec = load_spec(HABIT_SPEC)
    assert spec.source_roots == ["~/code/com.example.habittracker/app/src/main/java/com/example/habittracker"]
    assert spec.test_roots == [
        "~/code/com.example.habittracker/app/src/test/java/com/example/habittracker",
        "~/code/com.example.habittracker/app/src/main/java/com/example/habittracker",
    ]


def test_habit_sections_and_lint():
    spec = load_spec(HABIT_SPEC)
    titles = [section.title for section in spec.sections]
    assert titles[:4] == ["Objective", "Function", "MVP", "Architecture"]
    assert len(titles) == 8
    assert lint_spec(spec) == []
    require_plannable(spec)


# ---------------------------------------------------------------------------------------------
# Other layouts


def test_japanese_spec(tmp_path):
    spec = load_spec(write(tmp_path, JAPANESE_SPEC))
    assert spec.objective == "ユーザーが良い習慣を続けられるようにする。"
    assert [requirement.id for requirement in spec.requirements] == ["FUNC-1", "FUNC-2", "FUNC-3"]
    assert spec.requirements[0].text == "習慣を作成、更新、削除できる"
    assert spec.prohibitions == ["回数で記録すること。状態は「完了」か「未完了」だけ。"]
    assert spec.mvp_ids == ["FUNC-1", "FUNC-2"]
    assert spec.architecture.language == "Kotlin"
    assert spec.architecture.package == "com.example.habits"
    assert spec.architecture.min_sdk == "API 26"
    assert spec.architecture.platform == "Androidアプリ"
    assert spec.constraints == ["仕様書に書かれたことだけを実装する", "UI の文言を勝手に変えない"]
    assert spec.source_roots == ["app/src/main/java/com/example/habits"]
    assert spec.test_roots == ["app/src/test/java/com/example/habits"]
    assert lint_spec(spec) == []


def test_heading_spec(tmp_path):
    spec = parse_spec(HEADING_SPEC, tmp_path / "spec.md")
    assert spec.objective == "Help people keep a streak of good habits."
    assert [requirement.id for requirement in spec.requirements] == ["FUNC-1", "FUNC-2", "FUNC-3"]
    assert spec.requirements[0].text == "Create, update and delete habits from the main screen."
    assert spec.prohibitions == ["Record how many times a habit was done."]
    assert spec.mvp_ids == ["FUNC-1", "FUNC-2"]
    assert spec.architecture.language == "Python 3.12"
    assert spec.constraints == ["Use only the standard library.", "Keep functions short."]
    assert spec.source_roots == ["src/habits"]
    assert spec.test_roots == ["tests"]
    assert lint_spec(spec) == []


def test_heading_spec_ignores_fenced_lines(tmp_path):
    spec = parse_spec(HEADING_SPEC, tmp_path / "spec.md")
    titles = [section.title for section in spec.sections]
    assert "Objective" not in titles
    assert "Architecture" in titles


def test_front_matter_is_skipped(tmp_path):
    text = "---\ntitle: habits\nlanguage: Go\n---\n" + HEADING_SPEC
    spec = parse_spec(text, tmp_path / "spec.md")
    assert spec.architecture.language == "Python 3.12"
    assert spec.mvp_ids == ["FUNC-1", "FUNC-2"]


def test_bare_path_lines_are_roots(tmp_path):
    text = "# Source Structure\n\nsrc/app\n\n# Testing Source\n\n- tests/unit\n"
    spec = parse_spec(text, tmp_path / "spec.md")
    assert spec.source_roots == ["src/app"]
    assert spec.test_roots == ["tests/unit"]


def test_requirements_without_function_section(tmp_path):
    text = "# Spec\n\nREQ-1. Log in\nREQ-2: Log out\n\n# MVP\n\nREQ-1\n"
    spec = parse_spec(text, tmp_path / "spec.md")
    assert [requirement.id for requirement in spec.requirements] == ["REQ-1", "REQ-2"]
    assert spec.requirements[1].text == "Log out"
    assert spec.mvp_ids == ["REQ-1"]


def test_crlf_and_bom(tmp_path):
    path = tmp_path / "spec.md"
    path.write_bytes(b"\xef\xbb\xbf" + HABIT_SPEC.read_bytes().replace(b"\n", b"\r\n"))
    spec = load_spec(path)
    assert spec.mvp_ids == ["FUNC-1"]
    assert len(spec.constraints) == 4


# ---------------------------------------------------------------------------------------------
# MVP ids


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("First, FUNC-1 should be implemented. Other functions are not required now.", ["FUNC-1"]),
        ("FUNC-1, FUNC-2 should be implemented.", ["FUNC-1", "FUNC-2"]),
        ("Implement FUNC-1 and FUNC-3.", ["FUNC-1", "FUNC-3"]),
        ("FUNC-1 to FUNC-3.", ["FUNC-1", "FUNC-2", "FUNC-3"]),
        ("FUNC-2 – 4 are in scope.", ["FUNC-2", "FUNC-3", "FUNC-4"]),
        ("- FUNC-1\n- FUNC-2\n", ["FUNC-1", "FUNC-2"]),
        ("FUNC-1 and FUNC-3 first, FUNC-2 later.", ["FUNC-1", "FUNC-3"]),
        ("FUNC-1 is required. FUNC-2, FUNC-3 are not required.", ["FUNC-1"]),
        ("Build FUNC-1 but not FUNC-2.", ["FUNC-1"]),
        ("FUNC-1〜FUNC-2 を実装する。FUNC-3 は対象外。", ["FUNC-1", "FUNC-2"]),
        ("まず FUNC-1 のみ実装し、FUNC-2 は実装しない。", ["FUNC-1"]),
        ("All functions.", []),
        ("", []),
    ],
)
def test_mvp_ids(text, expected):
    assert mvp_ids(text) == expected


# ---------------------------------------------------------------------------------------------
# Input errors


def error_of(path: Path) -> SddtuiError:
    """Return the SddtuiError that load_spec raises for `path`."""
    with pytest.raises(SddtuiError) as caught:
        load_spec(path)
    return caught.value


def test_missing_file(tmp_path):
    error = error_of(tmp_path / "nope.md")
    assert error.key == "spec.not_found"
    assert str(tmp_path / "nope.md") in error.render("en")
    assert str(tmp_path / "nope.md") in error.render("ja")


def test_directory(tmp_path):
    error = error_of(tmp_path)
    assert error.key == "spec.is_directory"
    assert str(tmp_path) in str(error)


def test_fifo_rejected_without_blocking(tmp_path):
    fifo = tmp_path / "spec.md"
    os.mkfifo(fifo)

    # Opening a FIFO with no writer blocks, so the check must run in a thread that can time out.
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        future = pool.submit(error_of, fifo)
        try:
            error = future.result(timeout=5)
        except concurrent.futures.TimeoutError:
            # Unblock the reader so the worker thread ends, then fail.
            with open(fifo, "wb"):
                pass
            pytest.fail("load_spec blocked on a FIFO")
    assert error.key == "spec.not_regular_file"
    assert "FIFO" in str(error)
    assert str(fifo) in error.render("ja")


def test_device_rejected():
    error = error_of(Path("/dev/null"))
    assert error.key == "spec.not_regular_file"
    assert "character device" in str(error)


def test_socket_rejected(tmp_path):
    path = tmp_path / "s.md"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        error = error_of(path)
    assert error.key == "spec.not_regular_file"
    assert "socket" in str(error)


def test_unreadable_file(tmp_path, monkeypatch):
    path = write(tmp_path, "# Objective\n")

    def deny(self):
        raise PermissionError(13, "Permission denied")

    # Tests may run as root, which ignores file modes, so the denial is simulated.
    monkeypatch.setattr(Path, "read_bytes", deny)
    error = error_of(path)
    assert error.key == "spec.unreadable"
    assert "Permission denied" in str(error)
    assert str(path) in str(error)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"# Objective\x00\x01\x02", "NUL bytes"),
        ("# 目的\n".encode("utf-16"), "NUL bytes"),
        ("# Objective\ncaf\xe9\n".encode("latin-1"), "invalid UTF-8"),
        (b"\x89PNG\r\n\x1a\n\xff\xfe", "invalid UTF-8"),
    ],
)
def test_not_text(tmp_path, data, reason):
    path = tmp_path / "spec.md"
    path.write_bytes(data)
    error = error_of(path)
    assert error.key == "spec.not_text"
    assert reason in str(error)
    assert "UTF-8" in error.render("ja")


@pytest.mark.parametrize("text", ["", "   \n\n\t\n"])
def test_empty_file(tmp_path, text):
    assert error_of(write(tmp_path, text)).key == "spec.empty"


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"objective": "habits", "functions": ["FUNC-1"]}', "JSON"),
        ('[\n  {"id": "FUNC-1"}\n]\n', "JSON"),
        ("name: habits\nlanguage: kotlin\nfunctions:\n  - create\n  - delete\n", "YAML"),
        ("# settings for the app\nname: habits\nlanguage: kotlin\n", "YAML"),
        ("Just a sentence about habits.\nAnother line of plain text.\n", "no headings"),
    ],
)
def test_not_markdown(tmp_path, text, reason):
    error = error_of(write(tmp_path, text))
    assert error.key == "spec.not_markdown"
    assert reason in str(error)
    assert str(tmp_path / "spec.md") in str(error)


def test_markdown_starting_with_bracket(tmp_path):
    spec = parse_spec("[link](https://example.invalid)\n\n# Objective\n\nHabits.\n", tmp_path / "spec.md")
    assert spec.objective == "Habits."


# ---------------------------------------------------------------------------------------------
# Lint


def lint_keys(text: str, tmp_path: Path) -> list[str]:
    """Return the lint problem keys of a spec written as `text`."""
    return [problem.key for problem in lint_spec(parse_spec(text, tmp_path / "spec.md"))]


HABIT_TEXT = HABIT_SPEC.read_text(encoding="utf-8")


def test_lint_no_source_root(tmp_path):
    text = HABIT_TEXT.split("* Source Structure")[0]
    assert lint_keys(text, tmp_path) == ["spec.lint.no_source_root"]


def test_lint_no_language(tmp_path):
    text = HABIT_TEXT.replace("- **Language**: Kotlin\n", "")
    assert lint_keys(text, tmp_path) == ["spec.lint.no_language"]


def test_lint_language_not_guessed_from_build_file(tmp_path):
    text = HABIT_TEXT.replace("- **Language**: Kotlin\n", "")
    spec = parse_spec(text, tmp_path / "spec.md")
    assert spec.architecture.language is None


def test_lint_unknown_language(tmp_path):
    text = HABIT_TEXT.replace("**Language**: Kotlin", "**Language**: Brainfuck")
    problems = lint_spec(parse_spec(text, tmp_path / "spec.md"))
    assert [problem.key for problem in problems] == ["spec.lint.unknown_language"]
    assert "Brainfuck" in str(problems[0])
    assert "kotlin" in str(problems[0])


def test_lint_no_requirements(tmp_path):
    text = re.sub(r"FUNC-\d\. ", "", HABIT_TEXT.split("- MVP")[0]) + "- MVP\n  FUNC-1 only.\n"
    assert lint_keys(text, tmp_path) == ["spec.lint.no_source_root", "spec.lint.no_language", "spec.lint.no_requirements"]


def test_lint_no_mvp(tmp_path):
    text = HABIT_TEXT.replace("- MVP\n  First, FUNC-1 should be implemented. Other functions are not required now.\n", "")
    assert lint_keys(text, tmp_path) == ["spec.lint.no_mvp"]


def test_lint_mvp_without_ids(tmp_path):
    text = HABIT_TEXT.replace("First, FUNC-1 should be implemented.", "The first function should be implemented.")
    assert lint_keys(text, tmp_path) == ["spec.lint.mvp_without_ids"]


def test_lint_mvp_unknown_ids(tmp_path):
    text = HABIT_TEXT.replace("First, FUNC-1 should be implemented.", "First, FUNC-1 and FUNC-9 should be implemented.")
    problems = lint_spec(parse_spec(text, tmp_path / "spec.md"))
    assert [problem.key for problem in problems] == ["spec.lint.mvp_unknown_ids"]
    assert "FUNC-9" in str(problems[0])


def test_lint_duplicate_requirements(tmp_path):
    text = HABIT_TEXT.replace("FUNC-3. Even", "FUNC-2. Even")
    problems = lint_spec(parse_spec(text, tmp_path / "spec.md"))
    assert [problem.key for problem in problems] == ["spec.lint.duplicate_requirements"]
    assert "FUNC-2" in str(problems[0])


def test_require_plannable_lists_every_problem(tmp_path):
    spec = parse_spec("# Notes\n\nNothing here yet.\n", tmp_path / "spec.md")
    with pytest.raises(SpecNotPlannable) as caught:
        require_plannable(spec)
    english = caught.value.render("en")
    japanese = caught.value.render("ja")
    assert caught.value.key == "spec.not_plannable"
    assert str(tmp_path / "spec.md") in english
    assert "Source Structure" in english
    assert "Language" in english
    assert "FUNC-1." in english
    assert "MVP" in english
    assert english.count("\n  - ") == 4
    assert "ソース構成" in japanese
    assert japanese.count("\n  - ") == 4


# ---------------------------------------------------------------------------------------------
# Languages and messages


@pytest.mark.parametrize(
    ("language", "name", "extensions"),
    [
        ("Kotlin", "kotlin", (".kt",)),
        ("Java 17", "java", (".java",)),
        ("TypeScript", "typescript", (".ts", ".tsx")),
        ("golang", "go", (".go",)),
        ("C++", "c++", (".cpp", ".cc", ".hpp", ".h")),
        ("Python (3.11)", "python", (".py",)),
        ("COBOL", None, ()),
        (None, None, ()),
    ],
)
def test_language_table(language, name, extensions):
    assert canonical_language(language) == name
    assert source_extensions(language) == extensions


def test_spec_messages_complete():
    table = tomllib.loads((MESSAGES / "spec.toml").read_text(encoding="utf-8"))
    assert table
    for key, texts in table.items():
        assert texts.get("en"), key
        assert texts.get("ja"), key
        placeholders_en = set(re.findall(r"\{(\w+)\}", texts["en"]))
        placeholders_ja = set(re.findall(r"\{(\w+)\}", texts["ja"]))
        assert placeholders_en == placeholders_ja, key
        assert re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", texts["ja"]), key
