"""Provide the workbench screen: it owns the session, runs its work in workers and shows the events."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

import httpx
import psutil
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Footer, Header
from textual.worker import Worker, WorkerState

from sddtui.app.batching import relay_events
from sddtui.app.messages import TelemetryReceived, SessionConnected, SessionEventReceived, StreamTextBatched, UsageBatched
from sddtui.app.screens.dialogs import ErrorScreen, NoteScreen
from sddtui.app.text import clean_model_text
from sddtui.app.widgets.gauge import ContextUsage, GaugePane
from sddtui.app.widgets.spec_tree import SpecTree
from sddtui.app.widgets.task_view import TaskView
from sddtui.edits.model import Proposal
from sddtui.errors import SddtuiError
from sddtui.events import (
    ErrorOccurred,
    FindingRaised,
    PlanReady,
    PlanRejected,
    ProposalReady,
    SessionDone,
    TaskApplied,
    TaskRejected,
    TaskStarted,
)
from sddtui.i18n import join_sentences, translate
from sddtui.llm.telemetry import TelemetryPoller
from sddtui.memory.machine import find_listening_process, process_tree_rss
from sddtui.spec.model import Spec
from sddtui.tasks.model import Task, TaskState

MEMORY_POLL_SECONDS = 2.0
# How long quitting waits for a stopped stream to journal its answer before cancelling it.
STOP_GRACE_SECONDS = 5.0


class MachineMemory(Protocol):
    """A machine memory reading: the two fields the gauge shows."""

    total_bytes: int
    available_bytes: int


def workbench_bindings(lang: str) -> list[Binding]:
    """Return the workbench's key bindings with descriptions in `lang`."""
    return [
        Binding("a", "approve", translate("app.key.approve", lang)),
        Binding("r", "reject", translate("app.key.reject", lang)),
        Binding("t", "retry", translate("app.key.retry", lang)),
        Binding("s", "stop", translate("app.key.stop", lang)),
        Binding("n", "next_task", translate("app.key.next", lang)),
        Binding("q", "app.quit", translate("app.key.quit", lang)),
    ]


