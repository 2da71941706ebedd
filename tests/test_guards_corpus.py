"""Run the corpus of misbehaving answers through build_proposal and the guards, and compare the findings."""

from __future__ import annotations

import os
import tomllib
from collections import Counter
from pathlib import Path

import pytest

from sddtui.edits.proposal import build_proposal
from sddtui.guards.check import check_proposal
from sddtui.guards.model import blocks_write
from sddtui.project import Project, resolve_project
from sddtui.spec.model import Spec
from sddtui.spec.parse import load_spec
from sddtui.tasks.model import Task, TaskAction

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_CASES = REPO_ROOT.parent / "shared" / "cases"
CORPUS = Path(__file__).resolve().parent / "corpus" / "answers"
CASES = sorted(CORPUS.glob("*.toml"))


def load_case(path: Path) -> dict:
    """Read one corpus case."""
    with path.open("rb") as handle:
        return tomllib.load(handle)


def case_spec(case: dict) -> Spec:
    """Return the spec a case names: the habit spec (forbids UI text changes) or a plain one."""
    if case["spec"] == "habit":
        return load_spec(REPO_ROOT / "specs" / "habit.md")
    return Spec(path=Path("spec.md"), text="Build a small habit tracker.", source_roots=["src"])


def make_project(case: dict, spec: Spec, tmp_path: Path) -> Project:
    """Create the case's project folder, files and symlinks, and return its Project."""
    directory = tmp_path / "project"
    directory.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    for relative, content in case.get("files", {}).items():
        target = directory / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content, encoding="utf-8")
    if "original_shared" in case:
        target = directory / case["task"]["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text((SHARED_CASES / case["original_shared"]).read_text(encoding="utf-8"), encoding="utf-8")
    for link, target_name in case.get("symlinks", {}).items():
        link_path = directory / link
        link_path.parent.mkdir(parents=True, exist_ok=True)
        os.symlink(tmp_path / target_name, link_path)

    if "roots" in case:
        return Project(directory=directory, allowed_roots=case["roots"], source_roots=case["roots"], origin="flag")
    return resolve_project(spec, directory, directory)


def case_answer(case: dict) -> str:
    """Return the case's answer text, inline or from the shared failure cases."""
    if "answer_shared" in case:
        return (SHARED_CASES / case["answer_shared"]).read_text(encoding="utf-8")
    return case["answer"]


def finding_keys(findings) -> Counter:
    return Counter((finding.kind, str(finding.severity), finding.not_applied) for finding in findings)


@pytest.mark.parametrize("case_path", CASES, ids=[path.stem for path in CASES])
def test_corpus_case(case_path, tmp_path):
    case = load_case(case_path)
    spec = case_spec(case)
    project = make_project(case, spec, tmp_path)
    task_fields = case["task"]
    task = Task(
        id="T1",
        path=task_fields["path"],
        action=TaskAction(task_fields["action"]),
        requirement_ids=["FUNC-1"],
        instruction=task_fields["instruction"],
    )

    proposal = build_proposal(task, case_answer(case), project.directory)
    findings = proposal.findings + check_proposal(proposal, task, spec, project)

    expected = Counter(
        (item["kind"], item["severity"], item.get("not_applied", False)) for item in case.get("expected", [])
    )
    assert finding_keys(findings) == expected, [finding.message for finding in findings]
    assert blocks_write(findings) is case["blocked"]
    if "new_content" in case:
        assert proposal.new_content == case["new_content"]


@pytest.mark.parametrize("case_path", CASES, ids=[path.stem for path in CASES])
def test_corpus_findings_explain_themselves(case_path, tmp_path):
    case = load_case(case_path)
    spec = case_spec(case)
    project = make_project(case, spec, tmp_path)
    task = Task(id="T1", path=case["task"]["path"], action=TaskAction(case["task"]["action"]),
                requirement_ids=["FUNC-1"], instruction=case["task"]["instruction"])

    proposal = build_proposal(task, case_answer(case), project.directory)
    for finding in check_proposal(proposal, task, spec, project, lang="ja"):
        assert finding.message
        assert finding.feedback
        assert finding.evidence or finding.kind.startswith("path_") or finding.kind == "large_deletion"
        assert finding.feedback.isascii() or finding.kind in {"elided_code", "encoding_damage", "control_character", "stream_repetition"}


def test_every_shared_output_case_has_a_corpus_entry(shared_cases):
    used = {load_case(path).get("answer_shared") for path in CASES}
    used |= {load_case(path).get("original_shared") for path in CASES}
    outputs = {f"outputs/{path.name}" for path in (shared_cases / "outputs").iterdir()}
    assert outputs - used == set()
