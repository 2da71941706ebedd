"""Pilot tests of the workbench over the real Session, connected to a scripted llama-cpp-python server."""

from __future__ import annotations

import asyncio
import os
import html
import json
import re
import socket
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import pytest
from rich.cells import cell_len

from loopback import (
    LlamaCppPythonStream,
    LoopbackServer,
    ScriptedResponse,
    json_response,
    loopback_server,  # noqa: F401
)
from scripted_model import (
    HABIT_FILE,
    HABIT_PATH,
    ScriptedModel,
    fenced_answer,
    split_tokens,
    stream_of,
)
from sddtui.app.app import SddtuiApp, create_app
from sddtui.app.screens.dialogs import ErrorScreen, NoteScreen
from sddtui.app.widgets.gauge import GaugePane
from sddtui.app.widgets.spec_tree import SpecTree
from sddtui.app.widgets.task_view import TaskView
from sddtui.connect import connect_session
from sddtui.project import resolve_project
from sddtui.settings import Settings
from sddtui.spec.parse import load_spec
from sddtui.tasks.model import TaskState

REPO_ROOT = Path(__file__).resolve().parent.parent
GIB = 1024**3
N_CTX = 8192
# Console.export_svg in Rich 15 draws one terminal cell 20 px × 0.61 (its font_aspect_ratio) wide.
SVG_CELL_WIDTH = 12.2
SVG_TEXT = re.compile(
    r'<text class="[^"]*" x="([\d.]+)" y="[\d.]+" textLength="[\d.]+" clip-path="url\(#[^"]*-line-(\d+)\)">(.*?)</text>'
)
HABIT_FILE_V2 = "package com.example.habittracker\n\ndata class Habit(val id: Long, val title: String)\n"
CUT_ANSWER = f"{HABIT_PATH}\n```kotlin\npackage com.example.habittracker\n\ndata class Habit("


# Building the app


def fixed_memory():
    """Return a constant memory reading, so screens do not depend on this machine."""
    return SimpleNamespace(total_bytes=24 * GIB, available_bytes=18 * GIB)


def build_app(url: str, spec, project, lang: str = "en") -> SddtuiApp:
    """Build the workbench whose worker connects the real Session to the server at `url`."""
    return create_app(
        spec,
        project,
        lambda: connect_session(spec, project, Settings(base_url=url)),
        lang,
        None,
        read_memory=fixed_memory,
        theme_directories=[REPO_ROOT / "themes"],
    )


def serve_n_ctx(server: LoopbackServer, n_ctx: int = N_CTX) -> None:
    """Serve llama.cpp's /props route, from which the session reads n_ctx."""
    server.route("GET", "/props", json_response(200, {"default_generation_settings": {"n_ctx": n_ctx}}))


def record_notifications(app: SddtuiApp, monkeypatch) -> list[str]:
    """Record every toast the workbench shows, still showing it."""
    messages: list[str] = []
    original = app.workbench.notify

    def notify(message, **options):
        messages.append(message)
        return original(message, **options)

    monkeypatch.setattr(app.workbench, "notify", notify)
    return messages


# Waiting and reading the screen


async def wait_for(pilot, condition: Callable[[], bool], description: str, rounds: int = 500) -> None:
    """Let the app and the loopback server run until `condition()` holds; fail after `rounds` short pauses."""
    for _ in range(rounds):
        if condition():
            return
        await pilot.pause(0.02)
    raise AssertionError(f"timed out waiting until {description}")


def in_review(app: SddtuiApp) -> bool:
    return app.workbench.proposal is not None and not app.workbench.streaming


def task_state(app: SddtuiApp, task_id: str = "T1") -> TaskState | None:
    return app.workbench.query_one(SpecTree).task_state(task_id)


def task_view(app: SddtuiApp) -> TaskView:
    return app.workbench.query_one(TaskView)


def screen_lines(app: SddtuiApp) -> list[str]:
    """Return the rendered screen as lines of text, read from an exported SVG screenshot."""
    segments: dict[int, list[tuple[float, str]]] = {}
    for match in SVG_TEXT.finditer(app.export_screenshot()):
        x, line, text = float(match.group(1)), int(match.group(2)), html.unescape(match.group(3))
        segments.setdefault(line, []).append((x, text.replace("\xa0", " ")))
    assert segments, "the SVG screenshot had no text elements; has Rich changed its SVG format?"

    lines = []
    for number in sorted(segments):
        row = ""
        for x, text in sorted(segments[number]):
            column = round(x / SVG_CELL_WIDTH)
            row += " " * max(0, column - cell_len(row)) + text
        lines.append(row)
    return lines