class WorkbenchScreen(Screen[None]):
    """Three panes over one session: spec and tasks, the current task, and the gauges."""

    BINDINGS = workbench_bindings("en")

    def __init__(
        self,
        spec: Spec,
        project: Any,
        connect: Callable[[], Awaitable[Any]],
        lang: str,
        read_memory: Callable[[], MachineMemory],
    ) -> None:
        super().__init__()
        self.spec = spec
        self.project = project
        self.lang = lang
        self._connect = connect
        self._read_memory = read_memory
        self.session: Any = None
        self.current_task: Task | None = None
        self.proposal: Proposal | None = None
        self.streaming = False
        self.deciding = False
        self.planning = False
        self._telemetry: TelemetryPoller | None = None
        self.server_process: psutil.Process | None = None
        self.return_code = 0
        self._note = ""
        self._session_closed = False

    def _t(self, key: str, **params: object) -> str:
        return translate(key, self.lang, **params)

    def compose(self) -> ComposeResult:
        """Lay out the header, the three panes and the footer."""
        yield Header(show_clock=False)
        with Horizontal(id="panes"):
            yield SpecTree(self.spec, self.project, self.lang, id="spec-tree")
            yield TaskView(self.lang, id="task-view")
            yield GaugePane(self.lang, id="gauge")
        yield Footer()

    def on_mount(self) -> None:
        """Show the spec at once, start connecting and start polling memory."""
        self.title = self._t("app.title", spec=self.spec.path.name)
        self.sub_title = self._t("app.server.connecting")
        self.task_view.show_status(self._t("app.status.connecting"))
        self._poll_memory()
        self.set_interval(MEMORY_POLL_SECONDS, self._poll_memory)
        self._start_session()

    @property
    def task_view(self) -> TaskView:
        """The centre pane."""
        return self.query_one("#task-view", TaskView)

    @property
    def spec_tree(self) -> SpecTree:
        """The left pane."""
        return self.query_one("#spec-tree", SpecTree)

    @property
    def gauge(self) -> GaugePane:
        """The right pane."""
        return self.query_one("#gauge", GaugePane)

    # Workers: each posts messages and touches no widget.

    @work(exclusive=True, group="session", exit_on_error=False)
    async def _start_session(self) -> None:
        """Connect (or start the embedded engine) and post the session."""
        session = await self._connect()
        self.post_message(SessionConnected(session))

    @work(exclusive=True, group="telemetry", exit_on_error=False)
    async def _poll_telemetry(self, poller: TelemetryPoller) -> None:
        """Relay the server's own readings; the poller drops endpoints the server lacks and stops politely."""
        async for sample in poller.samples():
            self.post_message(TelemetryReceived(sample))

    def on_telemetry_received(self, message: TelemetryReceived) -> None:
        """Show the server's latest reading in the gauge."""
        self.gauge.show_telemetry(message.sample)

    @work(exclusive=True, group="plan", exit_on_error=False)
    async def _make_plan(self) -> None:
        """Relay the planning events."""
        await relay_events(self.session.make_plan(), self.post_message)

    @work(exclusive=True, group="stream", exit_on_error=False)
    async def _run_task(self, task: Task, note: str) -> None:
        """Relay one task's events, text and usage batched by time."""
        await relay_events(self.session.run_task(task, note), self.post_message)

    @work(exclusive=True, group="decision", exit_on_error=False)
    async def _decide(self, task: Task, proposal: Proposal | None, approve: bool) -> None:
        """Approve or reject the proposal and post the outcome."""
        if approve:
            event = await self.session.approve(task, proposal)
        else:
            event = await self.session.reject(task, proposal, self._t("app.reject.reason"))
        self.post_message(SessionEventReceived(event))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """Clear the busy flags when work ends, and show every worker failure in one place."""
        worker = event.worker
        if event.state not in (WorkerState.SUCCESS, WorkerState.ERROR, WorkerState.CANCELLED):
            return
        if worker.group == "stream":
            self.streaming = False
        elif worker.group == "decision":
            self.deciding = False
        elif worker.group == "plan":
            self.planning = False
            if event.state == WorkerState.CANCELLED and not self._session_closed:
                self.task_view.show_status(self._t("app.status.plan_stopped"))
        if event.state != WorkerState.ERROR or worker.error is None:
            return

        error = worker.error
        if isinstance(error, SddtuiError):
            message = error.render(self.lang)
        else:
            message = self._t("app.error.unexpected", error_type=type(error).__name__, worker=worker.name, error=error)
        if worker.group == "session":
            self.return_code = 1
            self.sub_title = self._t("app.error.connect_title")
            self.task_view.show_status(message)
            self.app.push_screen(ErrorScreen(self._t("app.error.connect_title"), message, self.lang, fatal=True))
        else:
            self.app.push_screen(ErrorScreen(self._t("app.error.title"), message, self.lang))

    # Messages from the workers.

    def on_session_connected(self, message: SessionConnected) -> None:
        """Keep the session, show the server in the header and start planning."""
        self.session = message.session
        server = self.session.server
        n_ctx = server.n_ctx if server.n_ctx else self._t("app.gauge.unknown")
        self.sub_title = f"{server.label} · {server.model} · n_ctx {n_ctx}"
        self.gauge.kv_bytes_per_token = server.kv_bytes_per_token
        self.gauge.show_usage(ContextUsage(n_ctx=server.n_ctx))
        self._start_planning()
        self._watch_server_process(server)
        report = getattr(server, "report", None)
        if report is not None:
            self._telemetry = TelemetryPoller(report, api_key=self.session.settings.api_key)
            self._poll_telemetry(self._telemetry)

    def _watch_server_process(self, server) -> None:
        """Remember the model server's process when it runs here: the embedded engine's, or the one on a loopback port."""
        engine = getattr(self.session, "engine", None)
        if engine is not None and engine.process is not None:
            self.server_process = psutil.Process(engine.process.pid)
            return
        url = httpx.URL(server.base_url)
        if url.host in ("127.0.0.1", "localhost", "::1") and url.port:
            self._find_server_process(url.port)

    def _start_planning(self) -> None:
        """Ask the session for the plan (or its saved one)."""
        self.planning = True
        self.task_view.show_status(self._t("app.status.planning"))
        self._make_plan()

    def on_stream_text_batched(self, message: StreamTextBatched) -> None:
        """Append the batch of streamed text."""
        self.task_view.append_text(message.answer, message.reasoning)

    def on_usage_batched(self, message: UsageBatched) -> None:
        """Show the latest token counts."""
        usage = message.usage
        n_ctx = usage.n_ctx or (self.session.server.n_ctx if self.session else None)
        self.gauge.show_usage(
            ContextUsage(
                prompt_tokens=usage.prompt_tokens,
                completion_tokens=usage.completion_tokens,
                reasoning_tokens=usage.reasoning_tokens,
                exact=usage.exact,
                n_ctx=n_ctx,
                tokens_per_second=usage.tokens_per_second,
                memory_bytes=usage.memory_bytes,
                memory_bytes_at_cap=usage.memory_bytes_at_cap,
                budget_bytes=usage.budget_bytes,
                level=usage.level,
            )
        )

    def on_session_event_received(self, message: SessionEventReceived) -> None:
        """Show one session event."""
        event = message.event
        match event:
            case PlanRejected(attempt=attempt, reasons=reasons):
                text = clean_model_text(join_sentences(reasons))
                self.task_view.show_status(self._t("app.status.plan_rejected", attempt=attempt, reasons=text))
            case PlanReady(plan=plan):
                self.planning = False
                self.spec_tree.show_tasks(plan.tasks)
                self.task_view.show_status(self._t("app.status.plan_ready", count=len(plan.tasks)))
                self._start_next_task()
            case TaskStarted():
                self._show_task_started(event)
            case FindingRaised(finding=finding):
                self.task_view.add_finding(finding)
            case ProposalReady(task=task, proposal=proposal):
                self._show_proposal(task, proposal)
            case TaskApplied(task=task, path=path, bytes_written=bytes_written):
                self.proposal = None
                self.spec_tree.set_task_state(task, TaskState.APPLIED)
                status_key = "app.status.applied" if self.session and self.session.next_pending() else "app.status.applied_last"
                self.task_view.show_status(self._t(status_key, path=path, bytes=bytes_written))
                self.notify(self._t("app.toast.applied", path=path))
            case TaskRejected(task=task):
                self.proposal = None
                self.spec_tree.set_task_state(task, TaskState.REJECTED)
                self.task_view.show_status(self._t("app.status.rejected", task_id=task.id))
            case ErrorOccurred(error=error, task=task):
                self._show_error(error, task)
            case SessionDone():
                self.task_view.show_status(self._t("app.status.all_decided"))

    def _show_task_started(self, event: TaskStarted) -> None:
        """Show the task that started and reset the review and the gauge."""
        if self._telemetry is not None:
            self._telemetry.prompt_sent()
        self.current_task = event.task
        self.proposal = None
        self.spec_tree.set_task_state(event.task, TaskState.RUNNING)
        self.task_view.show_task(event.task, self._note)
        self.task_view.show_status(self._t("app.status.streaming", task_id=event.task.id))
        n_ctx = event.n_ctx or self.session.server.n_ctx
        self.gauge.show_usage(
            ContextUsage(prompt_tokens=event.prompt_tokens, exact=event.prompt_tokens_exact, n_ctx=n_ctx)
        )

    def _show_proposal(self, task: Task, proposal: Proposal) -> None:
        """Show the review of a proposal and whether it can be approved."""
        self.streaming = False
        self.current_task = task
        self.proposal = proposal
        self.spec_tree.set_task_state(task, TaskState.PROPOSED)
        self.task_view.show_review(proposal)
        if proposal.blocked:
            count = len(proposal.blocking_findings)
            self.task_view.show_status(self._t("app.status.review_blocked", task_id=task.id, count=count))
        else:
            self.task_view.show_status(self._t("app.status.review", task_id=task.id))

    def _show_error(self, error: SddtuiError, task: Task | None) -> None:
        """Show an error event: a toast when a task failed, a dialog otherwise."""
        message = error.render(self.lang)
        if task is None:
            self.task_view.show_status(message)
            self.app.push_screen(ErrorScreen(self._t("app.error.title"), message, self.lang))
            return
        self.streaming = False
        self.spec_tree.set_task_state(task, TaskState.FAILED)
        self.task_view.show_status(self._t("app.status.failed", task_id=task.id, message=message))
        self.notify(message, severity="error", markup=False)

    # Memory gauge.

    def _poll_memory(self) -> None:
        """Read the machine's memory and show it."""
        try:
            memory = self._read_memory()
        except (OSError, ImportError, SddtuiError) as error:
            reason = error.render(self.lang) if isinstance(error, SddtuiError) else str(error)
            self.gauge.show_memory_error(reason)
            return
        self.gauge.show_memory(memory.total_bytes, memory.available_bytes, self._server_resident_bytes())

    def _server_resident_bytes(self) -> int | None:
        """Return the resident bytes of the model server's process tree, when it runs on this machine."""
        if self.server_process is None:
            return None
        try:
            return process_tree_rss(self.server_process)
        except psutil.Error:
            self.server_process = None
            return None

    @work(exclusive=True, group="server-process", thread=True, exit_on_error=False)
    def _find_server_process(self, port: int) -> None:
        """Find the local process listening on the server's port; scanning processes is slow, so it runs once, in a thread."""
        process = find_listening_process(port)
        if process is not None:
            self.app.call_from_thread(setattr, self, "server_process", process)

    # Actions.

    def _check_ready(self) -> bool:
        """Return True when a session exists and no stream or decision is running, else notify why not."""
        if self.session is None:
            self.notify(self._t("app.toast.no_session"), severity="warning", markup=False)
            return False
        if self.planning:
            self.notify(self._t("app.toast.planning"), severity="warning", markup=False)
            return False
        if self.streaming or self.deciding:
            self.notify(self._t("app.toast.busy"), severity="warning", markup=False)
            return False
        return True

    def _start_task(self, task: Task, note: str = "") -> None:
        """Start streaming `task`."""
        self._note = note
        self.streaming = True
        self._run_task(task, note)

    def _start_next_task(self) -> None:
        """Start the next pending task, or plan again when there is no plan, or show that every task has a decision."""
        if self.session.plan is None:
            self._start_planning()
            return
        task = self.session.next_pending()
        if task is None:
            self.task_view.show_status(self._t("app.status.all_decided"))
            return
        self._start_task(task)

    def action_approve(self) -> None:
        """Approve the proposal, unless a finding blocks it."""
        if not self._check_ready():
            return
        if self.current_task is None or self.proposal is None:
            self.notify(self._t("app.toast.no_proposal"), severity="warning", markup=False)
            return
        if self.proposal.blocked:
            reason = self.proposal.blocking_findings[0].message
            self.notify(self._t("app.toast.approve_blocked", reason=clean_model_text(reason)), severity="error", markup=False)
            return
        self.deciding = True
        self.task_view.show_status(self._t("app.status.applying", path=self.proposal.path))
        self._decide(self.current_task, self.proposal, True)

    def _ready_task(self) -> Task | None:
        """Return the current task when the screen is ready for a decision on it, else notify why not."""
        if not self._check_ready():
            return None
        if self.current_task is None:
            self.notify(self._t("app.toast.no_task"), severity="warning", markup=False)
        return self.current_task

    def action_reject(self) -> None:
        """Reject the current task's proposal (or the failed task)."""
        task = self._ready_task()
        if task is None:
            return
        state = self.spec_tree.task_state(task.id)
        if state in (TaskState.APPLIED, TaskState.REJECTED):
            state_text = self._t(f"app.state.{state.value}")
            self.notify(self._t("app.toast.already_decided", task_id=task.id, state=state_text), severity="warning", markup=False)
            return
        self.deciding = True
        self._decide(task, self.proposal, False)

    def action_retry(self) -> None:
        """Ask for a note, then run the current task again with it."""
        task = self._ready_task()
        if task is None:
            return

        def retry_with(note: str | None) -> None:
            if note is not None and self._check_ready():
                self._start_task(task, note)

        self.app.push_screen(NoteScreen(task.id, self.lang), retry_with)

    def action_stop(self) -> None:
        """Stop the running stream (or the planning) at once; what arrived is kept."""
        if self.planning:
            self.app.workers.cancel_group(self, "plan")
            return
        if self.session is None or not self.streaming:
            self.notify(self._t("app.toast.no_stream"), severity="warning", markup=False)
            return
        self.session.stop_stream()
        self.task_view.show_status(self._t("app.status.stopping"))

    def action_next_task(self) -> None:
        """Start the next pending task."""
        if self._check_ready():
            self._start_next_task()

    async def shutdown(self) -> None:
        """Stop the stream and let it journal its answer, cancel this screen's workers, then close the session."""
        if self._session_closed:
            return
        self._session_closed = True
        if self.session is not None and self.streaming:
            self.session.stop_stream()
            await self._wait_for_stream_end()
        self.app.workers.cancel_node(self)
        if self.session is not None:
            await self.session.aclose()

    async def _wait_for_stream_end(self) -> None:
        """Let a stopped stream journal what it received; cancelling its worker at once would lose the answer."""
        streams = [
            worker
            for worker in self.app.workers
            if worker.node is self and worker.group == "stream" and not worker.is_finished
        ]
        if not streams:
            return
        waits = [asyncio.ensure_future(worker.wait()) for worker in streams]
        done, pending = await asyncio.wait(waits, timeout=STOP_GRACE_SECONDS)
        for wait in pending:
            wait.cancel()
        for wait in done:
            # A failed stream was already shown by on_worker_state_changed; mark its error as seen.
            wait.exception()
