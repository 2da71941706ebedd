"""Build the model's planning request (JSON schema and messages) and validate the plan it returns."""

from __future__ import annotations

import json
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from pydantic import ValidationError

from sddtui.errors import SddtuiError
from sddtui.i18n import join_sentences
from sddtui.project import Project, normalize_relative_path
from sddtui.spec.model import Spec
from sddtui.spec.parse import require_plannable, source_extensions
from sddtui.tasks.model import Plan, Task, TaskAction
from sddtui.tasks.prompt import LANGUAGE_NAMES, architecture_lines, spec_language

MAX_TASKS = 8
MAX_INSTRUCTION_CHARS = 600
MAX_EXISTING_FILES_SHOWN = 40

MAX_SUBFOLDERS = 5
MAX_SEGMENT_CHARS = 64

# One path segment: letters, digits, "_", "-" and inner dots. It cannot start with a dot, so ".."
# and hidden files cannot match. Written without "(?:" because llama.cpp's schema-to-grammar
# converter rejects non-capturing groups, and "-" sits last in the class so GBNF reads it literally.
# The bounds stop a small model that repeats folder names under constrained decoding.
_SEGMENT = f"[A-Za-z0-9_][A-Za-z0-9_.-]{{0,{MAX_SEGMENT_CHARS - 1}}}"