def screen_text(app: SddtuiApp) -> str:
    return "\n".join(screen_lines(app))


def assert_status_whole(app: SddtuiApp) -> None:
    """Check that the status line shows every line of its message, none cut off by its height."""
    status = app.workbench.query_one("#status")
    needed = status.get_content_height(status.size, app.size, status.content_region.width)
    assert status.size.height == needed


# Reading the project


def journal(project) -> list[dict]:
    path = project.directory / ".sddtui" / "journal.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def written_files(project) -> list[str]:
    return sorted(
        path.relative_to(project.directory).as_posix()
        for path in project.directory.rglob("*")
        if path.is_file() and ".sddtui" not in path.parts
    )


def usage_chunk(shared_cases: Path) -> bytes:
    """Return the usage event of a llama.cpp stream: `choices: []` with usage and timings."""
    body = (shared_cases / "streams" / "usage-in-empty-choices-chunk.sse").read_bytes()
    events = [event + b"\n\n" for event in body.split(b"\n\n") if b'"choices":[]' in event]
    assert len(events) == 1
    return events[0]


def stream_with_usage(contents: list[str], usage_event: bytes) -> ScriptedResponse:
    """Return a llama-cpp-python stream of `contents` with `usage_event` before [DONE]."""
    response = LlamaCppPythonStream().response(contents)
    response.pieces.insert(len(response.pieces) - 1, usage_event)
    return response


# The happy path


async def test_approve_writes_streamed_file(loopback_server, habit_spec, project):
    script = ScriptedModel()
    script.install(loopback_server)
    app = build_app(loopback_server.url, habit_spec, project)
    async with app.run_test(size=(140, 42)) as pilot:
        await wait_for(pilot, lambda: in_review(app), "the proposal is shown")
        assert "data class Habit(val id: Long, val name: String)" in task_view(app).answer_text
        assert task_state(app) == TaskState.PROPOSED
        screen = screen_text(app)
        assert f"+++ b/{HABIT_PATH}" in screen
        assert "+data class Habit(val id: Long, val name: String)" in screen
        assert written_files(project) == []

        await pilot.press("a")
        await wait_for(pilot, lambda: task_state(app) == TaskState.APPLIED, "T1 is applied")
        assert (project.directory / HABIT_PATH).read_bytes() == HABIT_FILE.encode("utf-8")
        assert written_files(project) == [HABIT_PATH]
        assert "applied" in app.workbench.query_one(SpecTree).task_label_text("T1")
        assert f"Applied {HABIT_PATH}" in screen_text(app)


async def test_reject_writes_nothing(loopback_server, habit_spec, project):
    ScriptedModel().install(loopback_server)
    app = build_app(loopback_server.url, habit_spec, project)
    async with app.run_test(size=(140, 42)) as pilot:
        await wait_for(pilot, lambda: in_review(app), "the proposal is shown")
        await pilot.press("r")
        await wait_for(pilot, lambda: task_state(app) == TaskState.REJECTED, "T1 is rejected")
        assert "rejected" in app.workbench.query_one(SpecTree).task_label_text("T1")

    assert written_files(project) == []
    decisions = [record for record in journal(project) if record["kind"] == "decision"]
    assert len(decisions) == 1
    assert decisions[0]["task_id"] == "T1"
    assert decisions[0]["decision"] == "reject"
    assert "write" not in [record["kind"] for record in journal(project)]


async def test_retry_sends_note(loopback_server, habit_spec, project):
    script = ScriptedModel(answers=[fenced_answer(), fenced_answer(content=HABIT_FILE_V2)])
    script.install(loopback_server)
    app = build_app(loopback_server.url, habit_spec, project)
    async with app.run_test(size=(140, 42)) as pilot:
        await wait_for(pilot, lambda: in_review(app), "the first proposal is shown")
        first_proposal = app.workbench.proposal

        await pilot.press("t")
        await wait_for(pilot, lambda: isinstance(app.screen, NoteScreen), "the note dialog opens")
        await pilot.press(*"rename name to title")
        await pilot.press("enter")
        await wait_for(
            pilot,
            lambda: in_review(app) and app.workbench.proposal is not first_proposal,
            "the second proposal is shown",
        )

        assert len(script.task_requests) == 2
        assert "rename name to title" in json.dumps(script.task_requests[-1]["messages"])
        assert "rename name to title" not in json.dumps(script.task_requests[0]["messages"])
        assert "val title: String" in task_view(app).answer_text
        screen = screen_text(app)
        assert "+data class Habit(val id: Long, val title: String)" in screen
        assert "rename name to title" in screen
        assert written_files(project) == []


