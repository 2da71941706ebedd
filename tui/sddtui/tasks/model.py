"""Provide the Task and Plan models."""

from __future__ import annotations

from datetime import datetime, timezone
from enum import StrEnum

from pydantic import BaseModel, Field


class TaskAction(StrEnum):
    """Whether a task creates its file or modifies an existing one."""

    CREATE = "create"
    MODIFY = "modify"


class TaskState(StrEnum):
    """Where a task is in the review loop."""

    PENDING = "pending"
    RUNNING = "running"
    PROPOSED = "proposed"
    APPLIED = "applied"
    REJECTED = "rejected"
    FAILED = "failed"


class Task(BaseModel):
    """One single-file task: the file, what to do, and the requirements it serves."""

    id: str = Field(description="Short id such as T1, unique in its plan.")
    path: str = Field(description="Target file, relative to the project directory, in POSIX form.")
    action: TaskAction
    requirement_ids: list[str]
    instruction: str = Field(description="One paragraph telling the model what to write.")
    state: TaskState = TaskState.PENDING


class Plan(BaseModel):
    """The tasks for one spec, as saved beside the journal."""

    spec_path: str
    model: str = ""
    spec_sha256: str = Field(default="", description="Hash of the spec text the plan was made from.")
    created_at: str = Field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))
    tasks: list[Task] = Field(default_factory=list)
