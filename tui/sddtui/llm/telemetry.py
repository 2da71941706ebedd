"""Poll each server's own telemetry endpoints politely and yield TelemetrySample values for the gauge."""

from __future__ import annotations

import asyncio
import logging
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import httpx

from sddtui.llm.detect import Dialect, ServerReport

logger = logging.getLogger(__name__)

# Seconds between two polling rounds: at most two rounds a second. A local server shares its CPU
# and GPU with generation, so polling faster would slow the answer it measures.
DEFAULT_INTERVAL = 0.5
MIN_INTERVAL = 0.25

# Seconds after a prompt is sent during which no poll is made, so that the request's first bytes
# and the start of prompt processing are not delayed.
PROMPT_QUIET_SECONDS = 1.0

# HTTP statuses that mean the server does not offer an endpoint, so the poller drops it.
_ABSENT_STATUSES = frozenset({404, 405, 501})

# Consecutive transport failures after which the poller stops: the server is gone.
MAX_TRANSPORT_FAILURES = 3

_PROMETHEUS_LINE = re.compile(r"^(?P<name>[A-Za-z_:][A-Za-z0-9_:]*)(?:\{[^}]*\})?\s+(?P<value>\S+)")


@dataclass(frozen=True, slots=True)
class TelemetrySample:
    """One reading of a server's state; a field is None when the source does not report it."""

    source: str
    """The endpoint or stream field the values came from, e.g. "/slots" or "timings"."""
    at: float = field(default_factory=time.monotonic)
    n_ctx: int | None = None
    context_tokens: int | None = None
    """Tokens held in the KV cache (or decoded in the busy slot) at the time of the reading."""
    kv_usage_ratio: float | None = None
    """KV cache usage from 0 to 1, as vLLM and llama.cpp report it."""
    completion_tokens: int | None = None
    tokens_per_second: float | None = None
    prompt_tokens_per_second: float | None = None
    requests_running: int | None = None
    requests_waiting: int | None = None
    memory_bytes: int | None = None
    vram_bytes: int | None = None
    model_loaded: bool | None = None


def parse_prometheus(text: str) -> dict[str, float]:
    """Return each metric's value from Prometheus text, summing the series of one name across labels."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _PROMETHEUS_LINE.match(line)
        if match is None:
            continue
        try:
            value = float(match["value"])
        except ValueError:
            continue
        values[match["name"]] = values.get(match["name"], 0.0) + value
    return values


def sample_from_llama_cpp_metrics(text: str) -> TelemetrySample | None:
    """Read llama-server's /metrics (started with --metrics); None when it contains no llamacpp: series."""
    values = parse_prometheus(text)
    if not any(name.startswith("llamacpp:") for name in values):
        return None
    return TelemetrySample(
        source="/metrics",
        kv_usage_ratio=values.get("llamacpp:kv_cache_usage_ratio"),
        context_tokens=_as_count(values.get("llamacpp:kv_cache_tokens")),
        tokens_per_second=values.get("llamacpp:predicted_tokens_seconds"),
        prompt_tokens_per_second=values.get("llamacpp:prompt_tokens_seconds"),
        requests_running=_as_count(values.get("llamacpp:requests_processing")),
        requests_waiting=_as_count(values.get("llamacpp:requests_deferred")),
    )


def sample_from_llama_cpp_slots(document: object) -> TelemetrySample | None:
    """Read llama-server's /slots: n_ctx per slot, busy slots, and tokens decoded in the busy one."""
    if not isinstance(document, list):
        return None
    slots = [slot for slot in document if isinstance(slot, dict)]
    if not slots:
        return None
    busy = [slot for slot in slots if slot.get("is_processing")]
    watched = busy[0] if busy else slots[0]
    next_token = watched.get("next_token")
    decoded = next_token.get("n_decoded") if isinstance(next_token, dict) else None
    return TelemetrySample(
        source="/slots",
        n_ctx=_as_count(watched.get("n_ctx")),
        completion_tokens=_as_count(decoded),
        requests_running=len(busy),
    )


