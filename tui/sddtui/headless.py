"""Run the session loop without the workbench, printing one JSON object per event."""

from __future__ import annotations

import json
from collections.abc import Callable
from enum import StrEnum
from typing import Any, TextIO

from pydantic import BaseModel

from sddtui.events import (
    ErrorOccurred,
    FindingRaised,
    PlanReady,
    PlanRejected,
    ProposalReady,
    SessionDone,
    SessionEvent,
    TaskApplied,
    TaskRejected,
    TaskStarted,
    TextReceived,
    UsageUpdated,
)
from sddtui.session import Session
from sddtui.tasks.model import TaskState


class ApproveMode(StrEnum):
    """Approval mode: the proposals a headless run applies."""

    NONE = "none"
    CLEAN = "clean"
    ALL = "all"


def event_record(event: SessionEvent, lang: str = "en") -> dict[str, Any]:
    """Return the JSON object printed for one session event; its `event` key names the kind."""
    match event:
        case PlanReady(plan=plan):
            return {"event": "plan", "plan": plan.model_dump(mode="json")}
        case PlanRejected(attempt=attempt, reasons=reasons):
            return {"event": "plan_rejected", "attempt": attempt, "reasons": reasons}
        case TaskStarted(task=task, prompt_tokens=prompt_tokens, prompt_tokens_exact=exact, max_tokens=max_tokens, n_ctx=n_ctx):
            return {
                "event": "task_started",
                "task": task.model_dump(mode="json"),
                "prompt_tokens": prompt_tokens,
                "prompt_tokens_exact": exact,
                "max_tokens": max_tokens,
                "n_ctx": n_ctx,
            }
        case TextReceived(text=text, reasoning=reasoning):
            return {"event": "delta", "text": text, "reasoning": reasoning}
        case UsageUpdated():
            return {
                "event": "usage",
                "prompt_tokens": event.prompt_tokens,
                "completion_tokens": event.completion_tokens,
                "reasoning_tokens": event.reasoning_tokens,
                "exact": event.exact,
                "n_ctx": event.n_ctx,
                "tokens_per_second": event.tokens_per_second,
            }
        case ProposalReady(task=task, proposal=proposal):
            return {
                "event": "proposal",
                "task_id": task.id,
                "path": proposal.path,
                "diff": proposal.diff,
                "blocked": proposal.blocked,
                "findings": [finding.model_dump(mode="json") for finding in proposal.findings],
                "not_applied": [block.path for block in proposal.not_applied],
            }
        case FindingRaised(task=task, finding=finding):
            return {"event": "finding", "task_id": task.id, **finding.model_dump(mode="json")}
        case TaskApplied(task=task, path=path, bytes_written=bytes_written):
            return {"event": "applied", "task_id": task.id, "path": path, "bytes": bytes_written}
        case TaskRejected(task=task, reason=reason):
            return {"event": "rejected", "task_id": task.id, "reason": reason}
        case ErrorOccurred(error=error, task=task):
            return {
                "event": "error",
                "task_id": task.id if task else None,
                "key": error.key,
                "message": error.render(lang),
            }
        case SessionDone(applied=applied, rejected=rejected, failed=failed):
            return {"event": "done", "applied": applied, "rejected": rejected, "failed": failed}
    raise TypeError(f"unknown session event {event!r}")


class JsonLinesWriter:
    """Print events as JSON lines, flushing each so a reader sees them as they happen."""

    def __init__(self, stream: TextIO, lang: str) -> None:
        self.stream = stream
        self.lang = lang

    def __call__(self, event: SessionEvent) -> None:
        record = event_record(event, self.lang)
        self.stream.write(json.dumps(record, ensure_ascii=False, default=_json_default) + "\n")
        self.stream.flush()


def _json_default(value: object) -> object:
    """Serialise pydantic models inside records."""
    if isinstance(value, BaseModel):
        return value.model_dump(mode="json")
    return str(value)


async def run_headless(session: Session, mode: ApproveMode, emit: Callable[[SessionEvent], None]) -> int:
    """Plan, then run every task once, deciding by `mode`; return the exit status (1 after any error)."""
    had_error = False
    async for event in session.make_plan():
        emit(event)
        if isinstance(event, ErrorOccurred):
            emit(SessionDone(applied=0, rejected=0, failed=0))
            return 1

    assert session.plan is not None
    for task in session.plan.tasks:
        if task.state in (TaskState.APPLIED, TaskState.REJECTED):
            continue
        proposal = None
        async for event in session.run_task(task):
            emit(event)
            if isinstance(event, ErrorOccurred):
                had_error = True
            elif isinstance(event, ProposalReady):
                proposal = event.proposal
        if proposal is None:
            continue

        decision = await _decide(session, task, proposal, mode)
        emit(decision)
        if isinstance(decision, ErrorOccurred):
            had_error = True

    tasks = session.plan.tasks
    emit(
        SessionDone(
            applied=sum(task.state == TaskState.APPLIED for task in tasks),
            rejected=sum(task.state == TaskState.REJECTED for task in tasks),
            failed=sum(task.state == TaskState.FAILED for task in tasks),
        )
    )
    return 1 if had_error else 0


async def _decide(session: Session, task, proposal, mode: ApproveMode) -> SessionEvent:
    """Approve or reject one proposal according to the approval mode; blocked proposals are always rejected."""
    # A headless rejection is never final: the task stays pending for a later run or the workbench.
    if proposal.blocked:
        return await session.reject(task, proposal, "blocked by findings", final=False)
    if mode is ApproveMode.ALL or (mode is ApproveMode.CLEAN and not proposal.findings):
        return await session.approve(task, proposal)
    reason = "--approve none" if mode is ApproveMode.NONE else "findings need a person's review (--approve clean)"
    return await session.reject(task, proposal, reason, final=False)
