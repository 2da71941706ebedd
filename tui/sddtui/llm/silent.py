"""Check a finished stream for failures the server did not report: truncation, context shift, cuts, deaths."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from sddtui.edits.parse import parse_answer
from sddtui.errors import SddtuiError
from sddtui.guards.model import Finding, Severity
from sddtui.i18n import translate
from sddtui.llm.client import normalize_base_url

# The server counted fewer prompt tokens than this share of what sddtui sent: the prompt was cut.
# An estimate (4 characters per token) can be off by half, so it gets the looser threshold.
TRUNCATION_RATIO_EXACT = 0.75
TRUNCATION_RATIO_ESTIMATED = 0.5
# Prompts shorter than this are not checked, because a chat template's own tokens dominate them.
MIN_CHECKED_PROMPT_TOKENS = 256

# A prompt that fills at least this share of n_ctx makes an empty answer a probable overflow.
NEAR_LIMIT_RATIO = 0.9

# Errors that mean the stream stopped with neither a finish reason nor [DONE].
STREAM_CUT_KEYS = frozenset({"llm.stream_truncated", "llm.connection_dropped"})


@dataclass(frozen=True, slots=True)
class FinishedStream:
    """The facts a session has about one answer once its stream has ended."""

    prompt_tokens_sent: int
    """sddtui's count of the prompt it sent: exact from the server's tokenizer, or estimated."""
    prompt_tokens_exact: bool
    n_ctx: int | None
    usage_prompt_tokens: int | None
    usage_completion_tokens: int | None
    finish_reason: str | None
    answer: str
    reasoning: str = ""
    max_tokens: int | None = None


def silent_failure_findings(stream: FinishedStream, lang: str = "en") -> list[Finding]:
    """Return a blocking finding for each failure the server hid in a stream it reported as complete."""
    findings: list[Finding] = []

    counted = stream.usage_prompt_tokens
    ratio = TRUNCATION_RATIO_EXACT if stream.prompt_tokens_exact else TRUNCATION_RATIO_ESTIMATED
    if counted is not None and stream.prompt_tokens_sent >= MIN_CHECKED_PROMPT_TOKENS and counted > 0:
        if counted < stream.prompt_tokens_sent * ratio:
            findings.append(
                _finding("prompt_truncated", lang, sent=stream.prompt_tokens_sent, counted=counted)
            )

    if stream.n_ctx is not None and counted is not None and stream.usage_completion_tokens is not None:
        used = counted + stream.usage_completion_tokens
        if used > stream.n_ctx:
            findings.append(_finding("context_shifted", lang, used=used, n_ctx=stream.n_ctx))

    if stream.finish_reason == "stop" and any(not block.closed for block in parse_answer(stream.answer)):
        findings.append(_finding("stop_mid_block", lang))
    return findings


def _finding(kind: str, lang: str, **params: object) -> Finding:
    """Build one blocking finding with its message and retry feedback from the catalogue."""
    return Finding(
        kind=kind,
        severity=Severity.BLOCK,
        message=translate(f"silent.{kind}", lang, **params),
        evidence=", ".join(f"{name}={value}" for name, value in params.items()),
        feedback=translate(f"silent.{kind}.feedback", "en", **params),
    )


def empty_answer_error(stream: FinishedStream, task_id: str) -> SddtuiError:
    """Return the error for an answer with no text: all reasoning, a probable overflow, or plain empty."""
    if stream.reasoning.strip():
        return SddtuiError(
            "silent.reasoning_only",
            task=task_id,
            finish=stream.finish_reason or "none",
            max_tokens=stream.max_tokens if stream.max_tokens is not None else "?",
            reasoning_chars=len(stream.reasoning),
        )
    if stream.n_ctx and stream.prompt_tokens_sent >= stream.n_ctx * NEAR_LIMIT_RATIO:
        return SddtuiError(
            "silent.empty_near_limit", task=task_id, prompt_tokens=stream.prompt_tokens_sent, n_ctx=stream.n_ctx
        )
    return SddtuiError("silent.empty", task=task_id, finish=stream.finish_reason or "none")


async def explain_stream_cut(
    error: SddtuiError,
    base_url: str,
    *,
    api_key: str | None = None,
    timeout: float = 3.0,
    transport: httpx.AsyncBaseTransport | None = None,
) -> SddtuiError:
    """Probe the server after a stream stopped with no finish and no [DONE], and return an error that states whether it is down.

    Other errors are returned unchanged.
    """
    if error.key not in STREAM_CUT_KEYS:
        return error
    api_base = normalize_base_url(base_url)
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        async with httpx.AsyncClient(timeout=timeout, transport=transport, headers=headers, trust_env=False) as http:
            response = await http.get(api_base + "/models")
    except httpx.HTTPError as probe_error:
        return SddtuiError("silent.server_down", url=api_base, reason=str(probe_error) or type(probe_error).__name__)
    return SddtuiError("silent.stream_cut_server_up", url=api_base, status=response.status_code)
