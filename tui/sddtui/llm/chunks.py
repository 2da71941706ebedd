"""Turn the SSE events of an OpenAI chat.completion.chunk stream into typed stream events."""

from __future__ import annotations

import json
import re
from enum import Enum, auto

from sddtui.errors import SddtuiError
from sddtui.llm.errors import read_error
from sddtui.llm.events import (
    AnswerDelta,
    KeepaliveReceived,
    ReasoningDelta,
    StreamEvent,
    StreamFailed,
    StreamFinished,
    TimingsReported,
    ToolCallDelta,
    UsageReported,
)
from sddtui.llm.sse import SseComment, SseEvent

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"

# The finish reason reported when a stream ends with [DONE] but no chunk carried a finish_reason.
UNKNOWN_FINISH_REASON = "unknown"

# The data shown in an invalid-chunk message is cut to this many characters.
_MAX_SHOWN_DATA = 200

_KEEPALIVE_PROGRESS = re.compile(r"keepalive\s+(\d+)\s*/\s*(\d+)")


class _ThinkState(Enum):
    START = auto()  # nothing but whitespace so far: an opening <think> may still come
    REASONING = auto()  # inside <think>: text is reasoning until </think>
    ANSWER_BEFORE_CLOSE = auto()  # answer text, but a bare </think> may still come
    ANSWER = auto()  # after the think block: tags are ordinary text


class ThinkSplitter:
    """Split content that may hold a <think>…</think> block into reasoning and answer deltas.

    Rules: an opening <think> counts only at the start of the content (after whitespace). Until a
    think block has closed, a </think> counts anywhere, and a bare one (no opening tag, from chat
    templates that open the block in the prompt) ends reasoning that was already sent as answer
    text: that text cannot be taken back, so the tag is dropped and `bare_close_seen` is set, and a
    caller that knows its template opens the block passes `starts_in_reasoning=True` instead.
    After the first block closes, tags are left in the answer as written, because code the model
    writes may contain them. A tag split across deltas is held back until it is complete.
    """

    def __init__(self, *, starts_in_reasoning: bool = False) -> None:
        self._state = _ThinkState.REASONING if starts_in_reasoning else _ThinkState.START
        self._pending = ""
        self.bare_close_seen = False

    def feed(self, text: str) -> list[AnswerDelta | ReasoningDelta]:
        """Classify one content delta, holding back a possible partial tag at its end."""
        self._pending += text
        output: list[AnswerDelta | ReasoningDelta] = []
        while self._pending:
            if not self._step(output):
                break
        return output

    def flush(self) -> list[AnswerDelta | ReasoningDelta]:
        """Return the text held back, at the end of the stream."""
        text, self._pending = self._pending, ""
        if not text:
            return []
        if self._state is _ThinkState.REASONING:
            return [ReasoningDelta(text)]
        return [AnswerDelta(text)]

    def _step(self, output: list[AnswerDelta | ReasoningDelta]) -> bool:
        """Consume what the current state can decide, and return False when it must wait for more."""
        if self._state is _ThinkState.START:
            stripped = self._pending.lstrip()
            if not stripped or (len(stripped) < len(THINK_OPEN) and THINK_OPEN.startswith(stripped)):
                return False
            if stripped.startswith(THINK_OPEN):
                self._pending = stripped[len(THINK_OPEN) :]
                self._state = _ThinkState.REASONING
            else:
                self._state = _ThinkState.ANSWER_BEFORE_CLOSE
            return True

        if self._state is _ThinkState.ANSWER:
            output.append(AnswerDelta(self._pending))
            self._pending = ""
            return True

        delta_type = ReasoningDelta if self._state is _ThinkState.REASONING else AnswerDelta
        close_at = self._pending.find(THINK_CLOSE)
        if close_at >= 0:
            if close_at:
                output.append(delta_type(self._pending[:close_at]))
            if self._state is _ThinkState.ANSWER_BEFORE_CLOSE:
                self.bare_close_seen = True
            self._pending = self._pending[close_at + len(THINK_CLOSE) :]
            self._state = _ThinkState.ANSWER
            return True

        partial_tag_length = _partial_tag_length(self._pending, THINK_CLOSE)
        ready = self._pending[: len(self._pending) - partial_tag_length]
        if ready:
            output.append(delta_type(ready))
        self._pending = self._pending[len(ready) :]
        return False


