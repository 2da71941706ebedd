"""Provide the events a Session yields; the workbench and the headless runner both consume them."""

from __future__ import annotations

from dataclasses import dataclass

from sddtui.edits.model import Proposal
from sddtui.errors import SddtuiError
from sddtui.guards.model import Finding
from sddtui.tasks.model import Plan, Task


@dataclass(frozen=True, slots=True)
class PlanReady:
    """The plan was made (or loaded) and validated."""

    plan: Plan


@dataclass(frozen=True, slots=True)
class PlanRejected:
    """The model proposed an invalid plan; the reasons are sent back with the next attempt."""

    attempt: int
    reasons: list[str]


@dataclass(frozen=True, slots=True)
class TaskStarted:
    """A task's prompt is about to be sent."""

    task: Task
    prompt_tokens: int
    prompt_tokens_exact: bool
    max_tokens: int
    n_ctx: int | None


@dataclass(frozen=True, slots=True)
class TextReceived:
    """Answer text (or reasoning, when `reasoning` is True) that arrived for the running task."""

    text: str
    reasoning: bool = False


@dataclass(frozen=True, slots=True)
class UsageUpdated:
    """Token counts for the running task: exact when the server reported them."""

    prompt_tokens: int
    completion_tokens: int
    reasoning_tokens: int
    exact: bool
    n_ctx: int | None
    tokens_per_second: float | None
    memory_bytes: int | None = None
    """Bytes the model and its KV cache take now, by the memory plan."""
    memory_bytes_at_cap: int | None = None
    """Bytes they would take if the answer ran to max_tokens."""
    budget_bytes: int | None = None
    """The memory budget those bytes are held to."""
    level: str = "safe"
    """Gauge level from the tighter of context and memory: safe, warning or danger."""


@dataclass(frozen=True, slots=True)
class ProposalReady:
    """A proposal was parsed from the answer and waits for a decision."""

    task: Task
    proposal: Proposal


@dataclass(frozen=True, slots=True)
class FindingRaised:
    """A check found something wrong with the answer."""

    task: Task
    finding: Finding


@dataclass(frozen=True, slots=True)
class TaskApplied:
    """The approved file was written."""

    task: Task
    path: str
    bytes_written: int


@dataclass(frozen=True, slots=True)
class TaskRejected:
    """The user (or the approval mode) rejected the proposal."""

    task: Task
    reason: str


@dataclass(frozen=True, slots=True)
class ErrorOccurred:
    """Something failed. The error's message states what failed and what to do next."""

    error: SddtuiError
    task: Task | None = None


@dataclass(frozen=True, slots=True)
class SessionDone:
    """Every task has a decision, or the run stopped."""

    applied: int
    rejected: int
    failed: int


SessionEvent = (
    PlanReady
    | PlanRejected
    | TaskStarted
    | TextReceived
    | UsageUpdated
    | ProposalReady
    | FindingRaised
    | TaskApplied
    | TaskRejected
    | ErrorOccurred
    | SessionDone
)
