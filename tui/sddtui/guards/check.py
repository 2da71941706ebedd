"""Run every check of a proposal against the spec, the task and the project."""

from __future__ import annotations

from sddtui.edits.model import Proposal
from sddtui.guards.content import find_elisions, find_encoding_damage
from sddtui.guards.model import Finding
from sddtui.guards.paths import check_paths
from sddtui.guards.scope import check_scope
from sddtui.guards.ui_text import check_ui_text
from sddtui.project import Project
from sddtui.spec.model import Spec
from sddtui.tasks.model import Task


def check_proposal(proposal: Proposal, task: Task, spec: Spec, project: Project, lang: str = "en") -> list[Finding]:
    """Return the guard findings for a proposal built by build_proposal, in the order paths, content, scope.

    The caller adds them to `proposal.findings`; block findings not marked `not_applied` stop
    the write.
    """
    old_content = proposal.old_content
    new_content = proposal.new_content
    findings = check_paths(proposal, task, project, lang)
    findings += find_elisions(new_content, old_content, proposal.path, lang)
    findings += find_encoding_damage(new_content, old_content, proposal.path, lang)
    findings += check_ui_text(old_content, new_content, proposal.path, spec, task, lang)
    findings += check_scope(old_content, new_content, proposal.path, task, spec, lang)
    return findings
