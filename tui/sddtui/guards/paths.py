"""Check every path in an answer against the project and its allowed roots."""

from __future__ import annotations

import os
from pathlib import Path, PurePosixPath

from sddtui.edits.apply import resolve_inside
from sddtui.edits.model import FileBlock, Proposal
from sddtui.edits.parse import normalize_path
from sddtui.errors import SddtuiError
from sddtui.guards.findings import guard_finding
from sddtui.guards.model import Finding, Severity
from sddtui.project import Project
from sddtui.tasks.model import Task

# The SddtuiError keys of resolve_inside, mapped to the finding kind each becomes.
_RESOLVE_ERROR_KINDS = {
    "path_parent": "path_parent",
    "path_absolute": "path_absolute",
    "path_symlink_escape": "path_symlink_escape",
    "path_nul": "path_absolute",
    "path_is_project": "path_outside_roots",
}


def check_paths(proposal: Proposal, task: Task, project: Project, lang: str = "en") -> list[Finding]:
    """Return path findings for the task's own file and for every other block in the answer.

    The task's file must resolve inside the project, lie in an allowed root and not differ only in
    case from an existing file; each failure blocks the edit. A block for any other path is never
    written, and a path that escapes the project or its roots gets a block finding marked
    `not_applied`, so that the task's edit stays approvable.
    """
    findings: list[Finding] = []
    own = _classify(task.path, project)
    if own is not None:
        kind, detail = own
        findings.append(guard_finding(kind, Severity.BLOCK, lang, path=task.path, evidence=task.path, detail=detail))

    for block in proposal.not_applied:
        finding = _check_block(block, project, lang)
        if finding is not None:
            findings.append(finding)
    return findings


def _check_block(block: FileBlock, project: Project, lang: str) -> Finding | None:
    """Return the block finding for a not-applied block whose path escapes, or None."""
    if block.path is None:
        return None
    path, no_changes = normalize_path(block.path)
    if path is None or no_changes:
        return None

    outcome = _classify(path, project)
    if outcome is None:
        return None
    kind, detail = outcome
    return guard_finding(
        kind,
        Severity.BLOCK,
        lang,
        path=path,
        line=block.start_line,
        evidence=block.path,
        not_applied=True,
        detail=detail,
    )


def _classify(path: str, project: Project) -> tuple[str, str] | None:
    """Return (kind, detail) when `path` may not be written in this project, else None.

    An absolute path that resolves inside the project is judged by its relative form.
    """
    directory = project.directory.resolve()
    relative = path.replace("\\", "/")
    if PurePosixPath(relative).is_absolute():
        try:
            resolved = Path(os.path.normpath(relative)).resolve()
        except (OSError, RuntimeError):
            return "path_absolute", relative
        if not resolved.is_relative_to(directory) or resolved == directory:
            return "path_absolute", str(resolved)
        relative = resolved.relative_to(directory).as_posix()

    try:
        resolve_inside(directory, relative)
    except SddtuiError as error:
        kind = _RESOLVE_ERROR_KINDS.get(error.key, "path_absolute")
        return kind, str(error.params.get("target", relative))

    if not project.is_allowed(relative):
        return "path_outside_roots", ", ".join(project.allowed_roots) or "-"
    existing = case_variant(directory, relative)
    if existing is not None:
        return "path_case", existing
    return None


def case_variant(directory: Path, relative: str) -> str | None:
    """Return the existing path that differs from `relative` only in letter case, or None.

    Each component is compared with its folder's entries, so a folder named in another case
    counts too. Writing such a path replaces the other file on a case-insensitive file system
    and creates a confusing twin on a case-sensitive one.
    """
    folder = directory
    actual_parts: list[str] = []
    differs = False
    for part in PurePosixPath(relative).parts:
        exact = folder / part
        if exact.exists() and part in _entries(folder):
            actual_parts.append(part)
            folder = exact
            continue
        match = next((name for name in _entries(folder) if name.casefold() == part.casefold()), None)
        if match is None:
            return None
        differs = True
        actual_parts.append(match)
        folder = folder / match
    return "/".join(actual_parts) if differs else None


def _entries(folder: Path) -> list[str]:
    """Return the names in a folder, or none when it cannot be listed."""
    try:
        return os.listdir(folder)
    except OSError:
        return []
