"""Identify the model server behind a base URL from its own endpoints, and read its model, n_ctx and slots."""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import PurePosixPath

import httpx

from sddtui.llm.client import normalize_base_url

logger = logging.getLogger(__name__)

# Seconds each probe may take. A local server responds in milliseconds once its model is loaded.
DEFAULT_PROBE_TIMEOUT = 3.0

# Ports the six servers listen on by default, with the servers that use each.
DEFAULT_LOCAL_PORTS: tuple[tuple[int, str], ...] = (
    (1234, "LM Studio"),
    (8080, "llama.cpp / mlx_lm"),
    (11434, "Ollama"),
    (8000, "vLLM / llama-cpp-python"),
)
DEFAULT_PORTS: tuple[int, ...] = tuple(port for port, _ in DEFAULT_LOCAL_PORTS)


class Dialect(StrEnum):
    """The server software behind a base URL; each speaks its own variant of the OpenAI API."""

    LM_STUDIO = "lmstudio"
    LLAMA_CPP = "llama.cpp"
    OLLAMA = "ollama"
    VLLM = "vllm"
    MLX_LM = "mlx_lm"
    LLAMA_CPP_PYTHON = "llama-cpp-python"
    OPENAI_COMPATIBLE = "openai-compatible"


DIALECT_NAMES = {
    Dialect.LM_STUDIO: "LM Studio",
    Dialect.LLAMA_CPP: "llama.cpp (llama-server)",
    Dialect.OLLAMA: "Ollama",
    Dialect.VLLM: "vLLM",
    Dialect.MLX_LM: "mlx_lm.server",
    Dialect.LLAMA_CPP_PYTHON: "llama-cpp-python",
    Dialect.OPENAI_COMPATIBLE: "OpenAI-compatible server",
}


@dataclass(slots=True)
class ServerReport:
    """The findings of the probes at one base URL."""

    base_url: str
    """The API root, normalised to end in a version segment such as /v1."""
    root: str
    """The server root without the version segment, where the native endpoints live."""
    reachable: bool = False
    dialect: Dialect | None = None
    version: str | None = None
    models: list[str] = field(default_factory=list)
    loaded_model: str | None = None
    n_ctx: int | None = None
    """Context length in tokens that one request may use, as loaded (per slot), not the model's maximum."""
    n_ctx_source: str | None = None
    """The endpoint n_ctx was read from, e.g. "/props"."""
    max_context: int | None = None
    """The model's trained or advertised maximum context, when the server reports it."""
    slots: int | None = None
    telemetry: tuple[str, ...] = ()
    """Telemetry sources the server offers: "timings", "/slots", "/metrics", "/api/ps", "stats", ..."""
    memory_bytes: int | None = None
    vram_bytes: int | None = None
    chat_template: str | None = None
    failure: str | None = None
    """The transport error that kept the server from being reached, when none responded."""

    @property
    def name(self) -> str:
        """Return the server's display name, or "unknown" before detection."""
        return DIALECT_NAMES[self.dialect] if self.dialect else "unknown"

    @property
    def reasoning_starts_open(self) -> bool:
        """Return whether the chat template opens a <think> block in the prompt (see ThinkSplitter)."""
        return template_opens_think(self.chat_template or "")


@dataclass(frozen=True, slots=True)
class _Reply:
    """One probe's response: the status, the body as text, and the body as JSON when it parses."""

    status: int
    text: str
    document: object

    @property
    def ok_json(self) -> dict | list | None:
        """Return the JSON body of a 200 reply that is not an error object, else None.

        LM Studio responds to an unknown route with status 200 and {"error": "Unexpected endpoint ..."},
        so a 200 status alone does not prove the route exists.
        """
        if self.status != 200 or not isinstance(self.document, dict | list):
            return None
        if isinstance(self.document, dict) and "error" in self.document:
            return None
        return self.document


def template_opens_think(chat_template: str) -> bool:
    """Return whether a Jinja chat template ends its generation prompt inside an open <think> block.

    Templates of DeepSeek-R1 and QwQ style add "<think>\\n" after the assistant header, so the
    model's output starts in reasoning and only a closing tag appears in the stream.
    """
    marker = chat_template.rfind("add_generation_prompt")
    if marker < 0:
        return False
    tail = chat_template[marker:]
    return "<think>" in tail and "</think>" not in tail