def _partial_tag_length(text: str, tag: str) -> int:
    """Return the length of the longest end of `text` that is a proper prefix of `tag`."""
    for length in range(min(len(tag) - 1, len(text)), 0, -1):
        if tag.startswith(text[-length:]):
            return length
    return 0


class ChunkReader:
    """Read one chat-completion stream event by event and return the typed events each one adds.

    StreamFinished always comes last, after any usage and timings. After [DONE] or a failure the
    reader is closed and ignores everything that follows, so an error followed by [DONE] stays a
    failure.
    """

    def __init__(self, *, starts_in_reasoning: bool = False) -> None:
        self._think = ThinkSplitter(starts_in_reasoning=starts_in_reasoning)
        self.finish_reason: str | None = None
        self.done = False
        self.failed = False

    @property
    def closed(self) -> bool:
        """Whether the stream has ended, by [DONE] or by a failure."""
        return self.done or self.failed

    @property
    def bare_think_close_seen(self) -> bool:
        """Whether a </think> arrived with no opening tag, so earlier answer text was reasoning."""
        return self._think.bare_close_seen

    def read(self, item: SseEvent | SseComment) -> list[StreamEvent]:
        """Return the typed events that one decoded SSE event or comment adds."""
        if self.closed:
            return []
        if isinstance(item, SseComment):
            return [_read_comment(item)]

        if item.event == "error" or "error" in item.fields:
            body = item.fields.get("error") or item.data
            return self._fail(read_error(None, body))

        data = item.data.strip()
        if not data:
            return []
        if data == "[DONE]":
            return self._finish(self.finish_reason or UNKNOWN_FINISH_REASON)

        try:
            chunk = json.loads(data)
        except ValueError:
            if not item.complete:
                # The stream stopped inside this event; the caller reports the cut.
                return []
            return self._fail(SddtuiError("llm.invalid_chunk", data=data[:_MAX_SHOWN_DATA]))
        if not isinstance(chunk, dict):
            return self._fail(SddtuiError("llm.invalid_chunk", data=data[:_MAX_SHOWN_DATA]))
        if "error" in chunk:
            return self._fail(read_error(None, data))
        return self._read_chunk(chunk)

    def read_completion(self, completion: dict) -> list[StreamEvent]:
        """Return the events of a whole chat.completion object, from a server that ignored `stream`."""
        if "error" in completion:
            return self._fail(read_error(None, json.dumps(completion)))

        events: list[StreamEvent] = []
        choice = _first_choice(completion)
        message = choice.get("message") if choice else None
        if isinstance(message, dict):
            events += self._read_delta(message)
        if choice and choice.get("finish_reason"):
            self.finish_reason = str(choice["finish_reason"])
        events += _read_usage_and_timings(completion)
        return events + self._finish(self.finish_reason or UNKNOWN_FINISH_REASON)

    def end(self) -> list[StreamEvent]:
        """Return what is left when the body ends: held-back text, then StreamFinished if a finish
        reason arrived. A stream with neither [DONE] nor a finish reason gets no StreamFinished."""
        if self.closed:
            return []
        events: list[StreamEvent] = list(self._think.flush())
        if self.finish_reason is not None:
            events += self._finish(self.finish_reason)
        return events

    def _read_chunk(self, chunk: dict) -> list[StreamEvent]:
        """Return the events of one chat.completion.chunk object."""
        events: list[StreamEvent] = []
        choice = _first_choice(chunk)
        if choice is not None:
            delta = choice.get("delta")
            if isinstance(delta, dict):
                events += self._read_delta(delta)
            if choice.get("finish_reason"):
                self.finish_reason = str(choice["finish_reason"])
        events += _read_usage_and_timings(chunk)
        return events

    def _read_delta(self, delta: dict) -> list[StreamEvent]:
        """Return the reasoning, answer and tool-call events of one delta (or one whole message)."""
        events: list[StreamEvent] = []
        for name in ("reasoning_content", "reasoning"):
            reasoning = delta.get(name)
            if isinstance(reasoning, str) and reasoning:
                events.append(ReasoningDelta(reasoning))

        content = delta.get("content")
        if isinstance(content, str) and content:
            events += self._think.feed(content)

        tool_calls = delta.get("tool_calls")
        if isinstance(tool_calls, list):
            events += [_read_tool_call(call, position) for position, call in enumerate(tool_calls)]
        function_call = delta.get("function_call")
        if isinstance(function_call, dict):
            events.append(_read_tool_call({"index": 0, "function": function_call}, 0))
        return events

    def _finish(self, reason: str) -> list[StreamEvent]:
        """Close the reader and return the held-back text and StreamFinished."""
        events: list[StreamEvent] = list(self._think.flush())
        events.append(StreamFinished(reason))
        self.done = True
        return events

    def _fail(self, error: SddtuiError) -> list[StreamEvent]:
        """Close the reader as failed and return StreamFailed."""
        self.failed = True
        return [StreamFailed(error)]


