"""Tests of the task prompt and of the spec language detection."""

from __future__ import annotations

from pathlib import Path

import pytest

from sddtui.project import resolve_project
from sddtui.spec.parse import load_spec, parse_spec
from sddtui.tasks.model import Task, TaskAction
from sddtui.tasks.prompt import file_package, spec_language, task_messages

REPO = Path(__file__).resolve().parent.parent
HABIT_SPEC = REPO / "specs" / "habit.md"
MAIN = "app/src/main/java/com/example/habittracker"
UNIT = "app/src/test/java/com/example/habittracker"

JAPANESE_SPEC = """\
# 目的

ユーザーが良い習慣を続けられるようにする。

# 機能

FUNC-1. 習慣を作成、更新、削除できる
FUNC-2. 習慣を続けた日数を確認できる

ユーザーができないこと:

1. 回数で記録すること。

# MVP

FUNC-1 を実装する。

# アーキテクチャ

- **言語**: Kotlin
- **パッケージ名**: com.example.habittracker

# ソース構成

`app/src/main/java/com/example/habittracker`
"""


@pytest.fixture
def spec():
    return load_spec(HABIT_SPEC)


@pytest.fixture
def project(spec, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    return resolve_project(spec, None, tmp_path)


def make_task(path: str = f"{MAIN}/data/Habit.kt", action: TaskAction = TaskAction.CREATE) -> Task:
    return Task(id="T1", path=path, action=action, requirement_ids=["FUNC-1"], instruction="Define the Habit data class with id and name.")


# ---------------------------------------------------------------------------------------------
# Language


def test_language_habit_is_english(spec):
    assert spec_language(spec) == "en"


def test_language_japanese(tmp_path):
    assert spec_language(parse_spec(JAPANESE_SPEC, tmp_path / "spec.md")) == "ja"


def test_language_english_with_japanese_words(tmp_path):
    text = "# Objective\n\nUsers keep habits (習慣) every day, and the app shows their streak clearly.\n"
    assert spec_language(parse_spec(text, tmp_path / "spec.md")) == "en"


def test_language_ignores_code(tmp_path):
    code = "\n".join(["```", *["val name = \"習慣を作成する日本語のテキスト\""] * 20, "```"])
    text = f"# Objective\n\nKeep habits.\n\n{code}\n"
    assert spec_language(parse_spec(text, tmp_path / "spec.md")) == "en"


# ---------------------------------------------------------------------------------------------
# Task messages


def test_system_message_format(spec, project):
    system = task_messages(spec, project, make_task(), None)[0]
    assert system["role"] == "system"
    content = system["content"]
    assert f"the path: {MAIN}/data/Habit.kt\n" in content
    assert "a line with ```kotlin, then every line" in content
    assert "<" not in content, "a placeholder in the format example gets copied by small models"
    assert "ONE fenced code block" in content
    assert "Answer once" in content
    assert "English only" in content


def test_user_message_excerpt(spec, project):
    user = task_messages(spec, project, make_task(), None)[1]
    assert user["role"] == "user"
    content = user["content"]
    assert content.startswith(f"Task T1: Create {MAIN}/data/Habit.kt\nDefine the Habit data class")
    assert "- FUNC-1: Create, update and delete habits" in content
    assert "FUNC-2" not in content
    assert "Track the progress by recording" in content
    assert content.count("\n- Do NOT") == 3
    assert "- Implement ONLY what is specified in this document" in content
    assert "Language: Kotlin" in content
    assert "Package: com.example.habittracker" in content
    assert "Minimum SDK: API 24" in content
    assert "Package of this file: com.example.habittracker.data" in content
    assert "Users will be motivated" in content
    assert f"{MAIN}/data/Habit.kt does not exist yet." in content
    assert "rejected" not in content
    assert "Note from the developer" not in content


def test_user_message_current_content(spec, project):
    current = 'package com.example.habittracker\n\n/** Usage: ```kotlin Habit() ``` */\nclass Habit\n'
    content = task_messages(spec, project, make_task(action=TaskAction.MODIFY), current)[1]["content"]
    assert f"Task T1: Modify {MAIN}/data/Habit.kt" in content
    assert f"Current content of {MAIN}/data/Habit.kt:\n````kotlin\n" in content
    assert "class Habit\n````" in content
    assert "does not exist yet" not in content


def test_user_message_empty_current_content(spec, project):
    content = task_messages(spec, project, make_task(action=TaskAction.MODIFY), "")[1]["content"]
    assert "```kotlin\n\n```" in content


def test_retry_note_and_feedback(spec, project):
    feedback = ["The answer held two code blocks.", "The file path was missing."]
    content = task_messages(spec, project, make_task(), None, note="Use a data class.", feedback=feedback)[1]["content"]
    assert "Note from the developer: Use a data class." in content
    assert "Your previous answer was rejected" in content
    assert "- The answer held two code blocks." in content
    assert "- The file path was missing." in content
    assert content.index("Note from the developer") < content.index("rejected")


def test_test_file_is_marked(spec, project):
    content = task_messages(spec, project, make_task(f"{UNIT}/HabitTest.kt"), None)[1]["content"]
    assert "This file is a test." in content
    assert "Package of this file: com.example.habittracker\n" in content


def test_shared_root_file_is_not_marked_test(spec, project):
    content = task_messages(spec, project, make_task(), None)[1]["content"]
    assert "This file is a test." not in content


def test_japanese_spec_messages(tmp_path):
    spec = parse_spec(JAPANESE_SPEC, tmp_path / "spec.md")
    project = resolve_project(spec, None, tmp_path)
    messages = task_messages(spec, project, make_task(f"{MAIN}/Habit.kt"), None)
    assert "Japanese only" in messages[0]["content"]
    assert "- FUNC-1: 習慣を作成、更新、削除できる" in messages[1]["content"]
    assert "回数で記録すること。" in messages[1]["content"]
    assert messages[1]["content"].endswith("once, in Japanese.")


def test_file_package_needs_matching_root(tmp_path):
    text = "# Architecture\n- Language: Kotlin\n- Package: com.example.other\n# Source\n`app/src`\n"
    spec = parse_spec(text, tmp_path / "spec.md")
    project = resolve_project(spec, None, tmp_path)
    assert file_package(spec, project, "app/src/Main.kt") is None


def test_file_package_python_is_none(tmp_path):
    text = "# Architecture\n- Language: Python\n- Package: habits\n# Source\n`src/habits`\n"
    spec = parse_spec(text, tmp_path / "spec.md")
    project = resolve_project(spec, None, tmp_path)
    assert file_package(spec, project, "src/habits/core.py") is None
    assert "```python," in task_messages(spec, project, make_task("src/habits/core.py"), None)[0]["content"]
