"""Provide the review widgets: findings with their evidence and the coloured diff."""

from __future__ import annotations

from rich.cells import cell_len
from rich.text import Text
from textual.geometry import Size
from textual.widget import Widget

from sddtui.app.text import clean_model_text
from sddtui.guards.model import Finding, Severity


class DiffView(Widget):
    """A unified diff whose added, removed and hunk lines take their colours from the theme."""

    COMPONENT_CLASSES = {"diff--added", "diff--removed", "diff--hunk", "diff--header"}

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._diff = ""
        self._empty_message = ""

    def show_diff(self, diff: str, empty_message: str) -> None:
        """Show `diff` (untrusted text, shown literally), or `empty_message` when it is empty."""
        self._diff = clean_model_text(diff)
        self._empty_message = empty_message
        self.refresh(layout=True)

    def get_content_width(self, container: Size, viewport: Size) -> int:
        """Return the width of the longest line, so long lines scroll instead of wrapping."""
        lines = self._diff.splitlines() or [self._empty_message]
        return max(cell_len(line) for line in lines)

    def render(self) -> Text:
        """Render the diff line by line with the theme's diff colours."""
        if not self._diff.strip():
            return Text(self._empty_message, style="italic")

        styles = {
            "+": self.get_component_rich_style("diff--added"),
            "-": self.get_component_rich_style("diff--removed"),
            "@": self.get_component_rich_style("diff--hunk"),
        }
        header_style = self.get_component_rich_style("diff--header")
        text = Text(no_wrap=True, end="")
        for line in self._diff.splitlines():
            if line.startswith(("+++", "---")):
                style = header_style
            else:
                style = styles.get(line[:1])
            text.append(line + "\n", style=style)
        text.rstrip()
        return text


class FindingsView(Widget):
    """The findings of a check, block before warn, each with its evidence."""

    COMPONENT_CLASSES = {"findings--block", "findings--warn", "findings--evidence"}

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._findings: list[Finding] = []
        self._empty_message = ""

    @property
    def findings(self) -> list[Finding]:
        """The findings shown."""
        return list(self._findings)

    def show_findings(self, findings: list[Finding], empty_message: str) -> None:
        """Show `findings`, or `empty_message` when there are none."""
        self._findings = sorted(findings, key=lambda finding: finding.severity != Severity.BLOCK)
        self._empty_message = empty_message
        self.refresh(layout=True)

    def add_finding(self, finding: Finding) -> None:
        """Add one finding unless an equal one is shown already."""
        if finding not in self._findings:
            self.show_findings([*self._findings, finding], self._empty_message)

    def render(self) -> Text:
        """Render one block per finding: severity, kind, message, then the evidence dimmed."""
        if not self._findings:
            return Text(self._empty_message, style="italic")

        evidence_style = self.get_component_rich_style("findings--evidence")
        text = Text(end="")
        for finding in self._findings:
            style = self.get_component_rich_style(f"findings--{finding.severity.value}")
            where = f" {finding.path}:{finding.line}" if finding.path and finding.line else ""
            text.append(f"{finding.severity.value.upper()} {finding.kind}{where}: ", style=style)
            text.append(clean_model_text(finding.message) + "\n")
            for line in clean_model_text(finding.evidence).splitlines()[:8]:
                text.append(f"  │ {line}\n", style=evidence_style)
        text.rstrip()
        return text