async def detect_server(
    base_url: str,
    *,
    api_key: str | None = None,
    timeout: float = DEFAULT_PROBE_TIMEOUT,
    transport: httpx.AsyncBaseTransport | None = None,
) -> ServerReport:
    """Probe the native endpoints of every known server at once and return what they show.

    A trailing slash, a missing /v1 or a pasted endpoint path in `base_url` are all accepted.
    """
    api_base = normalize_base_url(base_url)
    report = ServerReport(base_url=api_base, root=api_base.rsplit("/", 1)[0])
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}

    async with httpx.AsyncClient(
        base_url=report.root, headers=headers, timeout=timeout, transport=transport, trust_env=False
    ) as http:
        models_path = api_base[len(report.root) :] + "/models"
        probes = {
            "models": ("GET", models_path),
            "lmstudio": ("GET", "/api/v0/models"),
            "props": ("GET", "/props"),
            "health": ("GET", "/health"),
            "ollama_version": ("GET", "/api/version"),
            "ollama_ps": ("GET", "/api/ps"),
            "version": ("GET", "/version"),
            "metrics": ("GET", "/metrics"),
            "slots": ("GET", "/slots"),
            "tokenize_count": ("POST", "/extras/tokenize/count"),
        }
        replies = await asyncio.gather(*(_probe(http, method, path) for method, path in probes.values()))
    answers = dict(zip(probes, replies))

    failures = [reply for reply in replies if isinstance(reply, str)]
    if len(failures) == len(replies):
        report.failure = failures[0]
        return report
    report.reachable = True
    found = {name: reply for name, reply in answers.items() if isinstance(reply, _Reply)}

    report.models = _model_ids(found.get("models"))
    for read in (_read_lm_studio, _read_llama_cpp, _read_ollama, _read_vllm, _read_llama_cpp_python, _read_mlx_lm):
        if read(report, found):
            break
    else:
        if report.models:
            report.dialect = Dialect.OPENAI_COMPATIBLE
            report.loaded_model = report.models[0]
    return report


async def _probe(http: httpx.AsyncClient, method: str, path: str) -> _Reply | str:
    """Send one probe; return the reply, or the transport error as text when nothing responded."""
    try:
        if method == "POST":
            response = await http.post(path, json={"input": ""})
        else:
            response = await http.get(path)
    except httpx.HTTPError as error:
        return str(error) or type(error).__name__
    try:
        document: object = json.loads(response.content) if response.content else None
    except ValueError:
        document = None
    return _Reply(response.status_code, response.text, document)


def _model_ids(reply: _Reply | None) -> list[str]:
    """Return the ids of an OpenAI model list."""
    document = reply.ok_json if reply else None
    entries = document.get("data") if isinstance(document, dict) else None
    if not isinstance(entries, list):
        return []
    return [entry["id"] for entry in entries if isinstance(entry, dict) and isinstance(entry.get("id"), str)]


def _model_entries(reply: _Reply | None) -> list[dict]:
    """Return the entries of an OpenAI-style model list."""
    document = reply.ok_json if reply else None
    entries = document.get("data") if isinstance(document, dict) else None
    return [entry for entry in entries if isinstance(entry, dict)] if isinstance(entries, list) else []


def _read_lm_studio(report: ServerReport, found: dict[str, _Reply]) -> bool:
    """Read LM Studio's /api/v0/models: loaded state, loaded and maximum context length."""
    entries = _model_entries(found.get("lmstudio"))
    if not entries and not _is_list_document(found.get("lmstudio")):
        return False
    report.dialect = Dialect.LM_STUDIO
    report.models = [str(entry.get("id")) for entry in entries if entry.get("id")] or report.models
    loaded = [entry for entry in entries if entry.get("state") == "loaded" and entry.get("type", "llm") != "embeddings"]
    if loaded:
        entry = loaded[0]
        report.loaded_model = str(entry.get("id"))
        report.max_context = _positive_int(entry.get("max_context_length"))
        # Builds that report it give the context the model was loaded with; older builds do not.
        report.n_ctx = _positive_int(entry.get("loaded_context_length"))
        report.n_ctx_source = "/api/v0/models" if report.n_ctx else None
    report.telemetry = ("/api/v0/models", "stats")
    return True


def _is_list_document(reply: _Reply | None) -> bool:
    """Return whether a reply is an OpenAI-style list object, even an empty one."""
    document = reply.ok_json if reply else None
    return isinstance(document, dict) and document.get("object") == "list" and isinstance(document.get("data"), list)


def _read_llama_cpp(report: ServerReport, found: dict[str, _Reply]) -> bool:
    """Read llama-server's /props (n_ctx per slot, slots, template), /slots and /metrics."""
    props = found.get("props").ok_json if found.get("props") else None
    if not isinstance(props, dict) or not ("default_generation_settings" in props or "total_slots" in props):
        return False
    report.dialect = Dialect.LLAMA_CPP
    settings = props.get("default_generation_settings")
    settings = settings if isinstance(settings, dict) else {}
    report.n_ctx = _positive_int(settings.get("n_ctx")) or _positive_int(props.get("n_ctx"))
    report.n_ctx_source = "/props" if report.n_ctx else None
    report.slots = _positive_int(props.get("total_slots"))
    report.version = props.get("build_info") if isinstance(props.get("build_info"), str) else None
    template = props.get("chat_template")
    report.chat_template = template if isinstance(template, str) else None

    model_path = props.get("model_alias") or props.get("model_path")
    entries = _model_entries(found.get("models"))
    if isinstance(model_path, str) and model_path:
        report.loaded_model = PurePosixPath(model_path).name if "/" in model_path else model_path
    elif report.models:
        report.loaded_model = report.models[0]
    meta = entries[0].get("meta") if entries else None
    if isinstance(meta, dict):
        report.max_context = _positive_int(meta.get("n_ctx_train"))

    telemetry = ["timings"]
    if isinstance(found.get("slots") and found["slots"].ok_json, list):
        telemetry.append("/slots")
    metrics = found.get("metrics")
    if metrics is not None and metrics.status == 200 and "llamacpp:" in metrics.text:
        telemetry.append("/metrics")
    report.telemetry = tuple(telemetry)
    return True


