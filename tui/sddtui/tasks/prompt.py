"""Assemble the chat messages that ask a model to write the one file of one task."""

from __future__ import annotations

import re
from collections.abc import Sequence

from sddtui.project import Project
from sddtui.spec.model import Spec
from sddtui.spec.parse import canonical_language
from sddtui.tasks.model import Task, TaskAction

LANGUAGE_NAMES = {"en": "English", "ja": "Japanese"}

# Share of Japanese characters among all letters above which a spec counts as written in Japanese.
# NOTE: the value 0.3 is an estimate. It is below 0.5 because Japanese needs fewer characters than
# English for the same sentence, and Japanese specs still write ids, names and paths in Latin letters.
JAPANESE_SHARE = 0.3

_JAPANESE_CHARACTER = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uff66-\uff9f]")
_LATIN_LETTER = re.compile(r"[A-Za-z]")
_FENCE_TAGS = {"c++": "cpp", "c#": "csharp", "objective-c": "objectivec"}


def spec_language(spec: Spec) -> str:
    """Return "ja" when the spec's prose is mostly Japanese, else "en", not counting code, paths and URLs."""
    prose = re.sub(r"```.*?```|~~~.*?~~~", " ", spec.text, flags=re.S)
    prose = re.sub(r"`[^`\n]*`|https?://\S+", " ", prose)
    japanese = len(_JAPANESE_CHARACTER.findall(prose))
    latin = len(_LATIN_LETTER.findall(prose))
    if japanese == 0:
        return "en"
    return "ja" if japanese / (japanese + latin) > JAPANESE_SHARE else "en"


def architecture_lines(spec: Spec) -> list[str]:
    """Return the architecture facts of `spec` that a plan or a task needs, one "Label: value" per line."""
    architecture = spec.architecture
    facts = [
        ("Platform", architecture.platform),
        ("Language", architecture.language),
        ("Package", architecture.package),
        ("Minimum SDK", architecture.min_sdk),
        ("Build configuration language", architecture.build_language),
    ]
    return [f"{label}: {value}" for label, value in facts if value]


def file_package(spec: Spec, project: Project, path: str) -> str | None:
    """Return the package of a Kotlin or Java file from its folder, when its root ends in the spec's package."""
    package = spec.architecture.package
    if not package or canonical_language(spec.architecture.language) not in ("kotlin", "java"):
        return None
    root = project.root_of(path)
    package_folder = package.replace(".", "/")
    if root is None or not (root == package_folder or root.endswith("/" + package_folder)):
        return None
    subfolders = path[len(root) + 1 :].split("/")[:-1]
    return ".".join([package, *subfolders])


def fence_tag(spec: Spec) -> str:
    """Return the info string for a fenced block in the spec's language, such as "kotlin"."""
    name = canonical_language(spec.architecture.language) or ""
    return _FENCE_TAGS.get(name, name)


def _fenced(content: str, tag: str) -> str:
    """Return `content` in a fence longer than any backtick run inside it."""
    longest = max((len(run) for run in re.findall(r"`+", content)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{tag}\n{content.rstrip(chr(10))}\n{fence}"


def task_messages(
    spec: Spec,
    project: Project,
    task: Task,
    current_content: str | None,
    note: str = "",
    feedback: Sequence[str] = (),
) -> list[dict]:
    """Return the system and user chat messages asking for the complete file of `task`."""
    language = LANGUAGE_NAMES[spec_language(spec)]
    tag = fence_tag(spec)
    system = (
        "You write exactly one source file for one task of a software project.\n"
        "Answer format: the complete file in ONE fenced code block, in three parts and nothing else:\n"
        f"1. a line with the path: {task.path}\n"
        f"2. a line with ```{tag}, then every line of the file's source code\n"
        "3. a line with ``` that closes the block.\n"
        "Write nothing before or after it. Answer once and stop: never repeat the file.\n"
        "Write the whole file, with no placeholders such as \"rest unchanged\".\n"
        f"Write comments and any user-visible text in {language} only; never add a second version in another language.\n"
        "Do only what the task asks. Keep existing code and UI text unless the task says to change them."
    )

    requirement_text = {requirement.id: requirement.text for requirement in spec.requirements}
    action = "Create" if task.action is TaskAction.CREATE else "Modify"
    lines = [f"Task {task.id}: {action} {task.path}", task.instruction, ""]

    package = file_package(spec, project, task.path)
    root = project.root_of(task.path)
    if package:
        lines.append(f"Package of this file: {package}")
    if root is not None and root in project.test_roots and root not in project.source_roots:
        lines.append("This file is a test.")

    lines.append("Requirements served:")
    lines += [f"- {requirement_id}: {requirement_text.get(requirement_id, '')}" for requirement_id in task.requirement_ids]
    if spec.prohibitions:
        lines += ["", "The user cannot (do not implement):"] + [f"- {item}" for item in spec.prohibitions]
    if spec.constraints:
        lines += ["", "Constraints:"] + [f"- {item}" for item in spec.constraints]
    if spec.objective:
        lines += ["", f"Objective of the product: {spec.objective}"]
    lines += ["", *architecture_lines(spec)]

    lines.append("")
    if current_content is None:
        lines.append(f"{task.path} does not exist yet.")
    else:
        lines += [f"Current content of {task.path}:", _fenced(current_content, tag)]

    if note.strip():
        lines += ["", f"Note from the developer: {note.strip()}"]
    if feedback:
        lines += ["", "Your previous answer was rejected. Fix these problems:"] + [f"- {reason}" for reason in feedback]
    lines += ["", f"Now reply with {task.path} on one line and the complete file in one fenced block, once, in {language}."]
    return [{"role": "system", "content": system}, {"role": "user", "content": "\n".join(lines)}]
