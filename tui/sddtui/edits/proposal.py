"""Build the proposal for a task from a model's answer: the chosen file block, the diff and the findings."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

from pygments.lexers import get_lexer_for_filename
from pygments.util import ClassNotFound

from sddtui.edits.apply import read_text_or_none, resolve_inside, sha256_text
from sddtui.edits.diff import unified_diff
from sddtui.edits.model import FileBlock, Proposal
from sddtui.edits.parse import normalize_path, parse_answer, parse_patches
from sddtui.errors import SddtuiError
from sddtui.guards.model import Finding, Severity
from sddtui.i18n import translate
from sddtui.tasks.model import Task, TaskAction

# Feedback goes back to the model in the prompt of a retry, so it is always English.
_FEEDBACK_LANGUAGE = "en"
# An error that lists the paths an answer named instead of the task's file shows at most this many,
# each cut to this many characters.
_MAX_NAMED_PATHS = 5
_MAX_PATH_CHARS = 60

# Lines of a block not applied that its finding quotes as evidence.
EVIDENCE_LINES = 3


def build_proposal(task: Task, answer: str, project_dir: Path, lang: str = "en") -> Proposal:
    """Choose the block for the task's file in an answer and return it as a proposal with its diff.

    Blocks for other files, patches and extra copies go to `not_applied` and are never written.
    Raises SddtuiError when the answer has no usable block for the task's file. Finding
    messages are in `lang`.
    """
    target = resolve_inside(project_dir, task.path)
    task_path = PurePosixPath(task.path).as_posix()
    blocks = parse_answer(answer)
    patches = parse_patches(answer)

    for_task: list[FileBlock] = []
    for_task_no_changes: list[FileBlock] = []
    without_path: list[FileBlock] = []
    other_files: list[tuple[FileBlock, str, bool]] = []
    for block in blocks:
        if block.path is None:
            without_path.append(block)
            continue
        path, no_changes = normalize_path(block.path)
        if path is not None and _names_task_file(path, task_path, project_dir, target):
            (for_task_no_changes if no_changes else for_task).append(block)
        else:
            other_files.append((block, path or block.path, no_changes))

    other_paths = [path for _, path, _ in other_files]
    chosen = _choose_block(task, for_task, for_task_no_changes, without_path, patches, task_path, other_paths)
    findings: list[Finding] = []
    not_applied: list[FileBlock] = []

    for block, path, no_changes in other_files:
        not_applied.append(block)
        if not no_changes:
            findings.append(_not_applied_finding("other_file", lang, block, path=path, task_path=task_path))
    for block in for_task:
        if block is not chosen:
            not_applied.append(block)
            findings.append(_not_applied_finding("duplicate_block", lang, block, path=task_path))
    not_applied.extend(for_task_no_changes)
    not_applied.extend(block for block in without_path if block is not chosen)
    for patch in patches:
        not_applied.append(patch)
        patch_path = normalize_path(patch.path or "")[0] or "?"
        findings.append(_finding("unsupported_format", Severity.WARN, lang, path=patch_path, line=patch.start_line))
    not_applied.sort(key=lambda block: block.start_line)

    old_content = read_text_or_none(target)
    new_content = _match_line_endings(chosen.content, old_content)
    if not chosen.closed:
        findings.append(_finding("truncated", Severity.BLOCK, lang, path=task_path, line=chosen.start_line))
    if task.action == TaskAction.MODIFY and not new_content.strip():
        findings.append(_finding("empty_file", Severity.BLOCK, lang, path=task_path, line=chosen.start_line))
    if new_content == old_content:
        findings.append(_finding("no_change", Severity.WARN, lang, path=task_path, line=chosen.start_line))

    return Proposal(
        task_id=task.id,
        path=task_path,
        new_content=new_content,
        old_content=old_content,
        old_sha256=None if old_content is None else sha256_text(old_content),
        diff=unified_diff(old_content, new_content, task_path),
        not_applied=not_applied,
        findings=findings,
    )


def _names_task_file(path: str, task_path: str, project_dir: Path, target: Path) -> bool:
    """Return True when a block's path names the task's file.

    Accepted: the same path, its tail from a folder boundary ("Habit.kt" for
    "app/src/Habit.kt"), and an absolute path that resolves to the task's file.
    """
    if path == task_path or task_path.endswith("/" + path):
        return True
    candidate = Path(path)
    if not candidate.is_absolute():
        return False
    try:
        resolved = candidate.resolve()
    except (OSError, RuntimeError):
        return False
    return resolved == target and resolved.is_relative_to(project_dir.resolve())


def _choose_block(
    task: Task,
    for_task: list[FileBlock],
    for_task_no_changes: list[FileBlock],
    without_path: list[FileBlock],
    patches: list[FileBlock],
    task_path: str,
    other_paths: list[str],
) -> FileBlock:
    """Return the block to propose, or raise SddtuiError saying why there is none."""
    if for_task:
        # The first complete copy wins: a later copy is often a repetition in another language.
        return next((block for block in for_task if block.closed), for_task[0])
    if for_task_no_changes:
        raise SddtuiError("answer_no_changes", path=task_path, task_id=task.id)
    if len(without_path) == 1:
        return without_path[0]
    if len(without_path) > 1:
        same_language = [block for block in without_path if _language_fits(block.language, task_path)]
        if len(same_language) == 1:
            return same_language[0]
        raise SddtuiError("answer_ambiguous", path=task_path, count=len(without_path), task_id=task.id)
    if patches:
        raise SddtuiError("answer_patch_only", path=task_path, task_id=task.id)
    if other_paths:
        raise SddtuiError("answer_other_files", path=task_path, task_id=task.id, named=_list_paths(other_paths))
    raise SddtuiError("answer_no_file", path=task_path, task_id=task.id)


def _list_paths(paths: list[str]) -> str:
    """Return the distinct paths, each cut to its last characters, the first few joined by commas."""
    distinct = list(dict.fromkeys(paths))
    shown = [_shorten_path(path) for path in distinct[:_MAX_NAMED_PATHS]]
    hidden = len(distinct) - len(shown)
    listed = ", ".join(shown)
    return f"{listed} (+{hidden})" if hidden else listed


def _shorten_path(path: str) -> str:
    """Return `path` with its start replaced by "…" when it is longer than the limit, keeping the file name."""
    # A model may write a whole sentence where a path belongs; the message must stay one line.
    path = " ".join(path.split())
    if len(path) <= _MAX_PATH_CHARS:
        return path
    return "…" + path[-(_MAX_PATH_CHARS - 1) :]


def _language_fits(language: str, task_path: str) -> bool:
    """Return True when a fence's language is one that Pygments uses for the task's file name."""
    if not language:
        return False
    try:
        lexer = get_lexer_for_filename(task_path)
    except ClassNotFound:
        return False
    return language.lower() in {alias.lower() for alias in lexer.aliases}


def _match_line_endings(content: str, old_content: str | None) -> str:
    """Return the content with the old file's CRLF endings and missing final newline, when it had them.

    A fenced block cannot show either, so the model's answer says nothing about them.
    """
    if old_content is None:
        return content
    line_breaks = old_content.count("\n")
    if line_breaks and old_content.count("\r\n") == line_breaks and "\r" not in content:
        content = content.replace("\n", "\r\n")
    if old_content and not old_content.endswith("\n"):
        if content.endswith("\r\n"):
            content = content[:-2]
        elif content.endswith("\n"):
            content = content[:-1]
    return content


def _not_applied_finding(kind: str, lang: str, block: FileBlock, *, path: str, task_path: str = "") -> Finding:
    """Return a warning about a block that is shown but never written, with its first lines as evidence."""
    finding = _finding(kind, Severity.WARN, lang, path=path, task_path=task_path, line=block.start_line)
    first_lines = "\n".join(block.content.splitlines()[:EVIDENCE_LINES])
    return finding.model_copy(update={"not_applied": True, "evidence": first_lines})


def _finding(kind: str, severity: Severity, lang: str, *, path: str, line: int, task_path: str = "") -> Finding:
    """Return a finding whose message and retry feedback come from the catalogue."""
    params = {"path": path, "task_path": task_path or path}
    return Finding(
        kind=kind,
        severity=severity,
        message=translate(f"finding_{kind}", lang, **params),
        path=path,
        line=line,
        feedback=translate(f"feedback_{kind}", _FEEDBACK_LANGUAGE, **params),
    )