def _read_ollama(report: ServerReport, found: dict[str, _Reply]) -> bool:
    """Read Ollama's /api/version and /api/ps: the loaded model, its memory, and its context when reported."""
    version = found.get("ollama_version").ok_json if found.get("ollama_version") else None
    if not isinstance(version, dict) or not isinstance(version.get("version"), str):
        return False
    report.dialect = Dialect.OLLAMA
    report.version = version["version"]

    ps = found.get("ollama_ps").ok_json if found.get("ollama_ps") else None
    running = ps.get("models") if isinstance(ps, dict) else None
    if isinstance(running, list) and running and isinstance(running[0], dict):
        model = running[0]
        report.loaded_model = model.get("name") or model.get("model")
        report.memory_bytes = _positive_int(model.get("size"))
        report.vram_bytes = _non_negative_int(model.get("size_vram"))
        # Recent Ollama versions report the context the runner was started with; older ones do not.
        report.n_ctx = _positive_int(model.get("context_length"))
        report.n_ctx_source = "/api/ps" if report.n_ctx else None
    if isinstance(running, list):
        report.telemetry = ("/api/ps",)
    return True


def _read_vllm(report: ServerReport, found: dict[str, _Reply]) -> bool:
    """Read vLLM's /version, max_model_len from the model list, and the KV cache gauge in /metrics."""
    version = found.get("version").ok_json if found.get("version") else None
    metrics = found.get("metrics")
    has_vllm_metrics = metrics is not None and metrics.status == 200 and "vllm:" in metrics.text
    if not (isinstance(version, dict) and isinstance(version.get("version"), str)) and not has_vllm_metrics:
        return False
    report.dialect = Dialect.VLLM
    report.version = version.get("version") if isinstance(version, dict) else None
    entries = _model_entries(found.get("models"))
    if entries:
        report.loaded_model = str(entries[0].get("id"))
        report.n_ctx = _positive_int(entries[0].get("max_model_len"))
        report.n_ctx_source = "/v1/models max_model_len" if report.n_ctx else None
    report.telemetry = ("/metrics",) if has_vllm_metrics else ()
    return True


def _read_llama_cpp_python(report: ServerReport, found: dict[str, _Reply]) -> bool:
    """Recognise llama-cpp-python by its /extras/tokenize/count route; it reports no n_ctx."""
    count = found.get("tokenize_count").ok_json if found.get("tokenize_count") else None
    if not isinstance(count, dict) or not isinstance(count.get("count"), int):
        return False
    report.dialect = Dialect.LLAMA_CPP_PYTHON
    report.loaded_model = report.models[0] if report.models else None
    report.telemetry = ("/extras/tokenize/count",)
    return True


def _read_mlx_lm(report: ServerReport, found: dict[str, _Reply]) -> bool:
    """Recognise mlx_lm.server: /health with a status, a model list, and none of the routes above."""
    health = found.get("health").ok_json if found.get("health") else None
    if not isinstance(health, dict) or "status" not in health or not _is_list_document(found.get("models")):
        return False
    report.dialect = Dialect.MLX_LM
    # NOTE: mlx_lm.server lists the models in the Hugging Face cache, not only the loaded one.
    report.loaded_model = report.models[0] if report.models else None
    return True


def _positive_int(value: object) -> int | None:
    """Return `value` when it is an int above zero, else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _non_negative_int(value: object) -> int | None:
    """Return `value` when it is an int of zero or more, else None."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def local_base_urls(ports: tuple[int, ...] = DEFAULT_PORTS) -> list[str]:
    """Return the loopback base URLs of the default ports."""
    return [f"http://127.0.0.1:{port}/v1" for port in ports]


async def detect_local_servers(
    ports: tuple[int, ...] = DEFAULT_PORTS, *, timeout: float = 1.0
) -> list[ServerReport]:
    """Probe every default local port at once and return the reports of the servers that responded."""
    reports = await asyncio.gather(*(detect_server(url, timeout=timeout) for url in local_base_urls(ports)))
    return [report for report in reports if report.reachable]

