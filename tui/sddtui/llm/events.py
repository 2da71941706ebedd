"""Provide the typed events that the streaming chat client yields."""

from __future__ import annotations

from dataclasses import dataclass, field

from sddtui.errors import SddtuiError


@dataclass(frozen=True, slots=True)
class AnswerDelta:
    """Answer text that arrived."""

    text: str


@dataclass(frozen=True, slots=True)
class ReasoningDelta:
    """Reasoning text that arrived, from a reasoning field or a <think> block."""

    text: str


@dataclass(frozen=True, slots=True)
class ToolCallDelta:
    """A piece of a streamed tool call; arguments arrive in fragments to be joined by index."""

    index: int
    id: str | None
    name: str | None
    arguments: str


@dataclass(frozen=True, slots=True)
class UsageReported:
    """Token counts the server reported for the whole request."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


@dataclass(frozen=True, slots=True)
class TimingsReported:
    """llama.cpp-style timings: prompt and generation counts and speeds."""

    values: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class KeepaliveReceived:
    """An SSE comment; `progress` is (done, total) when it reads `keepalive N/M`."""

    comment: str
    progress: tuple[int, int] | None = None


@dataclass(frozen=True, slots=True)
class StreamFinished:
    """The server ended the answer with a finish reason (stop, length, tool_calls, ...)."""

    reason: str


@dataclass(frozen=True, slots=True)
class StreamFailed:
    """The request or the stream failed; the turn is a failure whatever follows."""

    error: SddtuiError


StreamEvent = (
    AnswerDelta
    | ReasoningDelta
    | ToolCallDelta
    | UsageReported
    | TimingsReported
    | KeepaliveReceived
    | StreamFinished
    | StreamFailed
)
