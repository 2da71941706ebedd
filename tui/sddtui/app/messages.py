"""Provide the Textual messages that workers post to the workbench screen."""

from __future__ import annotations

from textual.message import Message

from sddtui.events import SessionEvent, UsageUpdated


class SessionConnected(Message):
    """The session is ready: the model server responded or the embedded engine started."""

    def __init__(self, session: object) -> None:
        super().__init__()
        self.session = session


class SessionEventReceived(Message):
    """A session event other than streamed text and usage, in the order the session yielded it."""

    def __init__(self, event: SessionEvent) -> None:
        super().__init__()
        self.event = event


class StreamTextBatched(Message):
    """Answer and reasoning text that arrived during one batching interval."""

    def __init__(self, answer: str, reasoning: str) -> None:
        super().__init__()
        self.answer = answer
        self.reasoning = reasoning


class UsageBatched(Message):
    """The latest token counts; a newer one replaces an older one still in the queue."""

    def __init__(self, usage: UsageUpdated) -> None:
        super().__init__()
        self.usage = usage

    def can_replace(self, message: Message) -> bool:
        """Return True for an older usage message, which this one makes stale."""
        return isinstance(message, UsageBatched)


class TelemetryReceived(Message):
    """A reading of the server's own state (KV usage, memory, speed); a newer one replaces an older one."""

    def __init__(self, sample: object) -> None:
        super().__init__()
        self.sample = sample

    def can_replace(self, message: Message) -> bool:
        """Return True for an older reading, which this one makes stale."""
        return isinstance(message, TelemetryReceived)
