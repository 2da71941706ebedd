"""Relay a session's event stream as messages, batching text and usage by time."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import suppress

from textual.message import Message

from sddtui.events import SessionEvent, TextReceived, UsageUpdated
from sddtui.app.messages import SessionEventReceived, StreamTextBatched, UsageBatched

BATCH_INTERVAL = 1 / 30


class StreamBatcher:
    """Collect text and usage between flushes so the screen gets one message per interval."""

    def __init__(self, post: Callable[[Message], object], interval: float = BATCH_INTERVAL) -> None:
        self._post = post
        self._interval = interval
        self._answer: list[str] = []
        self._reasoning: list[str] = []
        self._usage: UsageUpdated | None = None
        self._last_flush = time.monotonic()

    def add(self, event: TextReceived | UsageUpdated) -> None:
        """Buffer one text or usage event."""
        if isinstance(event, UsageUpdated):
            self._usage = event
        elif event.reasoning:
            self._reasoning.append(event.text)
        else:
            self._answer.append(event.text)

    def seconds_until_due(self) -> float | None:
        """Return how long the buffer may wait before a flush, or None when it is empty."""
        if not (self._answer or self._reasoning or self._usage):
            return None
        return max(0.0, self._last_flush + self._interval - time.monotonic())

    def flush(self) -> None:
        """Post what is buffered, text before usage, and empty the buffer."""
        if self._answer or self._reasoning:
            self._post(StreamTextBatched("".join(self._answer), "".join(self._reasoning)))
            self._answer.clear()
            self._reasoning.clear()
        if self._usage is not None:
            self._post(UsageBatched(self._usage))
            self._usage = None
        self._last_flush = time.monotonic()


async def relay_events(
    events: AsyncIterator[SessionEvent],
    post: Callable[[Message], object],
    interval: float = BATCH_INTERVAL,
) -> None:
    """Post every event of `events`, with text and usage batched by `interval` seconds.

    A buffered batch is flushed on time even while the stream is stalled, and before any other
    event so the screen receives events in the order the session yielded them.
    """
    batcher = StreamBatcher(post, interval)
    iterator = aiter(events)
    next_event: asyncio.Future[SessionEvent] = asyncio.ensure_future(anext(iterator))
    try:
        while True:
            done, _ = await asyncio.wait({next_event}, timeout=batcher.seconds_until_due())
            if not done:
                batcher.flush()
                continue

            try:
                event = next_event.result()
            except StopAsyncIteration:
                break
            if isinstance(event, (TextReceived, UsageUpdated)):
                batcher.add(event)
                if batcher.seconds_until_due() == 0.0:
                    batcher.flush()
            else:
                batcher.flush()
                post(SessionEventReceived(event))
            next_event = asyncio.ensure_future(anext(iterator))
    finally:
        batcher.flush()
        if next_event.done():
            if not next_event.cancelled():
                next_event.exception()  # marks the end of the stream (or a raised error) as retrieved
        else:
            next_event.cancel()
            with suppress(asyncio.CancelledError, StopAsyncIteration):
                await next_event
        aclose = getattr(iterator, "aclose", None)
        if aclose is not None:
            await aclose()
