"""Stream loop cases from a scripted loopback server through the session: the stream stops, nothing is written.

These tests expect the session to feed each delta to a StreamWatcher and to stop the stream on
its stop finding. The session then proposes first_complete_answer(), emits every watcher finding
as a finding event, and reads the reasoning budget from Settings.reasoning_budget.
"""

from __future__ import annotations

import json

import pytest

from loopback import loopback_server  # noqa: F401
from scripted_model import HABIT_PATH, ScriptedModel, split_tokens, stream_of
from sddtui.connect import connect_session
from sddtui.headless import ApproveMode, event_record, run_headless
from sddtui.project import resolve_project
from sddtui.settings import Settings
from sddtui.spec.parse import load_spec
from conftest import REPO_ROOT


# Deltas that may still arrive between the watcher's stop and the end of the read loop.
STOP_SLACK_TOKENS = 8
MAX_TOKENS_AFTER_LOOP = 300

HABIT_ENGLISH = """package com.example.habittracker

// A habit the user wants to keep.
data class Habit(
    val id: Long,
    val name: String,
    val createdAt: Long,
)

// Returns true when the habit was done on the given day.
fun Habit.isDoneOn(days: Set<Long>, day: Long): Boolean {
    return day in days
}
"""
HABIT_JAPANESE = HABIT_ENGLISH.replace("// A habit the user wants to keep.", "// ユーザーが続けたい習慣。").replace(
    "// Returns true when the habit was done on the given day.", "// 指定した日に習慣を行ったとき true を返す。"
)


async def run_script(server, script, spec, project, mode, **settings):
    """Run headless against the scripted server and return the event records."""
    script.install(server)
    session = await connect_session(spec, project, Settings(base_url=server.url, **settings))
    records: list[dict] = []
    try:
        await run_headless(session, mode, lambda event: records.append(event_record(event)))
    finally:
        await session.aclose()
    return records


def journal_records(project, kind: str) -> list[dict]:
    journal = project.directory / ".sddtui" / "journal.jsonl"
    return [record for record in map(json.loads, journal.read_text(encoding="utf-8").splitlines()) if record["kind"] == kind]


def written_files(project) -> list[str]:
    return sorted(
        path.relative_to(project.directory).as_posix()
        for path in project.directory.rglob("*")
        if path.is_file() and ".sddtui" not in path.parts
    )


async def test_english_then_japanese_copy_stops(loopback_server, habit_spec, project):
    first = f"{HABIT_PATH}\n```kotlin\n{HABIT_ENGLISH}```\n"
    copy = f"\n```kotlin\n{HABIT_JAPANESE}```\n"
    first_tokens = split_tokens(first)
    script = ScriptedModel(answers=[stream_of(first_tokens + split_tokens(copy) * 40)])

    records = await run_script(loopback_server, script, habit_spec, project, ApproveMode.CLEAN)

    kinds = [record["kind"] for record in records if record["event"] == "finding"]
    assert {"stream_repeated_block", "language_switch"} & set(kinds)
    answer = journal_records(project, "answer")[0]
    assert answer["stopped"] is True
    received = len(split_tokens(answer["text"]))
    assert received - len(first_tokens) <= MAX_TOKENS_AFTER_LOOP + STOP_SLACK_TOKENS
    proposal = next(record for record in records if record["event"] == "proposal")
    assert "ユーザー" not in proposal["diff"]
    assert "+// A habit the user wants to keep." in proposal["diff"]
    assert written_files(project) == []


async def test_loop_inside_block_is_blocked(loopback_server, habit_spec, project):
    head = f"{HABIT_PATH}\n```kotlin\npackage com.example.habittracker\n\nval names = listOf("
    head_tokens = split_tokens(head)
    script = ScriptedModel(answers=[stream_of(head_tokens + split_tokens('"habit", ') * 2000)])

    records = await run_script(loopback_server, script, habit_spec, project, ApproveMode.ALL)

    kinds = [record["kind"] for record in records if record["event"] == "finding"]
    assert "stream_repetition" in kinds
    answer = journal_records(project, "answer")[0]
    assert len(split_tokens(answer["text"])) - len(head_tokens) <= MAX_TOKENS_AFTER_LOOP + STOP_SLACK_TOKENS
    assert written_files(project) == []


async def test_runaway_reasoning_stops(loopback_server, habit_spec, project):
    reasoning = "".join(f"Option {index} changes the streak rule in a new way.\n" for index in range(400))
    deltas = ["<think>"] + split_tokens(reasoning) + ["</think>"] + split_tokens(f"{HABIT_PATH}\n```kotlin\n{HABIT_ENGLISH}```\n")
    script = ScriptedModel(answers=[stream_of(deltas)])

    records = await run_script(loopback_server, script, habit_spec, project, ApproveMode.ALL, reasoning_budget=200)

    kinds = [record.get("kind") for record in records if record["event"] in ("finding", "error")]
    assert "reasoning_budget" in kinds
    answer = journal_records(project, "answer")[0]
    assert answer["stopped"] is True
    assert len(split_tokens(answer["reasoning"])) <= 200 + STOP_SLACK_TOKENS
    assert written_files(project) == []
