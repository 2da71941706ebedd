"""Run the session loop headless against a scripted llama-cpp-python server, good input and bad."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from loopback import loopback_server  # noqa: F401
from scripted_model import (
    HABIT_FILE,
    HABIT_PATH,
    MAIN_ROOT,
    ScriptedModel,
    fenced_answer,
    habit_plan,
    split_tokens,
    stream_of,
)
from sddtui.connect import connect_session
from sddtui.events import ErrorOccurred, ProposalReady, TextReceived
from sddtui.headless import ApproveMode, run_headless
from sddtui.project import resolve_project
from sddtui.settings import Settings
from sddtui.spec.parse import load_spec

REPO_ROOT = Path(__file__).resolve().parent.parent


async def run_script(server, script: ScriptedModel, spec, project, mode=ApproveMode.ALL, **settings):
    """Connect to the scripted server, run headless, and return (exit status, event records, session)."""
    script.install(server)
    session = await connect_session(spec, project, Settings(base_url=server.url, **settings))
    records: list[dict] = []

    def emit(event):
        from sddtui.headless import event_record

        records.append(event_record(event))

    try:
        status = await run_headless(session, mode, emit)
    finally:
        await session.aclose()
    return status, records, session


def kinds_of(records: list[dict]) -> list[str]:
    return [record["event"] for record in records]


def journal_kinds(project) -> list[str]:
    journal = project.directory / ".sddtui" / "journal.jsonl"
    return [json.loads(line)["kind"] for line in journal.read_text(encoding="utf-8").splitlines()]


def written_files(project) -> list[str]:
    return sorted(
        path.relative_to(project.directory).as_posix()
        for path in project.directory.rglob("*")
        if path.is_file() and ".sddtui" not in path.parts
    )


async def test_approve_all_writes_the_file(loopback_server, habit_spec, project):
    status, records, _ = await run_script(loopback_server, ScriptedModel(), habit_spec, project)

    assert status == 0
    assert kinds_of(records)[0] == "plan"
    assert kinds_of(records)[-1] == "done"
    assert "delta" in kinds_of(records)
    assert (project.directory / HABIT_PATH).read_text(encoding="utf-8") == HABIT_FILE
    assert written_files(project) == [HABIT_PATH]
    applied = [record for record in records if record["event"] == "applied"]
    assert applied == [{"event": "applied", "task_id": "T1", "path": HABIT_PATH, "bytes": len(HABIT_FILE)}]


async def test_journal_precedes_each_write(loopback_server, habit_spec, project):
    await run_script(loopback_server, ScriptedModel(), habit_spec, project)

    kinds = journal_kinds(project)
    for kind in ("session_started", "plan_prompt", "plan_answer", "plan", "prompt", "answer", "proposal", "decision", "write", "applied"):
        assert kind in kinds
    assert kinds.index("answer") < kinds.index("proposal") < kinds.index("decision") < kinds.index("write") < kinds.index("applied")


async def test_requests_carry_max_tokens_and_usage(loopback_server, habit_spec, project):
    script = ScriptedModel()
    await run_script(loopback_server, script, habit_spec, project, max_answer_tokens=900)

    assert script.chat_requests
    for body in script.chat_requests:
        assert isinstance(body["max_tokens"], int) and body["max_tokens"] > 0
        assert body["stream"] is True
        assert body["stream_options"] == {"include_usage": True}
    assert script.task_requests[0]["max_tokens"] == 900


async def test_plan_is_saved_and_reused(loopback_server, habit_spec, project):
    await run_script(loopback_server, ScriptedModel(), habit_spec, project)
    saved = json.loads((project.directory / ".sddtui" / "plan.json").read_text(encoding="utf-8"))
    assert saved["tasks"][0]["state"] == "applied"

    script = ScriptedModel()
    status, records, _ = await run_script(loopback_server, script, habit_spec, project)
    assert status == 0
    assert script.chat_requests == []
    assert "task_started" not in kinds_of(records)


async def test_invalid_plan_is_asked_again(loopback_server, habit_spec, project):
    script = ScriptedModel(plan=habit_plan("src/Habit.kt"))
    script.install(loopback_server)
    plans = iter([habit_plan("src/Habit.kt"), habit_plan(HABIT_PATH)])
    original = script._chat

    def chat(request):
        if request.json().get("response_format", {}).get("type") == "json_object":
            script.plan = next(plans, script.plan)
        return original(request)

    loopback_server.route("POST", "/v1/chat/completions", chat)
    session = await connect_session(habit_spec, project, Settings(base_url=loopback_server.url))
    events = [event async for event in session.make_plan()]
    await session.aclose()

    assert type(events[0]).__name__ == "PlanRejected"
    assert "outside the allowed folders" in events[0].reasons[0]
    assert type(events[-1]).__name__ == "PlanReady"
    retry_prompt = [body for body in script.chat_requests if "response_format" in body][-1]["messages"]
    assert "outside the allowed folders" in json.dumps(retry_prompt)


async def test_approve_none_writes_nothing(loopback_server, habit_spec, project):
    status, records, _ = await run_script(loopback_server, ScriptedModel(), habit_spec, project, ApproveMode.NONE)

    assert status == 0
    assert "rejected" in kinds_of(records)
    assert "applied" not in kinds_of(records)
    assert written_files(project) == []


async def test_approve_clean_skips_proposals_with_findings(loopback_server, habit_spec, project):
    answer = fenced_answer() + "\n" + fenced_answer(f"{MAIN_ROOT}/Extra.kt", "class Extra\n")
    status, records, _ = await run_script(loopback_server, ScriptedModel(answers=[answer]), habit_spec, project, ApproveMode.CLEAN)

    assert status == 0
    assert "finding" in kinds_of(records)
    assert "rejected" in kinds_of(records)
    assert written_files(project) == []


async def test_other_file_in_answer_is_not_applied(loopback_server, habit_spec, project):
    answer = fenced_answer() + "\n" + fenced_answer(f"{MAIN_ROOT}/Extra.kt", "class Extra\n")
    status, records, _ = await run_script(loopback_server, ScriptedModel(answers=[answer]), habit_spec, project)

    proposal = next(record for record in records if record["event"] == "proposal")
    assert proposal["not_applied"] == [f"{MAIN_ROOT}/Extra.kt"]
    assert written_files(project) == [HABIT_PATH]


async def test_answer_without_file_is_an_error(loopback_server, habit_spec, project):
    script = ScriptedModel(answers=["I would create a Habit class with an id and a name."])
    status, records, _ = await run_script(loopback_server, script, habit_spec, project)

    assert status == 1
    error = next(record for record in records if record["event"] == "error")
    assert error["key"] == "answer_no_file"
    assert HABIT_PATH in error["message"]
    assert written_files(project) == []
    answers = [json.loads(line) for line in (project.directory / ".sddtui" / "journal.jsonl").read_text().splitlines()]
    assert any(record["kind"] == "answer" and "Habit class" in record["text"] for record in answers)


async def test_answer_cut_off_is_blocked(loopback_server, habit_spec, project):
    cut = f"{HABIT_PATH}\n```kotlin\npackage com.example.habittracker\n\ndata class Habit("
    script = ScriptedModel(answers=[stream_of(split_tokens(cut), finish_reason="length")])
    status, records, _ = await run_script(loopback_server, script, habit_spec, project)

    proposal = next(record for record in records if record["event"] == "proposal")
    assert proposal["blocked"] is True
    assert any(finding["kind"] == "truncated" for finding in proposal["findings"])
    assert next(record for record in records if record["event"] == "rejected")["reason"] == "blocked by findings"
    assert written_files(project) == []


async def test_dropped_connection_keeps_partial_answer(loopback_server, habit_spec, project):
    tokens = split_tokens(fenced_answer())
    script = ScriptedModel(answers=[stream_of(tokens, drop_after=5)])
    status, records, _ = await run_script(loopback_server, script, habit_spec, project)

    assert status == 1
    error = next(record for record in records if record["event"] == "error")
    assert error["task_id"] == "T1"
    assert written_files(project) == []
    journal = [json.loads(line) for line in (project.directory / ".sddtui" / "journal.jsonl").read_text().splitlines()]
    answer = next(record for record in journal if record["kind"] == "answer")
    assert answer["text"] == "".join(tokens[:4])


async def test_refused_connection_names_the_url(habit_spec, project):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{port}/v1"
    from sddtui.errors import SddtuiError

    with pytest.raises(SddtuiError) as raised:
        await connect_session(habit_spec, project, Settings(base_url=url))
    assert raised.value.key == "llm.connect_failed"
    assert url in raised.value.render("en")
    assert url in raised.value.render("ja")


async def test_failed_write_leaves_no_file(loopback_server, habit_spec, project, monkeypatch):
    real_replace = os.replace

    def fail_target_write(source, destination, *args, **kwargs):
        if str(destination).endswith(HABIT_PATH):
            raise OSError(28, "No space left on device")
        return real_replace(source, destination, *args, **kwargs)

    monkeypatch.setattr(os, "replace", fail_target_write)
    status, records, _ = await run_script(loopback_server, ScriptedModel(), habit_spec, project)

    assert status == 1
    error = next(record for record in records if record["event"] == "error")
    assert "No space left on device" in error["message"]
    assert written_files(project) == []
    leftovers = [path.name for path in (project.directory / MAIN_ROOT).iterdir()] if (project.directory / MAIN_ROOT).exists() else []
    assert leftovers == []
    assert "write_failed" in journal_kinds(project)


async def test_prompt_too_large_is_not_sent(loopback_server, habit_spec, project):
    script = ScriptedModel(token_count=5000)
    script.install(loopback_server)
    session = await connect_session(habit_spec, project, Settings(base_url=loopback_server.url))
    async for _ in session.make_plan():
        pass
    session.server.n_ctx = 4096
    events = [event async for event in session.run_task(session.plan.tasks[0])]
    await session.aclose()

    assert isinstance(events[-1], ErrorOccurred)
    message = events[-1].error.render("en")
    assert "4096" in message
    assert "5" in message
    assert script.task_requests == []


async def test_stop_keeps_what_arrived(loopback_server, habit_spec, project):
    tokens = split_tokens(fenced_answer(), size=2)
    script = ScriptedModel(answers=[stream_of(tokens, delay=0.02)])
    script.install(loopback_server)
    session = await connect_session(habit_spec, project, Settings(base_url=loopback_server.url))
    async for _ in session.make_plan():
        pass

    received: list[str] = []
    last = None
    async for event in session.run_task(session.plan.tasks[0]):
        if isinstance(event, TextReceived):
            received.append(event.text)
            if len(received) == 6:
                session.stop_stream()
        last = event
    await session.aclose()

    assert 6 <= len(received) < len(tokens)
    assert isinstance(last, (ProposalReady, ErrorOccurred))
    journal = [json.loads(line) for line in (project.directory / ".sddtui" / "journal.jsonl").read_text().splitlines()]
    answer = next(record for record in journal if record["kind"] == "answer")
    assert answer["stopped"] is True
    assert answer["text"] == "".join(received)
    await asyncio.wait_for(loopback_server.client_closed.wait(), 5)


def test_cli_missing_spec_names_the_path(tmp_path, capsys):
    from sddtui.cli import main

    missing = tmp_path / "nope.md"
    status = main(["run", str(missing), "--approve", "none", "--lang", "en"])
    assert status == 1
    assert str(missing) in capsys.readouterr().err


def test_cli_missing_spec_in_japanese(tmp_path, capsys):
    from sddtui.cli import main

    missing = tmp_path / "nope.md"
    assert main(["plan", str(missing), "--lang", "ja"]) == 1
    err = capsys.readouterr().err
    assert str(missing) in err
    assert any("\u3040" <= ch <= "\u30ff" for ch in err)


def test_cli_version_is_fast_to_import():
    import subprocess

    code = "import sys, sddtui.cli; print(sorted(m for m in ('textual', 'httpx', 'pydantic') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


async def test_unwritable_plan_is_an_error(loopback_server, habit_spec, project, monkeypatch):
    real_replace = os.replace

    def fail_plan_write(source, destination, *args, **kwargs):
        if str(destination).endswith("plan.json"):
            raise OSError(13, "Permission denied")
        return real_replace(source, destination, *args, **kwargs)

    monkeypatch.setattr(os, "replace", fail_plan_write)
    status, records, _ = await run_script(loopback_server, ScriptedModel(), habit_spec, project)

    assert status == 1
    error = next(record for record in records if record["event"] == "error")
    assert error["key"] == "tasks.plan_unwritable"
    assert "Permission denied" in error["message"]
    assert written_files(project) == []


async def test_second_session_on_project_is_refused(loopback_server, habit_spec, project):
    ScriptedModel().install(loopback_server)
    first = await connect_session(habit_spec, project, Settings(base_url=loopback_server.url))
    from sddtui.errors import SddtuiError

    try:
        with pytest.raises(SddtuiError) as raised:
            await connect_session(habit_spec, project, Settings(base_url=loopback_server.url))
        assert raised.value.key == "project_locked"
        assert str(os.getpid()) in raised.value.render("en")
    finally:
        await first.aclose()
    second = await connect_session(habit_spec, project, Settings(base_url=loopback_server.url))
    await second.aclose()


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://127.0.0.1:99999", "outside 1-65535"),
        ("http://[::1", "Invalid"),
        ("ftp://127.0.0.1:21", "'ftp'"),
    ],
)
async def test_invalid_base_url_is_named(habit_spec, project, url, reason):
    from sddtui.errors import SddtuiError

    with pytest.raises(SddtuiError) as raised:
        await connect_session(habit_spec, project, Settings(base_url=url))
    assert raised.value.key == "base_url_invalid"
    assert url in raised.value.render("en")
    assert reason in raised.value.render("en")


async def test_unauthorized_server_is_not_called_down(loopback_server, habit_spec, project):
    from loopback import json_response

    from sddtui.errors import SddtuiError

    loopback_server.route("GET", "/v1/models", json_response(401, {"error": {"message": "Invalid API key"}}))
    with pytest.raises(SddtuiError) as raised:
        await connect_session(habit_spec, project, Settings(base_url=loopback_server.url, api_key="wrong"))
    message = raised.value.render("en")
    assert "Invalid API key" in message
    assert "401" in message
    journal = [json.loads(line) for line in (project.directory / ".sddtui" / "journal.jsonl").read_text().splitlines()]
    assert journal[-1]["kind"] == "error"
    assert journal[-1]["stage"] == "connect"


async def test_embedded_flag_wins_over_configured_url(habit_spec, project, monkeypatch):
    from sddtui import connect

    class Started(Exception):
        pass

    async def start_embedded(*_args):
        raise Started

    monkeypatch.setattr(connect, "_start_embedded", start_embedded)
    with pytest.raises(Started):
        await connect_session(habit_spec, project, Settings(base_url="http://127.0.0.1:9/v1", embedded=True))


def test_cli_rejects_embedded_with_base_url(tmp_path, capsys):
    from sddtui.cli import main

    status = main(["plan", str(REPO_ROOT / "specs" / "habit.md"), "--embedded", "--base-url", "http://127.0.0.1:9", "--project", str(tmp_path)])
    assert status == 1
    assert "--embedded and --base-url" in capsys.readouterr().err


async def test_plan_prompt_past_n_ctx_names_it(loopback_server, habit_spec, project):
    script = ScriptedModel(token_count=600)
    script.install(loopback_server)
    session = await connect_session(habit_spec, project, Settings(base_url=loopback_server.url))
    session.server.n_ctx = 512
    events = [event async for event in session.make_plan()]
    await session.aclose()

    assert isinstance(events[-1], ErrorOccurred)
    assert events[-1].error.key == "plan_prompt_too_large"
    assert "512" in events[-1].error.render("en")
    assert "--n-ctx" in events[-1].error.render("en")
    assert [body for body in script.chat_requests if "response_format" in body] == []


async def test_plan_cut_by_small_context_names_n_ctx(loopback_server, habit_spec, project):
    from loopback import LlamaCppPythonStream

    script = ScriptedModel(token_count=300)
    script.install(loopback_server)
    original = script._chat

    def cut_plan(request):
        if request.json().get("response_format", {}).get("type") == "json_object":
            return LlamaCppPythonStream().response(split_tokens('{"tasks": [{"path": "app/'), "length")
        return original(request)

    loopback_server.route("POST", "/v1/chat/completions", cut_plan)
    session = await connect_session(habit_spec, project, Settings(base_url=loopback_server.url))
    session.server.n_ctx = 512
    events = [event async for event in session.make_plan()]
    await session.aclose()

    assert events[-1].error.key == "plan_cut_by_context"
    assert "n_ctx 512" in events[-1].error.render("en")


async def test_headless_rejection_leaves_task_pending(loopback_server, habit_spec, project):
    await run_script(loopback_server, ScriptedModel(), habit_spec, project, ApproveMode.NONE)
    saved = json.loads((project.directory / ".sddtui" / "plan.json").read_text(encoding="utf-8"))
    assert saved["tasks"][0]["state"] == "pending"

    status, records, _ = await run_script(loopback_server, ScriptedModel(), habit_spec, project, ApproveMode.ALL)
    assert status == 0
    assert [record["path"] for record in records if record["event"] == "applied"] == [HABIT_PATH]


async def test_unreadable_target_is_an_error_event(loopback_server, habit_spec, project):
    (project.directory / "app").write_text("a file where a folder belongs\n", encoding="utf-8")
    status, records, _ = await run_script(loopback_server, ScriptedModel(), habit_spec, project)

    assert status == 1
    assert kinds_of(records)[-1] == "done"
    assert "error" in kinds_of(records)
    assert "error" in journal_kinds(project)


async def test_cancelled_run_journals_partial_answer(loopback_server, habit_spec, project):
    tokens = split_tokens(fenced_answer(), size=2)
    script = ScriptedModel(answers=[stream_of(tokens, delay=0.02)])
    script.install(loopback_server)
    session = await connect_session(habit_spec, project, Settings(base_url=loopback_server.url))
    async for _ in session.make_plan():
        pass

    async def consume():
        async for event in session.run_task(session.plan.tasks[0]):
            if isinstance(event, TextReceived) and event.text == tokens[5]:
                await asyncio.sleep(10)

    runner = asyncio.create_task(consume())
    while "prompt" not in journal_kinds(project):
        await asyncio.sleep(0.01)
    await asyncio.sleep(0.3)
    runner.cancel()
    with pytest.raises(asyncio.CancelledError):
        await runner
    await session.aclose()

    journal = [json.loads(line) for line in (project.directory / ".sddtui" / "journal.jsonl").read_text().splitlines()]
    answer = next(record for record in journal if record["kind"] == "answer")
    assert answer["stopped"] is True
    assert answer["text"].startswith(HABIT_PATH[:8])


def install_mlx_server(server, model_folder) -> ScriptedModel:
    """Script mlx_lm.server: its /health and 404 bytes, a model listed by its local folder, and answers."""
    from loopback import TRANSCRIPTS, json_response, response_from_http_file

    script = ScriptedModel()
    script.install(server)
    server.routes.pop(("POST", "/extras/tokenize/count"))
    server.route("GET", "/health", lambda _: response_from_http_file(TRANSCRIPTS / "mlx_lm" / "health.http"))
    listing = {"object": "list", "data": [{"id": str(model_folder), "object": "model", "created": 1796400000}]}
    server.route("GET", "/v1/models", json_response(200, listing))
    server.fallback = response_from_http_file(TRANSCRIPTS / "mlx_lm" / "not-found.http")
    return script


@pytest.fixture
def mlx_model_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mlx-model")
    config = (REPO_ROOT / "tests" / "memory_configs" / "smollm2-135m.json").read_text(encoding="utf-8")
    (folder / "config.json").write_text(config, encoding="utf-8")
    (folder / "model.safetensors").write_bytes(b"\0" * 4096)
    return folder


async def test_mlx_max_tokens_fits_memory_budget(loopback_server, habit_spec, project, mlx_model_folder, monkeypatch):
    from sddtui import connect
    from sddtui.memory.config import read_config_architecture
    from sddtui.memory.kv import mlx_kv_bytes

    architecture = read_config_architecture(mlx_model_folder)
    budget = 4096 + mlx_kv_bytes(architecture, 1024)
    monkeypatch.setattr(connect, "_machine_budget_bytes", lambda: budget)
    script = install_mlx_server(loopback_server, mlx_model_folder)

    session = await connect_session(habit_spec, project, Settings(base_url=loopback_server.url))
    assert session.server.label.startswith("mlx")
    assert session.server.budget.grows is True
    assert session.server.kv_bytes_per_token == 23_040
    async for _ in session.make_plan():
        pass
    events = [event async for event in session.run_task(session.plan.tasks[0])]
    await session.aclose()

    started = next(event for event in events if type(event).__name__ == "TaskStarted")
    assert started.max_tokens < 1024 - started.prompt_tokens
    assert script.task_requests[0]["max_tokens"] == started.max_tokens
    assert budget >= session.server.budget.memory_at(started.prompt_tokens + started.max_tokens)


async def test_mlx_prompt_past_memory_is_not_sent(loopback_server, habit_spec, project, mlx_model_folder, monkeypatch):
    from sddtui import connect
    from sddtui.memory.config import read_config_architecture
    from sddtui.memory.kv import mlx_kv_bytes

    architecture = read_config_architecture(mlx_model_folder)
    monkeypatch.setattr(connect, "_machine_budget_bytes", lambda: 4096 + mlx_kv_bytes(architecture, 256))
    script = install_mlx_server(loopback_server, mlx_model_folder)

    session = await connect_session(habit_spec, project, Settings(base_url=loopback_server.url))
    async for _ in session.make_plan():
        pass
    events = [event async for event in session.run_task(session.plan.tasks[0])]
    await session.aclose()

    assert isinstance(events[-1], ErrorOccurred)
    assert events[-1].error.key == "memory_prompt_over_budget"
    assert script.task_requests == []
