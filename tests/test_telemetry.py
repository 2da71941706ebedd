"""Check the telemetry readers of each server and the poller's pace, quiet window and endpoint dropping."""

import asyncio
import time

import pytest

from loopback import TRANSCRIPTS, LoopbackServer, json_response, loopback_server, replay_transcripts  # noqa: F401
from sddtui.llm.detect import detect_server
from sddtui.llm.telemetry import (
    MIN_INTERVAL,
    TelemetryPoller,
    parse_prometheus,
    sample_from_llama_cpp_metrics,
    sample_from_ollama_ps,
    sample_from_timings,
    sample_from_vllm_metrics,
)


async def collect(poller: TelemetryPoller, count: int, limit: float = 5.0) -> list:
    """Return the first `count` samples, or fewer when the poller stops or `limit` seconds pass."""
    samples = []

    async def gather() -> None:
        async for sample in poller.samples():
            samples.append(sample)
            if len(samples) >= count:
                return

    try:
        await asyncio.wait_for(gather(), limit)
    except TimeoutError:
        pass
    return samples


def test_prometheus_sums_label_series():
    text = 'a{x="1"} 1.5\na{x="2"} 2\n# HELP b x\nb 7\nbad line\n'

    assert parse_prometheus(text) == {"a": 3.5, "b": 7.0}


def test_llama_cpp_metrics_read():
    body = (TRANSCRIPTS / "llama.cpp" / "metrics.http").read_bytes().split(b"\r\n\r\n", 1)[1].decode()
    sample = sample_from_llama_cpp_metrics(body)

    assert sample.kv_usage_ratio == pytest.approx(0.0935)
    assert sample.context_tokens == 1532
    assert sample.tokens_per_second == pytest.approx(38.2)
    assert sample.requests_running == 1


def test_vllm_metrics_read_both_names():
    old = 'vllm:gpu_cache_usage_perc{model_name="m"} 0.25\nvllm:num_requests_running{model_name="m"} 2\n'
    new = 'vllm:kv_cache_usage_perc{engine="0"} 0.5\n'

    assert sample_from_vllm_metrics(old).kv_usage_ratio == 0.25
    assert sample_from_vllm_metrics(old).requests_running == 2
    assert sample_from_vllm_metrics(new).kv_usage_ratio == 0.5
    assert sample_from_vllm_metrics("other 1\n") is None


def test_ollama_ps_model_not_running():
    sample = sample_from_ollama_ps({"models": []}, "qwen2.5-coder:7b")

    assert sample.model_loaded is False


def test_timings_give_context_tokens():
    sample = sample_from_timings({"prompt_n": 400, "cache_n": 12, "predicted_n": 21, "predicted_per_second": 38.2}, 8192)

    assert sample.context_tokens == 433
    assert sample.completion_tokens == 21
    assert sample.n_ctx == 8192


@pytest.mark.parametrize(
    "folder, source, check",
    [
        ("llama.cpp", "/slots", lambda sample: sample.n_ctx == 8192 and sample.completion_tokens == 120),
        ("vllm", "/metrics", lambda sample: sample.kv_usage_ratio == pytest.approx(0.042)),
        ("ollama", "/api/ps", lambda sample: sample.vram_bytes == 5100000000 and sample.memory_bytes == 6654289920),
        ("lmstudio", "/api/v0/models", lambda sample: sample.model_loaded and sample.n_ctx == 8192),
    ],
)
async def test_poller_reads_each_dialect(loopback_server: LoopbackServer, folder, source, check):
    replay_transcripts(loopback_server, TRANSCRIPTS / folder)
    report = await detect_server(loopback_server.url)
    poller = TelemetryPoller(report, interval=MIN_INTERVAL)

    samples = await collect(poller, 2)

    matching = [sample for sample in samples if sample.source == source]
    assert matching
    assert check(matching[0])


async def test_poller_counts_answer_tokens_on_llama_cpp_python(loopback_server: LoopbackServer):
    replay_transcripts(loopback_server, TRANSCRIPTS / "llama-cpp-python", overrides={"POST /extras/tokenize/count": "tokenize-count-code.http"})
    report = await detect_server(loopback_server.url)
    poller = TelemetryPoller(report, answer_text=lambda: "def add(a, b):\n    return a + b\n")

    samples = await collect(poller, 1)

    assert samples[0].completion_tokens == 13
    assert loopback_server.requests[-1].json() == {"input": "def add(a, b):\n    return a + b\n"}


async def test_poller_without_endpoints_ends(loopback_server: LoopbackServer):
    replay_transcripts(loopback_server, TRANSCRIPTS / "mlx_lm")
    report = await detect_server(loopback_server.url)
    poller = TelemetryPoller(report)

    assert await collect(poller, 1, limit=1.0) == []
    assert poller.requests_sent == 0


async def test_absent_endpoint_dropped(loopback_server: LoopbackServer):
    replay_transcripts(loopback_server, TRANSCRIPTS / "llama.cpp")
    report = await detect_server(loopback_server.url)
    loopback_server.route("GET", "/metrics", json_response(501, {"error": {"code": 501, "message": "no metrics"}}))
    poller = TelemetryPoller(report, interval=MIN_INTERVAL)

    samples = await collect(poller, 3)

    assert poller.endpoints == ["/slots"]
    assert {sample.source for sample in samples} == {"/slots"}


async def test_poller_pace_is_polite(loopback_server: LoopbackServer):
    replay_transcripts(loopback_server, TRANSCRIPTS / "ollama")
    report = await detect_server(loopback_server.url)
    before = len(loopback_server.requests)
    poller = TelemetryPoller(report, interval=0.01)

    started = time.monotonic()
    await collect(poller, 4)
    elapsed = time.monotonic() - started

    assert poller.interval == MIN_INTERVAL
    assert len(loopback_server.requests) - before == 4
    assert elapsed >= 3 * MIN_INTERVAL


async def test_no_poll_while_prompt_sent(loopback_server: LoopbackServer):
    replay_transcripts(loopback_server, TRANSCRIPTS / "ollama")
    report = await detect_server(loopback_server.url)
    before = len(loopback_server.requests)
    poller = TelemetryPoller(report, prompt_quiet=0.6)
    poller.prompt_sent()

    started = time.monotonic()
    samples = await collect(poller, 1)

    assert samples
    assert time.monotonic() - started >= 0.55
    assert len(loopback_server.requests) - before == 1


async def test_poller_stops_when_server_gone(loopback_server: LoopbackServer):
    replay_transcripts(loopback_server, TRANSCRIPTS / "ollama")
    report = await detect_server(loopback_server.url)
    await loopback_server.stop()
    poller = TelemetryPoller(report, interval=MIN_INTERVAL, timeout=0.5)

    assert await collect(poller, 1, limit=5.0) == []
    assert poller.requests_sent == 3