def sample_from_vllm_metrics(text: str) -> TelemetrySample | None:
    """Read vLLM's /metrics: KV cache usage (either metric name vLLM has used), running and waiting requests."""
    values = parse_prometheus(text)
    if not any(name.startswith("vllm:") for name in values):
        return None
    kv_usage = values.get("vllm:kv_cache_usage_perc", values.get("vllm:gpu_cache_usage_perc"))
    return TelemetrySample(
        source="/metrics",
        kv_usage_ratio=kv_usage,
        requests_running=_as_count(values.get("vllm:num_requests_running")),
        requests_waiting=_as_count(values.get("vllm:num_requests_waiting")),
    )


def sample_from_ollama_ps(document: object, model: str | None) -> TelemetrySample | None:
    """Read Ollama's /api/ps: the model's total size in memory, the part in VRAM, and its context."""
    running = document.get("models") if isinstance(document, dict) else None
    if not isinstance(running, list):
        return None
    entries = [entry for entry in running if isinstance(entry, dict)]
    entry = next((item for item in entries if model in (item.get("name"), item.get("model"))), None)
    if entry is None:
        entry = entries[0] if entries and model is None else None
    if entry is None:
        return TelemetrySample(source="/api/ps", model_loaded=False)
    return TelemetrySample(
        source="/api/ps",
        n_ctx=_as_count(entry.get("context_length")),
        memory_bytes=_as_count(entry.get("size")),
        vram_bytes=_as_count(entry.get("size_vram")),
        model_loaded=True,
    )


def sample_from_lm_studio_model(document: object) -> TelemetrySample | None:
    """Read LM Studio's /api/v0/models/{model}: whether it is loaded and the context it was loaded with."""
    if not isinstance(document, dict) or "error" in document or "state" not in document:
        return None
    return TelemetrySample(
        source="/api/v0/models",
        n_ctx=_as_count(document.get("loaded_context_length")),
        model_loaded=document.get("state") == "loaded",
    )


def sample_from_lm_studio_stats(stats: dict) -> TelemetrySample:
    """Read the `stats` object of an LM Studio /api/v0 completion: speed and time to first token."""
    speed = stats.get("tokens_per_second")
    return TelemetrySample(source="stats", tokens_per_second=float(speed) if isinstance(speed, int | float) else None)


def sample_from_timings(values: dict[str, float], n_ctx: int | None) -> TelemetrySample:
    """Read the `timings` that llama-server adds to a stream's last chunk."""
    prompt_n = values.get("prompt_n")
    cache_n = values.get("cache_n", 0.0)
    predicted_n = values.get("predicted_n")
    context_tokens = None
    if prompt_n is not None and predicted_n is not None:
        context_tokens = int(prompt_n + cache_n + predicted_n)
    return TelemetrySample(
        source="timings",
        n_ctx=n_ctx,
        context_tokens=context_tokens,
        completion_tokens=_as_count(predicted_n),
        tokens_per_second=values.get("predicted_per_second"),
        prompt_tokens_per_second=values.get("prompt_per_second"),
    )


def _as_count(value: object) -> int | None:
    """Return a non-negative whole count from an int or float, else None."""
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        return None
    return int(value)


def telemetry_endpoints(report: ServerReport, *, with_answer_text: bool = False) -> list[str]:
    """Return the endpoints worth polling for a detected server, in polling order."""
    match report.dialect:
        case Dialect.LLAMA_CPP:
            return [path for path in ("/slots", "/metrics") if path in report.telemetry]
        case Dialect.VLLM:
            return ["/metrics"] if "/metrics" in report.telemetry else []
        case Dialect.OLLAMA:
            return ["/api/ps"]
        case Dialect.LM_STUDIO:
            return [f"/api/v0/models/{report.loaded_model}"] if report.loaded_model else []
        case Dialect.LLAMA_CPP_PYTHON:
            return ["/extras/tokenize/count"] if with_answer_text else []
    return []