# Stopping and failing streams


async def test_stop_keeps_partial_answer(loopback_server, habit_spec, project):
    # Two characters a piece and a pause before each: the stream would run for seconds.
    tokens = split_tokens(fenced_answer(), size=2)
    ScriptedModel(answers=[stream_of(tokens, delay=0.05)]).install(loopback_server)
    app = build_app(loopback_server.url, habit_spec, project)
    async with app.run_test(size=(140, 42)) as pilot:
        view = task_view(app)
        await wait_for(pilot, lambda: "habittracker" in view.answer_text, "some text has streamed")
        await pilot.press("s")
        await wait_for(pilot, lambda: not app.workbench.streaming, "the stream has stopped")
        await asyncio.wait_for(loopback_server.client_closed.wait(), 5)
        await pilot.pause()
        shown_answer = view.answer_text

        answers = [record for record in journal(project) if record["kind"] == "answer"]
        assert len(answers) == 1
        assert answers[0]["stopped"] is True
        assert shown_answer == answers[0]["text"].rstrip("\n")
        assert len(answers[0]["text"]) < len(fenced_answer())
        assert fenced_answer().startswith(answers[0]["text"])
        assert shown_answer.splitlines()[0] in screen_text(app)
        assert loopback_server.client_closed.is_set()
    assert written_files(project) == []


async def test_stop_before_first_token(loopback_server, habit_spec, project):
    script = ScriptedModel()
    script.install(loopback_server)
    # The token count takes a second, so s arrives while run_task is still counting.
    slow_count = json_response(200, {"count": script.token_count})
    slow_count.delay = 1.0
    loopback_server.route("POST", "/extras/tokenize/count", slow_count)
    app = build_app(loopback_server.url, habit_spec, project)
    async with app.run_test(size=(140, 42)) as pilot:
        await wait_for(pilot, lambda: app.workbench.streaming, "T1 is started")
        if app.workbench.current_task is not None:
            pytest.skip("the prompt was counted before s could be pressed")
        await pilot.press("s")
        await wait_for(pilot, lambda: not app.workbench.streaming, "the stream has ended")
        assert "data class Habit" not in task_view(app).answer_text

    answers = [record for record in journal(project) if record["kind"] == "answer"]
    assert all(record["stopped"] for record in answers)


async def test_blocked_proposal_not_approved(loopback_server, habit_spec, project, monkeypatch):
    ScriptedModel(answers=[stream_of(split_tokens(CUT_ANSWER), finish_reason="length")]).install(loopback_server)
    app = build_app(loopback_server.url, habit_spec, project)
    async with app.run_test(size=(140, 42)) as pilot:
        await wait_for(pilot, lambda: in_review(app), "the proposal is shown")
        assert app.workbench.proposal.blocked
        assert "truncated" in [finding.kind for finding in app.workbench.proposal.findings]
        notifications = record_notifications(app, monkeypatch)

        await pilot.press("a")
        await pilot.pause()
        assert len(notifications) == 1
        assert notifications[0].startswith("Approval is blocked")
        assert task_state(app) == TaskState.PROPOSED
        assert "approval is blocked" in screen_text(app)

    assert written_files(project) == []
    assert "decision" not in [record["kind"] for record in journal(project)]


async def test_model_markup_shown_literally(loopback_server, habit_spec, project):
    content = "// [bold red]x[/] and \x1b[31mred\x1b[0m\x07 done\n" + HABIT_FILE
    ScriptedModel(answers=[fenced_answer(content=content)]).install(loopback_server)
    app = build_app(loopback_server.url, habit_spec, project)
    async with app.run_test(size=(140, 42)) as pilot:
        await wait_for(pilot, lambda: in_review(app), "the proposal is shown")
        view = task_view(app)
        assert "// [bold red]x[/] and [31mred[0m done" in view.answer_text
        assert "\x1b" not in view.answer_text
        assert "\x07" not in view.answer_text

        svg = app.export_screenshot()
        assert "\x1b" not in svg
        assert "\x07" not in svg
        lines = screen_lines(app)
        answer_lines = [line for line in lines if "// [bold red]x[/] and [31mred[0m done" in line]
        assert answer_lines, "the literal text is not on screen"
        # The diff may sit below the findings, out of view, so its rendered lines are read from the widget.
        from sddtui.app.widgets.review import DiffView

        diff_lines = [line.plain for line in app.workbench.query_one(DiffView).render().split("\n")]
        literal = [line for line in diff_lines if line.startswith("+// [bold red]x[/] and [31mred[0m done")]
        assert len(literal) == 1


