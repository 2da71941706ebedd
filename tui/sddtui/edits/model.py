"""Provide the models for a parsed answer: the file blocks found and the proposal for review."""

from __future__ import annotations

from pydantic import BaseModel, Field

from sddtui.guards.model import Finding


class FileBlock(BaseModel):
    """One whole-file block found in an answer, with the path as the model wrote it."""

    path: str | None = Field(description="The path written before or in the block's opening line; None when none was found.")
    content: str = Field(description="The file's text, without the fences; ends with a newline unless empty.")
    language: str = Field(default="", description="The info string of the opening fence, e.g. 'kotlin'.")
    start_line: int = Field(description="1-based line of the opening fence in the answer.")
    closed: bool = Field(description="False when the answer ended before the block's closing fence.")


class Proposal(BaseModel):
    """A proposed whole-file change to the task's file, ready for review."""

    task_id: str
    path: str = Field(description="Target file relative to the project directory, POSIX form.")
    new_content: str
    old_content: str | None = Field(description="The file on disk when the proposal was made; None when it did not exist.")
    old_sha256: str | None = Field(description="Hash of old_content, checked again just before writing.")
    diff: str = Field(description="Unified diff from old to new.")
    not_applied: list[FileBlock] = Field(default_factory=list, description="Other blocks in the answer, shown but never written.")
    findings: list[Finding] = Field(default_factory=list)

    @property
    def blocking_findings(self) -> list[Finding]:
        """Return the findings that stop this proposal's write (not those about blocks never written)."""
        return [finding for finding in self.findings if finding.severity == "block" and not finding.not_applied]

    @property
    def blocked(self) -> bool:
        """Return True when any finding blocks the write."""
        return bool(self.blocking_findings)
