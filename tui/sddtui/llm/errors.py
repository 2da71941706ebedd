"""Read an error body from any OpenAI-compatible server and classify it as one SddtuiError."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from sddtui.errors import SddtuiError

# Keys of the context-overflow messages, for callers that react to any overflow.
CONTEXT_OVERFLOW_KEYS = frozenset(
    {"llm.context_overflow", "llm.context_overflow_at_limit", "llm.context_overflow_unsized"}
)

# Stands in for a body with no text, so that messages never show an empty quote.
_EMPTY_DETAIL = "(empty body)"

# The server text shown inside a message is cut to this many characters.
MAX_DETAIL_CHARS = 600

# Each pattern finds the requested token count and n_ctx in one server's overflow text.
# Groups are named so that patterns whose numbers come in either order share one reader.
_OVERFLOW_WITH_BOTH = (
    # llama-server: "request (33056 tokens) exceeds the available context size (32768 tokens)"
    re.compile(r"\((?P<requested>\d+) tokens\)[^()]*?exceeds[^()]*?\((?P<n_ctx>\d+) tokens\)", re.I),
    # llama-cpp-python: "maximum context length is 2048 tokens. However, you requested 3042 tokens"
    re.compile(r"maximum context length is (?P<n_ctx>\d+) tokens.*?requested (?P<requested>\d+) tokens", re.I | re.S),
    # LM Studio: "The input has 31430 tokens, but the context length only supports 30000 tokens"
    re.compile(r"input has (?P<requested>\d+) tokens.*?context length only supports (?P<n_ctx>\d+)", re.I | re.S),
    # vLLM's prompt check shares the llama-cpp-python text above; its max_tokens check reads:
    # "... maximum context length is 4096 tokens and your request has 3500 input tokens (1000 > 4096 - 3500)"
    re.compile(r"\((?P<output>\d+) > (?P<n_ctx>\d+) - (?P<input>\d+)\)"),
    # llama.cpp via LM Studio: "(n_keep: 13055>= n_ctx: 4096)"
    re.compile(r"n_keep\s*:\s*(?P<requested>\d+)\s*>=?\s*n_ctx\s*:\s*(?P<n_ctx>\d+)", re.I),
)
_OVERFLOW_AT_LIMIT = (
    # LM Studio during generation: "Reached context length of 4096 tokens"
    re.compile(r"(?:reached|exceeded) (?:the )?context length of (?P<n_ctx>\d+)", re.I),
)
_OVERFLOW_SUBJECT = re.compile(r"context[ _-]?(?:size|length|window)|n_ctx|context_length_exceeded", re.I)
_OVERFLOW_VERB = re.compile(r"exceed|overflow|not fit|greater than|too (?:long|large|many)|reached", re.I)

_OUT_OF_MEMORY = re.compile(
    r"out of memory|outofmemory|insufficient memory|failed to allocate|unable to allocate"
    r"|cudaMalloc|bad_alloc|not enough memory|\bOOM\b"
    # Metal (llama.cpp, MLX): "kIOGPUCommandBufferCallbackErrorOutOfMemory"; Vulkan: "ErrorOutOfDeviceMemory"
    r"|OutOfMemory|OutOfDeviceMemory"
    # Ollama: "model requires more system memory (12.0 GiB) than is available (7.1 GiB)"
    r"|requires more (?:system )?memory",
    re.I,
)
_MODEL_LOADING = re.compile(r"loading model|model is (?:still )?loading", re.I)
_MODEL_MISSING = re.compile(
    r"model[^.]*?(?:not found|does not exist|not loaded|unloaded)|no models? (?:is )?loaded"
    r"|model_not_found|unknown model|try pulling it",
    re.I,
)


@dataclass(frozen=True, slots=True)
class ErrorBody:
    """What an error body contains once its shape is known: the message, a type or code, numbers."""

    message: str
    error_type: str
    requested_tokens: int | None
    n_ctx: int | None


def read_error(status: int | None, body: bytes | str) -> SddtuiError:
    """Classify an error body from any server into one SddtuiError with the numbers it names.

    `status` is None for an error that arrived inside a stream (which servers send with status 200).
    """
    parsed = parse_error_body(body)
    detail = _shorten(parsed.message) or _EMPTY_DETAIL
    searchable = f"{parsed.error_type} {parsed.message}"

    requested, n_ctx = _find_overflow_numbers(parsed)
    if requested is not None and n_ctx is not None:
        return SddtuiError(
            "llm.context_overflow", requested_tokens=requested, n_ctx=n_ctx, detail=detail, status=status
        )
    if n_ctx is not None:
        return SddtuiError("llm.context_overflow_at_limit", n_ctx=n_ctx, detail=detail, status=status)
    if _OVERFLOW_SUBJECT.search(searchable) and _OVERFLOW_VERB.search(searchable):
        return SddtuiError("llm.context_overflow_unsized", detail=detail, status=status)

    if _OUT_OF_MEMORY.search(searchable):
        return SddtuiError("llm.out_of_memory", detail=detail, status=status)
    if status == 503 or _MODEL_LOADING.search(searchable):
        return SddtuiError("llm.model_loading", detail=detail, status=status)
    if _MODEL_MISSING.search(searchable):
        return SddtuiError("llm.model_not_found", detail=detail, status=status)
    if status == 404:
        return SddtuiError("llm.endpoint_not_found", detail=detail, status=status)
    if status in (401, 403):
        return SddtuiError("llm.unauthorized", detail=detail, status=status)
    if status is not None and 400 <= status < 500:
        return SddtuiError("llm.bad_request", detail=detail, status=status)
    if status is None or status < 400:
        return SddtuiError("llm.stream_error", detail=detail, status=status)
    return SddtuiError("llm.server_failure", detail=detail, status=status)


def parse_error_body(body: bytes | str) -> ErrorBody:
    """Find the message, type and token numbers in a JSON or plain-text error body."""
    text = body.decode("utf-8", errors="replace") if isinstance(body, bytes) else body
    text = text.strip()
    try:
        document = json.loads(text)
    except ValueError:
        return ErrorBody(message=text, error_type="", requested_tokens=None, n_ctx=None)

    if not isinstance(document, dict):
        return ErrorBody(message=text, error_type="", requested_tokens=None, n_ctx=None)

    error = document.get("error")
    if isinstance(error, dict):
        message = _first_text(error.get("message"), document.get("message"), error.get("detail"))
        return ErrorBody(
            message=message or json.dumps(error, ensure_ascii=False),
            error_type=" ".join(str(error.get(name) or "") for name in ("type", "code")).strip(),
            requested_tokens=_as_int(error.get("n_prompt_tokens")),
            n_ctx=_as_int(error.get("n_ctx")),
        )

    # `error` is a string (LM Studio, Ollama), or absent with `message` or FastAPI's `detail` on top.
    message = _first_text(error, document.get("message"), _detail_text(document.get("detail")))
    return ErrorBody(
        message=message or text,
        error_type=str(document.get("type") or document.get("code") or ""),
        requested_tokens=_as_int(document.get("n_prompt_tokens")),
        n_ctx=_as_int(document.get("n_ctx")),
    )


def _find_overflow_numbers(parsed: ErrorBody) -> tuple[int | None, int | None]:
    """Return the requested token count and n_ctx from the structured fields or the message."""
    if parsed.requested_tokens is not None and parsed.n_ctx is not None:
        return parsed.requested_tokens, parsed.n_ctx
    for pattern in _OVERFLOW_WITH_BOTH:
        match = pattern.search(parsed.message)
        if match:
            groups = match.groupdict()
            if groups.get("requested") is None:
                return int(groups["input"]) + int(groups["output"]), int(groups["n_ctx"])
            return int(groups["requested"]), int(groups["n_ctx"])
    for pattern in _OVERFLOW_AT_LIMIT:
        match = pattern.search(parsed.message)
        if match:
            return None, int(match["n_ctx"])
    return None, None


def _first_text(*candidates: object) -> str:
    """Return the first candidate that is a non-empty string, else an empty string."""
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.strip():
            return candidate.strip()
    return ""


def _detail_text(detail: object) -> str:
    """Return FastAPI's `detail` (a string, or a list of validation errors) as one line."""
    if isinstance(detail, str):
        return detail
    if isinstance(detail, list):
        parts = []
        for item in detail:
            if isinstance(item, dict):
                location = ".".join(str(part) for part in item.get("loc", []))
                parts.append(f"{location}: {item.get('msg', '')}".strip(": "))
            else:
                parts.append(str(item))
        return "; ".join(parts)
    return ""


def _as_int(value: object) -> int | None:
    """Return `value` as an int when it is a whole number, else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    return None


def _shorten(text: str) -> str:
    """Cut `text` to MAX_DETAIL_CHARS, marking the cut."""
    text = " ".join(text.split())
    if len(text) <= MAX_DETAIL_CHARS:
        return text
    return text[: MAX_DETAIL_CHARS - 1] + "…"