async def test_refused_connection_shows_url(habit_spec, project):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"

    app = build_app(url, habit_spec, project)
    async with app.run_test(size=(140, 42)) as pilot:
        await wait_for(pilot, lambda: isinstance(app.screen, ErrorScreen), "the error dialog opens")
        await pilot.pause()
        assert url in app.screen.message
        assert app.screen.fatal
        assert url in screen_text(app)
        assert app.workbench.sub_title == "The session could not start"
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 1


async def test_dropped_stream_fails_task(loopback_server, habit_spec, project, monkeypatch):
    tokens = split_tokens(fenced_answer())
    # Piece 0 is the role chunk, so the connection drops after four content deltas.
    ScriptedModel(answers=[stream_of(tokens, drop_after=5)]).install(loopback_server)
    app = build_app(loopback_server.url, habit_spec, project)
    notifications = record_notifications(app, monkeypatch)
    async with app.run_test(size=(140, 42)) as pilot:
        await wait_for(pilot, lambda: task_state(app) == TaskState.FAILED, "T1 has failed")
        assert not app.workbench.streaming
        assert app.workbench.proposal is None
        assert "failed" in app.workbench.query_one(SpecTree).task_label_text("T1")
        assert task_view(app).answer_text == "".join(tokens[:4])
        assert len(notifications) == 1
        assert "no [DONE]" in notifications[0]
        assert "still answers" in notifications[0]
        assert "T1 failed" in screen_text(app)
        assert_status_whole(app)

    answer = next(record for record in journal(project) if record["kind"] == "answer")
    assert answer["text"] == "".join(tokens[:4])
    errors = [record for record in journal(project) if record["kind"] == "error"]
    assert [record["task_id"] for record in errors] == ["T1"]
    assert written_files(project) == []


# The gauge


async def test_gauge_estimates_without_usage(loopback_server, habit_spec, project):
    script = ScriptedModel()
    script.install(loopback_server)
    serve_n_ctx(loopback_server)
    app = build_app(loopback_server.url, habit_spec, project)
    async with app.run_test(size=(140, 42)) as pilot:
        await wait_for(pilot, lambda: in_review(app), "the proposal is shown")
        assert app.workbench.session.server.n_ctx == N_CTX
        assert app.screen.sub_title == f"llama.cpp (llama-server) · smollm2 · n_ctx {N_CTX}"

        usage = app.workbench.query_one(GaugePane).usage
        prompt_tokens = script.token_count + 8 * len(script.task_requests[0]["messages"])
        completion_tokens = len(split_tokens(fenced_answer()))
        assert usage.n_ctx == N_CTX
        assert usage.exact is False
        assert usage.prompt_tokens == prompt_tokens
        assert usage.completion_tokens == completion_tokens

        screen = screen_text(app)
        assert f"{prompt_tokens + completion_tokens} / {N_CTX} tokens" in screen
        assert "estimate" in screen
        assert f"prompt: {prompt_tokens}" in screen
        assert f"completion: {completion_tokens}" in screen


async def test_gauge_shows_reported_usage(loopback_server, habit_spec, project, shared_cases):
    ScriptedModel(answers=[stream_with_usage(split_tokens(fenced_answer()), usage_chunk(shared_cases))]).install(loopback_server)
    serve_n_ctx(loopback_server)
    app = build_app(loopback_server.url, habit_spec, project)
    async with app.run_test(size=(140, 42)) as pilot:
        await wait_for(pilot, lambda: in_review(app), "the proposal is shown")
        usage = app.workbench.query_one(GaugePane).usage
        assert usage.exact is True
        assert usage.prompt_tokens == 75
        assert usage.completion_tokens == 31
        assert usage.n_ctx == N_CTX
        assert usage.tokens_per_second == pytest.approx(35.41)

        screen = screen_text(app)
        assert f"106 / {N_CTX} tokens" in screen
        assert "exact" in screen
        assert "estimate" not in screen
        assert "prompt: 75" in screen
        assert "completion: 31" in screen
        assert "tokens/s: 35.4" in screen


# Quitting and language


