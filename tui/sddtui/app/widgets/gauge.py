"""Provide the gauge pane: context tokens against n_ctx, KV cache bytes and machine memory."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.containers import VerticalScroll
from textual.reactive import reactive
from textual.widget import Widget
from textual.widgets import Static

from sddtui.i18n import translate
from sddtui.memory.machine import format_bytes

from sddtui.memory.budget import DANGER_SHARE as DANGER_FRACTION
from sddtui.memory.budget import WARNING_SHARE as WARNING_FRACTION


def level_for(fraction: float) -> str:
    """Return "safe", "warning" or "danger" for a used fraction of a limit."""
    if fraction >= DANGER_FRACTION:
        return "danger"
    if fraction >= WARNING_FRACTION:
        return "warning"
    return "safe"


@dataclass(frozen=True, slots=True)
class ContextUsage:
    """Token counts of the running task, as the gauge shows them."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    exact: bool = False
    n_ctx: int | None = None
    tokens_per_second: float | None = None
    memory_bytes: int | None = None
    memory_bytes_at_cap: int | None = None
    budget_bytes: int | None = None
    level: str | None = None
    """The session's level from context and memory together; None leaves the bar to the context share."""

    @property
    def context_tokens(self) -> int:
        """Tokens the context holds: prompt plus completion."""
        # NOTE: assumes completion_tokens already counts reasoning tokens, as OpenAI-compatible
        # servers report them; reasoning_tokens is shown as a part of it, not added again.
        return self.prompt_tokens + self.completion_tokens


class GaugeBar(Widget):
    """A one-line bar whose colour is the theme's gauge-safe, gauge-warning or gauge-danger."""

    COMPONENT_CLASSES = {"gauge--safe", "gauge--warning", "gauge--danger", "gauge--empty"}

    fraction: reactive[float | None] = reactive(None)

    forced_level: reactive[str | None] = reactive(None)
    """A level decided elsewhere (the session weighs memory too); it wins when it is worse."""

    @property
    def level(self) -> str:
        """The colour level of the current fraction ("unknown" before one is known)."""
        if self.fraction is None:
            return "unknown"
        levels = ["safe", "warning", "danger"]
        own = level_for(self.fraction)
        if self.forced_level in levels and levels.index(self.forced_level) > levels.index(own):
            return self.forced_level
        return own

    def render(self) -> Text:
        """Render the filled and empty parts of the bar."""
        width = max(1, self.size.width)
        empty_style = self.get_component_rich_style("gauge--empty")
        if self.fraction is None:
            return Text("╌" * width, style=empty_style)
        filled = min(width, round(width * min(max(self.fraction, 0.0), 1.0)))
        bar = Text("━" * filled, style=self.get_component_rich_style(f"gauge--{self.level}"))
        bar.append("━" * (width - filled), style=empty_style)
        return bar