class PlanInvalid(Exception):
    """A rejected plan, with reasons as short English sentences that a retry sends back to the model."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = reasons
        super().__init__(join_sentences(reasons))


def _regex_literal(text: str) -> str:
    """Return `text` as a regex literal that llama.cpp's schema-to-grammar converters read alike.

    A dot becomes "[.]" rather than "\\." because some converter versions copy "\\." into the
    grammar string, where GBNF does not accept it.
    """
    escaped = re.sub(r"([\\^$|?*+()\[\]{}])", r"\\\1", text)
    return escaped.replace(".", "[.]")


def path_pattern(project: Project, extensions: Sequence[str]) -> str:
    """Return an anchored regex matching a file path inside the allowed roots with one of `extensions`."""
    roots = [root for root in project.allowed_roots if root != "."]
    suffix = "(" + "|".join(_regex_literal(extension) for extension in extensions) + ")"
    tail = f"({_SEGMENT}/){{0,{MAX_SUBFOLDERS}}}{_SEGMENT}{suffix}"
    if "." in project.allowed_roots or not roots:
        return f"^{tail}$"
    prefix = "(" + "|".join(_regex_literal(root) for root in roots) + ")"
    return f"^{prefix}/{tail}$"


def plan_schema(spec: Spec, project: Project) -> dict:
    """Return the JSON schema of a plan for `spec`, limited to the MVP ids, allowed roots and file extension."""
    require_plannable(spec)
    task_schema = {
        "type": "object",
        "properties": {
            "path": {"type": "string", "pattern": path_pattern(project, source_extensions(spec.architecture.language))},
            "action": {"type": "string", "enum": [action.value for action in TaskAction]},
            "requirement_ids": {
                "type": "array",
                "items": {"type": "string", "enum": list(spec.mvp_ids)},
                "minItems": 1,
                "maxItems": len(spec.mvp_ids),
            },
            "instruction": {"type": "string", "minLength": 1, "maxLength": MAX_INSTRUCTION_CHARS},
        },
        "required": ["path", "action", "requirement_ids", "instruction"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "properties": {"tasks": {"type": "array", "items": task_schema, "minItems": 1, "maxItems": MAX_TASKS}},
        "required": ["tasks"],
        "additionalProperties": False,
    }


def plan_messages(spec: Spec, project: Project, existing_files: list[str], feedback: list[str]) -> list[dict]:
    """Return the system and user chat messages that ask the model for a plan of `spec`."""
    extensions = " or ".join(source_extensions(spec.architecture.language))
    system = (
        "You split a software spec into small coding tasks. Reply with one JSON object and nothing else:\n"
        '{"tasks": [{"path": "...", "action": "create" or "modify", "requirement_ids": ["..."], "instruction": "..."}]}\n'
        "Rules:\n"
        f"- 1 to {MAX_TASKS} tasks. Each task changes exactly one file; give the file's full path.\n"
        f"- A path is one allowed folder below, a slash and a file name ending in {extensions}.\n"
        "- Plan only the MVP requirements listed below. Nothing else.\n"
        "- action: \"modify\" if the file is in the existing files list, else \"create\".\n"
        f"- instruction: one short, precise paragraph (under {MAX_INSTRUCTION_CHARS} characters) saying what to write in that file.\n"
        "- Respect every constraint."
    )

    lines = []
    if spec.objective:
        lines += ["Objective:", spec.objective, ""]
    lines.append("MVP requirements:")
    requirement_text = {requirement.id: requirement.text for requirement in spec.requirements}
    lines += [f"- {requirement_id}: {requirement_text.get(requirement_id, '')}" for requirement_id in spec.mvp_ids]
    if spec.prohibitions:
        lines += ["", "The user cannot:"] + [f"- {item}" for item in spec.prohibitions]
    if spec.constraints:
        lines += ["", "Constraints:"] + [f"- {item}" for item in spec.constraints]
    lines += ["", *architecture_lines(spec)]

    lines += ["", "Allowed folders:"]
    for root in project.allowed_roots:
        kinds = [name for name, roots in (("source", project.source_roots), ("tests", project.test_roots)) if root in roots]
        lines.append(f"- {root} ({', '.join(kinds)})")

    shown = existing_files[:MAX_EXISTING_FILES_SHOWN]
    lines += ["", "Existing files:"] + ([f"- {path}" for path in shown] or ["- none"])
    if len(existing_files) > len(shown):
        lines.append(f"- ... and {len(existing_files) - len(shown)} more")

    if feedback:
        lines += ["", "Your previous plan was rejected. Fix these problems:"] + [f"- {reason}" for reason in feedback]
    lines += ["", f"Write the instructions in {LANGUAGE_NAMES[spec_language(spec)]}. Reply with the JSON object only."]
    return [{"role": "system", "content": system}, {"role": "user", "content": "\n".join(lines)}]


# ---------------------------------------------------------------------------------------------
# Validating the response


def extract_json(text: str) -> object:
    """Return the JSON value in a model's response: the whole text, a ```json fence, or the outermost {...}.

    Raises ValueError when none of these parses.
    """
    candidates = [text.strip()]
    candidates += [match.group(1) for match in re.finditer(r"```[A-Za-z]*[ \t]*\n(.*?)```", text, re.S)]
    start, end = text.find("{"), text.rfind("}")
    if 0 <= start < end:
        candidates.append(text[start : end + 1])
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    raise ValueError("no JSON object found")


def parse_plan(
    text: str,
    spec: Spec,
    project: Project,
    exists: Callable[[str], bool] | None = None,
    model: str = "",
) -> Plan:
    """Return the Plan in a model's response, raising PlanInvalid with every reason it cannot be used.

    `exists(rel_path)` tells whether a file is on disk now (default: inside `project.directory`). It
    sets each task's action, whatever the model wrote.
    """
    try:
        data = extract_json(text)
    except ValueError as error:
        raise PlanInvalid(['Your reply is not JSON. Reply with one JSON object: {"tasks": [...]}.']) from error
    if not isinstance(data, dict) or not isinstance(data.get("tasks"), list):
        raise PlanInvalid(['Your reply must be a JSON object with a "tasks" array.'])
    return plan_from_items(data["tasks"], spec, project, exists, model)


def plan_from_items(
    items: list,
    spec: Spec,
    project: Project,
    exists: Callable[[str], bool] | None = None,
    model: str = "",
) -> Plan:
    """Return a Plan from task objects (a model's or an edited plan's), raising PlanInvalid on any fault."""
    if exists is None:
        exists = lambda rel_path: (project.directory / rel_path).is_file()  # noqa: E731

    reasons: list[str] = []
    if not items:
        raise PlanInvalid(["The plan has no tasks. Give at least one task."])
    if len(items) > MAX_TASKS:
        reasons.append(f"The plan has {len(items)} tasks; give at most {MAX_TASKS}.")

    tasks: list[Task] = []
    created_by: dict[str, str] = {}
    for number, item in enumerate(items, start=1):
        task_id = f"T{number}"
        task, task_reasons = _check_task(task_id, item, spec, project)
        reasons += task_reasons
        if task is None:
            continue
        task.action = TaskAction.MODIFY if exists(task.path) else TaskAction.CREATE
        if task.action is TaskAction.CREATE and task.path in created_by:
            reasons.append(f"Tasks {created_by[task.path]} and {task_id} both create {task.path}; merge them into one task.")
        created_by.setdefault(task.path, task_id)
        tasks.append(task)

    if reasons:
        raise PlanInvalid(list(dict.fromkeys(reasons)))
    return Plan(spec_path=str(spec.path), model=model, tasks=tasks)


def _check_task(task_id: str, item: object, spec: Spec, project: Project) -> tuple[Task | None, list[str]]:
    """Return the Task for one plan item and the reasons it is invalid (the task is None when there are any)."""
    if not isinstance(item, dict):
        return None, [f"Task {task_id} must be a JSON object with path, action, requirement_ids and instruction."]

    path, reasons = _check_path(task_id, item.get("path"), spec, project)

    action = item.get("action", TaskAction.CREATE.value)
    if action not in [value.value for value in TaskAction]:
        reasons.append(f'Task {task_id} has action {action!r}; use "create" or "modify".')

    requirement_ids, requirement_reasons = _requirement_ids(task_id, item.get("requirement_ids"), spec)
    reasons += requirement_reasons

    instruction = item.get("instruction")
    if not isinstance(instruction, str) or not instruction.strip():
        reasons.append(f"Task {task_id} has an empty instruction; write one short paragraph.")
    elif len(instruction.strip()) > MAX_INSTRUCTION_CHARS:
        reasons.append(f"Task {task_id}'s instruction is {len(instruction.strip())} characters; keep it under {MAX_INSTRUCTION_CHARS}.")

    if reasons:
        return None, reasons
    task = Task(
        id=task_id,
        path=path,
        action=TaskAction.CREATE,
        requirement_ids=requirement_ids,
        instruction=str(instruction).strip(),
    )
    return task, []


def _check_path(task_id: str, raw_path: object, spec: Spec, project: Project) -> tuple[str, list[str]]:
    """Return the normalised path of a task and why it is not one file in the allowed roots with the right extension."""
    roots = ", ".join(project.allowed_roots)
    if isinstance(raw_path, list):
        return "", [f"Task {task_id} names {len(raw_path)} files; give each file its own task."]
    if not isinstance(raw_path, str) or not raw_path.strip():
        return "", [f"Task {task_id} has no path; give one file path inside {roots}."]

    text = raw_path.strip().strip("`'\"")
    if re.search(r"[,;\s]", text):
        return "", [f"Task {task_id} path {raw_path!r} names more than one file or contains spaces; give each file its own task."]
    try:
        path = normalize_relative_path(text)
    except ValueError as error:
        return "", [f"Task {task_id} path is invalid: {error}. Use a path relative to the project, inside {roots}."]

    if path in project.allowed_roots:
        return "", [f"Task {task_id} path {path} is a folder; name one file inside it."]
    if not project.is_allowed(path):
        return "", [f"Task {task_id} path {path} is outside the allowed folders; use a path inside {roots}."]
    root = project.root_of(path) or "."
    below_root = path.split("/") if root == "." else path[len(root) + 1 :].split("/")
    # The schema's pattern bounds the file name without its extension, so the check does the same.
    file_stem = below_root[-1].rsplit(".", 1)[0] if "." in below_root[-1] else below_root[-1]
    segments = [*below_root[:-1], file_stem]
    if len(below_root) - 1 > MAX_SUBFOLDERS or max(len(part) for part in segments) > MAX_SEGMENT_CHARS:
        return "", [
            f"Task {task_id} path {path} is too deep or has a name over {MAX_SEGMENT_CHARS} characters; "
            f"use at most {MAX_SUBFOLDERS} folders below {root}."
        ]
    extensions = source_extensions(spec.architecture.language)
    if extensions and not path.endswith(extensions):
        wanted = " or ".join(extensions)
        return "", [f"Task {task_id} path {path} does not end in {wanted}; this project is written in {spec.architecture.language}."]
    return path, []


def _requirement_ids(task_id: str, raw_ids: object, spec: Spec) -> tuple[list[str], list[str]]:
    """Return the task's requirement ids in the spec's spelling and the reasons any are invalid."""
    if isinstance(raw_ids, str):
        raw_ids = [raw_ids]
    if not isinstance(raw_ids, list) or not raw_ids:
        return [], [f"Task {task_id} names no requirement; list the MVP ids it serves: {', '.join(spec.mvp_ids)}."]

    known = {requirement.id.upper(): requirement.id for requirement in spec.requirements}
    mvp = {requirement_id.upper() for requirement_id in spec.mvp_ids}
    ids: list[str] = []
    reasons: list[str] = []
    for raw_id in raw_ids:
        key = str(raw_id).strip().upper()
        if key not in known and key not in mvp:
            reasons.append(f"Task {task_id} names {raw_id!r}, which is not a requirement of this spec.")
        elif key not in mvp:
            reasons.append(f"Task {task_id} names {known[key]}, which is outside the MVP; plan only {', '.join(spec.mvp_ids)}.")
        elif (canonical := known.get(key, key)) not in ids:
            ids.append(canonical)
    return ids, reasons


# ---------------------------------------------------------------------------------------------
# Plan file


def save_plan(plan: Plan, path: Path) -> None:
    """Write `plan` as JSON to `path` atomically (a temporary file in the same folder, then os.replace)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as error:
        raise SddtuiError("tasks.plan_unwritable", path=path, reason=error.strerror or str(error)) from error
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            handle.write(plan.model_dump_json(indent=2))
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as error:
        Path(temporary).unlink(missing_ok=True)
        raise SddtuiError("tasks.plan_unwritable", path=path, reason=error.strerror or str(error)) from error
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_plan(path: Path) -> Plan:
    """Read a plan file written by save_plan, raising SddtuiError when it is missing or invalid."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise SddtuiError("tasks.plan_missing", path=path) from error
    except (OSError, UnicodeDecodeError) as error:
        raise SddtuiError("tasks.plan_unreadable", path=path, reason=str(error)) from error
    try:
        return Plan.model_validate_json(text)
    except ValidationError as error:
        first = error.errors()[0]
        reason = f"{'.'.join(str(part) for part in first['loc']) or 'document'}: {first['msg']}"
        raise SddtuiError("tasks.plan_invalid", path=path, reason=reason) from error