async def test_quit_closes_session(loopback_server, habit_spec, project):
    # The stream never ends on its own: the server keeps it open until the client closes.
    held_stream = stream_of(split_tokens(fenced_answer()), finish_reason=None, hold_open=True)
    ScriptedModel(answers=[held_stream]).install(loopback_server)
    app = build_app(loopback_server.url, habit_spec, project)
    async with app.run_test(size=(140, 42)) as pilot:
        await wait_for(pilot, lambda: "data class Habit" in task_view(app).answer_text, "the answer has streamed")
        assert app.workbench.streaming
        shown_answer = task_view(app).answer_text
        await pilot.press("q")
        await asyncio.wait_for(loopback_server.client_closed.wait(), 5)

    assert not app.is_running
    assert app.return_code == 0
    assert loopback_server.client_closed.is_set()
    records = journal(project)
    assert records[-1]["kind"] == "session_closed"
    answers = [record for record in records if record["kind"] == "answer"]
    assert len(answers) == 1
    assert answers[0]["stopped"] is True
    assert answers[0]["text"].startswith(shown_answer)
    assert written_files(project) == []


async def test_japanese_happy_path(loopback_server, habit_spec, project):
    ScriptedModel().install(loopback_server)
    app = build_app(loopback_server.url, habit_spec, project, lang="ja")
    async with app.run_test(size=(140, 42)) as pilot:
        await wait_for(pilot, lambda: in_review(app), "the proposal is shown")
        tree = app.workbench.query_one(SpecTree)
        assert "提案あり" in tree.task_label_text("T1")
        screen = screen_text(app)
        assert "T1 をレビュー" in screen
        assert "承認" in screen
        assert "却下" in screen
        assert "+data class Habit(val id: Long, val name: String)" in screen

        await pilot.press("a")
        await wait_for(pilot, lambda: task_state(app) == TaskState.APPLIED, "T1 is applied")
        assert "適用済み" in tree.task_label_text("T1")
        assert "を適用しました" in screen_text(app)
    assert (project.directory / HABIT_PATH).read_bytes() == HABIT_FILE.encode("utf-8")


async def test_planning_can_be_stopped_and_restarted(loopback_server, habit_spec, project, monkeypatch):
    script = ScriptedModel()
    script.install(loopback_server)
    original = script._chat
    slow = {"on": True}

    def slow_plan(request):
        response = original(request)
        if slow["on"] and request.json().get("response_format", {}).get("type") == "json_object":
            response.delay = 0.5
        return response

    loopback_server.route("POST", "/v1/chat/completions", slow_plan)
    app = build_app(loopback_server.url, habit_spec, project)
    async with app.run_test(size=(140, 42)) as pilot:
        await wait_for(pilot, lambda: app.workbench.planning, "planning has started")
        notifications = record_notifications(app, monkeypatch)

        await pilot.press("n")
        await pilot.pause()
        assert any("still being made" in text for text in notifications)

        await pilot.press("s")
        await wait_for(pilot, lambda: not app.workbench.planning, "planning has stopped")
        assert app.workbench.session.plan is None
        assert "Planning stopped" in screen_text(app)

        slow["on"] = False
        await pilot.press("n")
        await wait_for(pilot, lambda: in_review(app), "the plan was made again and T1 proposed")


async def test_gauge_shows_llama_server_slots(loopback_server, habit_spec, project):
    from loopback import TRANSCRIPTS, response_from_http_file

    ScriptedModel().install(loopback_server)
    loopback_server.route("GET", "/props", json_response(200, {"default_generation_settings": {"n_ctx": 8192}, "total_slots": 2}))
    loopback_server.route("GET", "/health", json_response(200, {"status": "ok"}))
    loopback_server.route("GET", "/slots", lambda _: response_from_http_file(TRANSCRIPTS / "llama.cpp" / "slots.http"))
    app = build_app(loopback_server.url, habit_spec, project)
    async with app.run_test(size=(140, 42)) as pilot:
        await wait_for(pilot, lambda: "tokens decoded: 120" in screen_text(app), "the server's slot reading is shown")
        assert "reported by the server (/slots)" in screen_text(app)
    slot_polls = [request for request in loopback_server.requests if request.path == "/slots"]
    assert slot_polls


async def test_gauge_shows_local_server_process(loopback_server, habit_spec, project):
    # The loopback server listens in this very process, so its resident memory is what must show.
    ScriptedModel().install(loopback_server)
    app = build_app(loopback_server.url, habit_spec, project)
    async with app.run_test(size=(140, 42)) as pilot:
        await wait_for(pilot, lambda: app.workbench.server_process is not None, "the server's process is found")
        assert app.workbench.server_process.pid == os.getpid()
        await wait_for(pilot, lambda: "model server process:" in screen_text(app), "its memory is shown", rounds=800)
