"""Provide the centre pane: the current task, the streamed answer and reasoning, and the review."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical, VerticalScroll
from textual.widgets import Collapsible, Log, Static

from sddtui.app.text import clean_model_text
from sddtui.app.widgets.review import DiffView, FindingsView
from sddtui.edits.model import Proposal
from sddtui.guards.model import Finding
from sddtui.i18n import translate
from sddtui.tasks.model import Task


class TaskView(Vertical):
    """The current task, its answer streaming in as plain text, and the review once proposed."""

    def __init__(self, lang: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._lang = lang

    def _t(self, key: str, **params: object) -> str:
        return translate(key, self._lang, **params)

    def compose(self) -> ComposeResult:
        """Lay out status, task, reasoning, answer and review."""
        yield Static(id="status")
        yield Static(Text(self._t("app.task.none")), id="task-heading")
        yield Static(id="task-detail")
        with Collapsible(title=self._t("app.reasoning.title"), collapsed=True, id="reasoning"):
            yield Log(id="reasoning-log", highlight=False, auto_scroll=False)
        yield Log(id="answer-log", highlight=False, auto_scroll=False)
        with VerticalScroll(id="review"):
            yield Static(self._t("app.review.findings"), classes="review-title")
            yield FindingsView(id="findings")
            yield Static(id="diff-title", classes="review-title")
            yield DiffView(id="diff")
            yield Static(id="not-applied")

    def on_mount(self) -> None:
        """Start with the review hidden."""
        self.query_one("#review").display = False
        self.query_one("#answer-log", Log).border_title = self._t("app.answer.title")

    def show_status(self, message: str) -> None:
        """Show a one-line status (phase, hint or failure) above the task."""
        self.query_one("#status", Static).update(Text(message))

    def show_task(self, task: Task, note: str = "") -> None:
        """Show `task`, and clear the previous answer, reasoning and review."""
        heading = f"{task.id} · {self._t(f'app.action.{task.action.value}')} · {task.path}"
        self.query_one("#task-heading", Static).update(Text(heading, style="bold"))
        detail = Text(self._t("app.task.requirements", ids=", ".join(task.requirement_ids) or "—"), style="dim")
        detail.append("\n")
        detail.append(Text(task.instruction))
        if note:
            detail.append("\n")
            detail.append(Text(self._t("app.task.retry_note", note=note), style="italic"))
        self.query_one("#task-detail", Static).update(detail)

        self.query_one("#answer-log", Log).clear()
        self.query_one("#reasoning-log", Log).clear()
        self.query_one("#reasoning", Collapsible).display = False
        self.query_one("#findings", FindingsView).show_findings([], self._t("app.review.no_findings"))
        self.query_one("#review").display = False
        self.remove_class("-reviewing")

    def append_text(self, answer: str, reasoning: str) -> None:
        """Append streamed text; each log follows new output only while scrolled to its bottom."""
        if reasoning:
            self.query_one("#reasoning", Collapsible).display = True
            self._append(self.query_one("#reasoning-log", Log), reasoning)
        if answer:
            self._append(self.query_one("#answer-log", Log), answer)

    @staticmethod
    def _append(log: Log, text: str) -> None:
        log.write(clean_model_text(text), scroll_end=log.is_vertical_scroll_end)

    @property
    def answer_text(self) -> str:
        """The answer text shown so far."""
        return "\n".join(self.query_one("#answer-log", Log).lines)

    @property
    def reasoning_text(self) -> str:
        """The reasoning text shown so far."""
        return "\n".join(self.query_one("#reasoning-log", Log).lines)

    def add_finding(self, finding: Finding) -> None:
        """Show a finding raised while the answer streams."""
        self.query_one("#review").display = True
        self.query_one("#findings", FindingsView).add_finding(finding)

    def show_review(self, proposal: Proposal) -> None:
        """Show the proposal's findings (with those raised while streaming) and its diff."""
        findings_view = self.query_one("#findings", FindingsView)
        findings = list(proposal.findings)
        findings += [finding for finding in findings_view.findings if finding not in findings]
        findings_view.show_findings(findings, self._t("app.review.no_findings"))

        self.query_one("#diff-title", Static).update(Text(self._t("app.review.diff", path=proposal.path)))
        self.query_one("#diff", DiffView).show_diff(proposal.diff, self._t("app.review.no_diff"))
        not_applied = [block.path or "?" for block in proposal.not_applied]
        note = self._t("app.review.not_applied", paths=", ".join(not_applied)) if not_applied else ""
        self.query_one("#not-applied", Static).update(Text(clean_model_text(note), style="italic"))

        self.query_one("#review").display = True
        self.add_class("-reviewing")