class GaugePane(VerticalScroll):
    """Context, token counts, speed, KV cache and machine memory, updated live."""

    def __init__(self, lang: str, kv_bytes_per_token: int | None = None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._lang = lang
        self.kv_bytes_per_token = kv_bytes_per_token
        self.usage = ContextUsage()
        self._line_counts: dict[str, int] = {}

    def compose(self):
        """Lay out the context bar, the counts and the memory bar."""
        yield Static(translate("app.gauge.context", self._lang), classes="gauge-title")
        yield GaugeBar(id="context-bar")
        yield Static(id="context-numbers")
        yield Static(id="token-counts")
        server_numbers = Static(id="server-numbers")
        server_numbers.display = False
        yield server_numbers
        yield Static(translate("app.gauge.memory", self._lang), classes="gauge-title")
        yield GaugeBar(id="memory-bar")
        yield Static(id="memory-numbers")

    def on_mount(self) -> None:
        """Show the empty counts."""
        self.show_usage(self.usage)

    def _t(self, key: str, **params: object) -> str:
        return translate(key, self._lang, **params)

    def show_usage(self, usage: ContextUsage) -> None:
        """Show `usage`: the context bar, exact or estimate, the counts, tokens/s and KV cache bytes."""
        self.usage = usage
        used = usage.context_tokens
        kind = self._t("app.gauge.exact" if usage.exact else "app.gauge.estimate")
        bar = self.query_one("#context-bar", GaugeBar)
        bar.forced_level = usage.level
        if usage.n_ctx:
            fraction = used / usage.n_ctx
            bar.fraction = fraction
            numbers = self._t("app.gauge.context_used", used=used, n_ctx=usage.n_ctx, percent=round(fraction * 100))
        else:
            bar.fraction = None
            numbers = self._t("app.gauge.context_unknown_n_ctx", used=used)
        self._update_lines("#context-numbers", Text(f"{numbers}\n{kind}"))

        unknown = self._t("app.gauge.unknown")
        speed = f"{usage.tokens_per_second:.1f}" if usage.tokens_per_second is not None else "—"
        kv = format_bytes(used * self.kv_bytes_per_token) if self.kv_bytes_per_token else unknown
        rows = [
            (self._t("app.gauge.prompt"), str(usage.prompt_tokens)),
            (self._t("app.gauge.completion"), str(usage.completion_tokens)),
            (self._t("app.gauge.reasoning"), str(usage.reasoning_tokens)),
            (self._t("app.gauge.tokens_per_second"), speed),
            (self._t("app.gauge.kv_cache"), kv),
        ]
        if usage.memory_bytes is not None:
            budget = format_bytes(usage.budget_bytes) if usage.budget_bytes else unknown
            rows.append((self._t("app.gauge.model_memory"), f"{format_bytes(usage.memory_bytes)} / {budget}"))
            rows.append((self._t("app.gauge.model_memory_at_cap"), format_bytes(usage.memory_bytes_at_cap)))
        counts = Text(end="")
        for index, (name, value) in enumerate(rows):
            counts.append(f"{name}: ", style="dim")
            counts.append(value + ("\n" if index < len(rows) - 1 else ""))
        self._update_lines("#token-counts", counts)

    def _update_lines(self, selector: str, text: Text) -> None:
        """Update a Static, asking for a new layout only when its number of lines changed."""
        # A layout of the whole screen per streamed batch cost about a third of a core; the
        # counts change every batch but their line count almost never does.
        lines = text.plain.count("\n") + 1
        layout = self._line_counts.get(selector) != lines
        self._line_counts[selector] = lines
        self.query_one(selector, Static).update(text, layout=layout)

    def show_telemetry(self, sample) -> None:
        """Show what the server itself reports: its KV cache use, memory, VRAM and queue."""
        rows = []
        if sample.kv_usage_ratio is not None:
            rows.append((self._t("app.gauge.server_kv"), f"{sample.kv_usage_ratio * 100:.0f}%"))
        if sample.context_tokens is not None:
            rows.append((self._t("app.gauge.server_context"), str(sample.context_tokens)))
        if sample.completion_tokens is not None:
            rows.append((self._t("app.gauge.server_decoded"), str(sample.completion_tokens)))
        if sample.requests_running is not None:
            rows.append((self._t("app.gauge.server_running"), str(sample.requests_running)))
        if sample.memory_bytes is not None:
            rows.append((self._t("app.gauge.server_memory"), format_bytes(sample.memory_bytes)))
        if sample.vram_bytes is not None:
            rows.append((self._t("app.gauge.server_vram"), format_bytes(sample.vram_bytes)))
        if sample.requests_waiting:
            rows.append((self._t("app.gauge.server_waiting"), str(sample.requests_waiting)))
        text = Text(end="")
        if rows:
            text.append(self._t("app.gauge.server", source=sample.source) + "\n", style="dim italic")
        for index, (name, value) in enumerate(rows):
            text.append(f"{name}: ", style="dim")
            text.append(value + ("\n" if index < len(rows) - 1 else ""))
        server_numbers = self.query_one("#server-numbers", Static)
        server_numbers.update(text)
        server_numbers.display = bool(rows)

    def show_memory(self, total_bytes: int, available_bytes: int, server_bytes: int | None = None) -> None:
        """Show the machine's memory (used share as a bar, available of total) and the server process's resident memory."""
        bar = self.query_one("#memory-bar", GaugeBar)
        bar.fraction = 1 - available_bytes / total_bytes if total_bytes else None
        text = self._t("app.gauge.memory_available", available=format_bytes(available_bytes), total=format_bytes(total_bytes))
        if server_bytes is not None:
            text += "\n" + self._t("app.gauge.server_process", size=format_bytes(server_bytes))
        self._update_lines("#memory-numbers", Text(text))

    def show_memory_error(self, reason: str) -> None:
        """Say that the machine's memory could not be read, and why."""
        self.query_one("#memory-bar", GaugeBar).fraction = None
        self.query_one("#memory-numbers", Static).update(Text(self._t("app.gauge.memory_unreadable", reason=reason)))