def _read_comment(comment: SseComment) -> KeepaliveReceived:
    """Return a keepalive event, with progress when the comment reads `keepalive N/M`."""
    match = _KEEPALIVE_PROGRESS.search(comment.text)
    progress = (int(match[1]), int(match[2])) if match else None
    return KeepaliveReceived(comment=comment.text, progress=progress)


def _first_choice(chunk: dict) -> dict | None:
    """Return the choice with index 0, or None for `choices: []` or a missing list."""
    choices = chunk.get("choices")
    if not isinstance(choices, list):
        return None
    for choice in choices:
        if isinstance(choice, dict) and choice.get("index", 0) == 0:
            return choice
    return None


def _read_tool_call(call: object, position: int) -> ToolCallDelta:
    """Return one streamed tool-call fragment; its index defaults to its place in the list."""
    call = call if isinstance(call, dict) else {}
    function = call.get("function")
    function = function if isinstance(function, dict) else {}
    index = call.get("index")
    arguments = function.get("arguments")
    return ToolCallDelta(
        index=index if isinstance(index, int) else position,
        id=call.get("id") if isinstance(call.get("id"), str) else None,
        name=function.get("name") if isinstance(function.get("name"), str) else None,
        arguments=arguments if isinstance(arguments, str) else "",
    )


def _read_usage_and_timings(chunk: dict) -> list[StreamEvent]:
    """Return UsageReported and TimingsReported for a chunk that carries them."""
    events: list[StreamEvent] = []
    usage = chunk.get("usage")
    if isinstance(usage, dict):
        prompt_tokens = _count(usage.get("prompt_tokens"))
        completion_tokens = _count(usage.get("completion_tokens"))
        total_tokens = _count(usage.get("total_tokens")) or prompt_tokens + completion_tokens
        events.append(UsageReported(prompt_tokens, completion_tokens, total_tokens))

    timings = chunk.get("timings")
    if isinstance(timings, dict):
        values = {
            name: float(value)
            for name, value in timings.items()
            if isinstance(value, int | float) and not isinstance(value, bool)
        }
        events.append(TimingsReported(values))
    return events


def _count(value: object) -> int:
    """Return a token count from a usage field, 0 when it is missing or not a number."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    return 0


def tool_calls_as_answer(tool_calls: dict[int, dict]) -> str | None:
    """Return streamed tool calls as <tool_call> text that the answer parser reads as file blocks.

    `tool_calls` maps each call's index to its joined {"id", "name", "arguments"}. A call whose
    arguments are not a JSON object is left out; None means no call was usable, so the caller
    rejects the answer clearly instead of dropping it. The blocks then pass the same guards and
    review as a fenced file.
    """
    parts = []
    for index in sorted(tool_calls):
        call = tool_calls[index]
        try:
            arguments = json.loads(call.get("arguments") or "")
        except ValueError:
            continue
        if not isinstance(arguments, dict):
            continue
        document = {"name": call.get("name") or "", "arguments": arguments}
        parts.append(f"<tool_call>\n{json.dumps(document, ensure_ascii=False)}\n</tool_call>\n")
    return "".join(parts) or None
