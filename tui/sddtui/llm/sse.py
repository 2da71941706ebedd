"""Decode a server-sent event (SSE) stream incrementally, from bytes in pieces of any size."""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field

# A line ends at CRLF, LF or a lone CR (WHATWG HTML, "Interpreting an event stream").
_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True, slots=True)
class SseEvent:
    """One dispatched event: its type, joined data lines, last event id, retry and any other fields.

    `complete` is False when the stream ended before the blank line that dispatches the event.
    Its last line may then be cut short.
    """

    event: str = "message"
    data: str = ""
    has_data: bool = False
    id: str = ""
    retry: int | None = None
    fields: dict[str, str] = field(default_factory=dict)
    complete: bool = True


@dataclass(frozen=True, slots=True)
class SseComment:
    """A comment line (one starting with a colon), without the colon and one following space."""

    text: str


class SseDecoder:
    """Turn bytes into SseEvent and SseComment values, following the WHATWG event-stream rules.

    Two choices differ from a browser's EventSource. Fields other than data, event, id and retry
    are kept, because older llama-server builds sent an error under a field named `error`. An
    event with such a field, or of type `error`, is dispatched even without data.
    """

    def __init__(self) -> None:
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._at_stream_start = True
        self._skip_lf = False
        self._line_buffer = ""
        self._reset_event()
        self._last_event_id = ""
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[SseEvent | SseComment]:
        """Decode one network read and return the events and comments it completed."""
        return self._read_text(self._utf8.decode(chunk))

    def flush(self) -> list[SseEvent | SseComment]:
        """End the stream and return what was left: a last line without a line end, and an event
        that no blank line dispatched, marked incomplete."""
        output = self._read_text(self._utf8.decode(b"", final=True))
        if self._line_buffer:
            line, self._line_buffer = self._line_buffer, ""
            self._read_line(line, output)
        if self._has_content():
            output.append(self._build_event(complete=False))
        self._reset_event()
        return output

    def _read_text(self, text: str) -> list[SseEvent | SseComment]:
        """Split decoded text into lines and interpret each complete one."""
        output: list[SseEvent | SseComment] = []
        if not text:
            return output

        if self._at_stream_start:
            self._at_stream_start = False
            text = text.removeprefix("\ufeff")

        # A CR that ended the previous read has already ended its line, so an LF right after it
        # belongs to the same line end.
        if self._skip_lf and text.startswith("\n"):
            text = text[1:]
        self._skip_lf = False

        buffer = self._line_buffer + text
        position = 0
        for line_end in _LINE_END.finditer(buffer):
            self._read_line(buffer[position : line_end.start()], output)
            position = line_end.end()
            if line_end.group() == "\r" and position == len(buffer):
                self._skip_lf = True
        self._line_buffer = buffer[position:]
        return output

    def _read_line(self, line: str, output: list[SseEvent | SseComment]) -> None:
        """Apply one line: dispatch on a blank line, record a comment or a field otherwise."""
        if line == "":
            if self._has_content():
                output.append(self._build_event(complete=True))
            self._reset_event()
            return

        if line.startswith(":"):
            output.append(SseComment(line[1:].removeprefix(" ")))
            return

        name, colon, value = line.partition(":")
        if colon:
            value = value.removeprefix(" ")

        if name == "data":
            self._data_lines.append(value)
        elif name == "event":
            self._event_type = value
        elif name == "id":
            if "\0" not in value:
                self._last_event_id = value
        elif name == "retry":
            if value.isascii() and value.isdigit():
                self._retry = int(value)
        elif name in self._other_fields:
            self._other_fields[name] += "\n" + value
        else:
            self._other_fields[name] = value

    def _has_content(self) -> bool:
        """Return whether the pending event has anything worth dispatching."""
        return bool(self._data_lines or self._other_fields or self._event_type == "error")

    def _build_event(self, *, complete: bool) -> SseEvent:
        """Return the pending event as an SseEvent."""
        return SseEvent(
            event=self._event_type or "message",
            data="\n".join(self._data_lines),
            has_data=bool(self._data_lines),
            id=self._last_event_id,
            retry=self._retry,
            fields=dict(self._other_fields),
            complete=complete,
        )

    def _reset_event(self) -> None:
        """Clear the per-event buffers, keeping the last event id and retry as the standard does."""
        self._data_lines: list[str] = []
        self._event_type = ""
        self._other_fields: dict[str, str] = {}