class TelemetryPoller:
    """Poll one server's telemetry endpoints and yield samples, dropping each endpoint the server lacks.

    Use `samples()` as an async iterator in a worker; cancel the worker to stop. Call
    `prompt_sent()` when a request goes out, so that no poll competes with its first bytes.
    For llama-cpp-python, `answer_text` returns the answer so far, whose exact token count the
    server's tokenize route gives.
    """

    def __init__(
        self,
        report: ServerReport,
        *,
        api_key: str | None = None,
        interval: float = DEFAULT_INTERVAL,
        prompt_quiet: float = PROMPT_QUIET_SECONDS,
        answer_text: Callable[[], str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 2.0,
    ) -> None:
        self.report = report
        self.interval = max(interval, MIN_INTERVAL)
        self.prompt_quiet = prompt_quiet
        self.answer_text = answer_text
        self.endpoints = telemetry_endpoints(report, with_answer_text=answer_text is not None)
        self.requests_sent = 0
        self._quiet_until = 0.0
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._transport = transport
        self._timeout = timeout

    def prompt_sent(self) -> None:
        """Hold polling for `prompt_quiet` seconds from now."""
        self._quiet_until = time.monotonic() + self.prompt_quiet

    async def samples(self) -> AsyncIterator[TelemetrySample]:
        """Yield samples until no endpoint is left or the server stops responding."""
        failures = 0
        async with httpx.AsyncClient(
            base_url=self.report.root,
            headers=self._headers,
            timeout=self._timeout,
            transport=self._transport,
            trust_env=False,
        ) as http:
            while self.endpoints:
                quiet_left = self._quiet_until - time.monotonic()
                if quiet_left > 0:
                    await asyncio.sleep(quiet_left)
                    continue

                answered = False
                for endpoint in list(self.endpoints):
                    try:
                        sample = await self._poll(http, endpoint)
                    except httpx.HTTPError as error:
                        logger.info("telemetry poll of %s%s failed: %r", self.report.root, endpoint, error)
                        continue
                    answered = True
                    if sample is not None:
                        yield sample

                failures = 0 if answered else failures + 1
                if failures >= MAX_TRANSPORT_FAILURES:
                    logger.warning("telemetry stopped: %s did not respond %d times in a row", self.report.root, failures)
                    return
                await asyncio.sleep(self.interval)

    async def _poll(self, http: httpx.AsyncClient, endpoint: str) -> TelemetrySample | None:
        """Poll one endpoint; drop it when the server does not offer it or its body cannot be read."""
        self.requests_sent += 1
        if endpoint == "/extras/tokenize/count":
            assert self.answer_text is not None
            response = await http.post(endpoint, json={"input": self.answer_text()})
        else:
            response = await http.get(endpoint)

        if response.status_code in _ABSENT_STATUSES:
            self._drop(endpoint, f"HTTP {response.status_code}")
            return None
        if not response.is_success:
            return None
        sample = self._read(endpoint, response)
        if sample is None:
            self._drop(endpoint, "unreadable body")
        return sample

    def _read(self, endpoint: str, response: httpx.Response) -> TelemetrySample | None:
        """Turn one endpoint's body into a sample, or None when it is not what that server sends."""
        if endpoint == "/metrics":
            if self.report.dialect is Dialect.VLLM:
                return sample_from_vllm_metrics(response.text)
            return sample_from_llama_cpp_metrics(response.text)
        try:
            document = response.json()
        except ValueError:
            return None
        if endpoint == "/slots":
            return sample_from_llama_cpp_slots(document)
        if endpoint == "/api/ps":
            return sample_from_ollama_ps(document, self.report.loaded_model)
        if endpoint.startswith("/api/v0/models/"):
            return sample_from_lm_studio_model(document)
        if endpoint == "/extras/tokenize/count" and isinstance(document, dict):
            count = _as_count(document.get("count"))
            return TelemetrySample(source=endpoint, completion_tokens=count) if count is not None else None
        return None

    def _drop(self, endpoint: str, reason: str) -> None:
        """Stop polling an endpoint the server does not offer."""
        logger.info("telemetry endpoint %s%s dropped: %s", self.report.root, endpoint, reason)
        self.endpoints.remove(endpoint)
