"""Provide the Session: the plan, stream, check, review and apply loop that both front ends drive."""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from pathlib import Path

from sddtui.edits.apply import apply_atomic, read_text_or_none, resolve_inside
from sddtui.edits.model import Proposal
from sddtui.edits.proposal import build_proposal
from sddtui.errors import SddtuiError
from sddtui.events import (
    ErrorOccurred,
    FindingRaised,
    PlanReady,
    PlanRejected,
    ProposalReady,
    SessionEvent,
    TaskApplied,
    TaskRejected,
    TaskStarted,
    TextReceived,
    UsageUpdated,
)
from sddtui.guards.check import check_proposal
from sddtui.guards.feedback import feedback_lines
from sddtui.guards.model import Finding, Severity
from sddtui.guards.stream import StreamWatcher
from sddtui.i18n import join_sentences, translate
from sddtui.journal import Journal, plan_path
from sddtui.memory.tokens import TokenCounter, render_chat_prompt
from sddtui.llm.client import ChatClient
from sddtui.llm.embedded import EmbeddedEngine
from sddtui.lock import ProjectLock
from sddtui.llm.grammar import answer_grammar
from sddtui.llm.events import (
    AnswerDelta,
    ReasoningDelta,
    StreamFailed,
    StreamFinished,
    TimingsReported,
    ToolCallDelta,
    UsageReported,
)
from sddtui.llm.chunks import tool_calls_as_answer
from sddtui.llm.detect import Dialect
from sddtui.llm.server import ServerInfo
from sddtui.llm.silent import FinishedStream, empty_answer_error, explain_stream_cut, silent_failure_findings
from sddtui.project import Project
from sddtui.settings import Settings
from sddtui.spec.model import Spec
from sddtui.tasks.model import Plan, Task, TaskState
from sddtui.tasks.planner import PlanInvalid, load_plan, parse_plan, plan_messages, plan_schema, save_plan
from sddtui.tasks.prompt import fence_tag, spec_language, task_messages

# Tokens kept free between the prompt and n_ctx for the chat template and the end of the answer.
CONTEXT_MARGIN_TOKENS = 64
# The smallest max_tokens worth sending; below it a task is reported as not fitting.
MIN_ANSWER_TOKENS = 256
# How often an estimated usage update is yielded while tokens stream in, in seconds.
USAGE_INTERVAL = 0.1
# Tokens a chat template adds around each message, estimated when the template is unknown.
TEMPLATE_TOKENS_PER_MESSAGE = 8
PLAN_MAX_TOKENS = 1024
# The smallest max_tokens worth asking for a plan of even one task.
MIN_PLAN_TOKENS = 128


def spec_sha256(spec: Spec) -> str:
    """Return the hash of the spec's text, which ties a saved plan to the spec it came from."""
    return hashlib.sha256(spec.text.encode("utf-8")).hexdigest()


def load_saved_plan(spec: Spec, project_dir: Path) -> Plan | None:
    """Return the plan saved in the project when it was made from this very spec text, else None."""
    path = plan_path(project_dir)
    if not path.is_file():
        return None
    plan = load_plan(path)
    return plan if plan.spec_sha256 == spec_sha256(spec) else None


class Session:
    """One run over a spec: plans, streams each task, checks the answer, and applies approved files."""

    def __init__(
        self,
        *,
        spec: Spec,
        project: Project,
        client: ChatClient,
        server: ServerInfo,
        journal: Journal,
        settings: Settings,
        engine: EmbeddedEngine | None = None,
        lock: ProjectLock | None = None,
    ) -> None:
        self.spec = spec
        self.project = project
        self.client = client
        self.server = server
        self.journal = journal
        self.settings = settings
        self.engine = engine
        self.lock = lock
        self.lang = settings.lang or "en"
        self.plan: Plan | None = None
        self.proposals: dict[str, Proposal] = {}
        self._feedback: dict[str, list[str]] = {}
        self._deferred: set[str] = set()
        self._stop_requested: asyncio.Event | None = None
        self.token_counter = TokenCounter()
        self._estimated_prompt_text = ""

    # Planning

    async def make_plan(self) -> AsyncIterator[SessionEvent]:
        """Load the saved plan for this spec, or ask the model for one until it is valid."""
        saved = self._load_saved_plan()
        if saved is not None:
            self.plan = saved
            self.journal.append("plan_resumed", plan=saved)
            yield PlanReady(saved)
            return

        feedback: list[str] = []
        schema = plan_schema(self.spec, self.project)
        for attempt in range(1, self.settings.plan_attempts + 1):
            try:
                messages = plan_messages(self.spec, self.project, self._existing_files(), feedback)
                max_tokens = await self._plan_budget(messages)
                self.journal.append("plan_prompt", attempt=attempt, messages=messages, schema=schema, max_tokens=max_tokens)
                text = await self.client.complete_json(
                    messages, model=self.server.model, max_tokens=max_tokens, schema=schema
                )
            except SddtuiError as error:
                if error.key == "llm.json_cut_short" and max_tokens < PLAN_MAX_TOKENS:
                    error = SddtuiError("plan_cut_by_context", n_ctx=self.server.n_ctx, max_tokens=max_tokens)
                self.journal.append("error", stage="plan", key=error.key, error=error.render("en"))
                yield ErrorOccurred(error)
                return
            self.journal.append("plan_answer", attempt=attempt, text=text)

            try:
                plan = parse_plan(text, self.spec, self.project, exists=self._exists)
            except SddtuiError as error:
                self.journal.append("error", stage="plan", key=error.key, error=error.render("en"))
                yield ErrorOccurred(error)
                return
            except PlanInvalid as invalid:
                feedback = invalid.reasons
                self.journal.append("plan_rejected", attempt=attempt, reasons=invalid.reasons)
                yield PlanRejected(attempt=attempt, reasons=invalid.reasons)
                continue

            plan.model = self.server.model
            plan.spec_sha256 = spec_sha256(self.spec)
            self.journal.append("plan", plan=plan)
            try:
                self._save_plan(plan)
            except SddtuiError as error:
                self.journal.append("error", stage="plan", key=error.key, error=error.render("en"))
                yield ErrorOccurred(error)
                return
            self.plan = plan
            yield PlanReady(plan)
            return

        error = SddtuiError("plan_failed", attempts=self.settings.plan_attempts, reasons=join_sentences(feedback))
        self.journal.append("error", stage="plan", error=error.render("en"))
        yield ErrorOccurred(error)

    async def _plan_budget(self, messages: list[dict]) -> int:
        """Return max_tokens for the plan: PLAN_MAX_TOKENS, lowered to what n_ctx leaves after the prompt."""
        if self.server.n_ctx is None:
            return PLAN_MAX_TOKENS
        prompt_tokens, _ = await self._count_prompt_tokens(messages)
        room = self.server.n_ctx - prompt_tokens - CONTEXT_MARGIN_TOKENS
        if room < MIN_PLAN_TOKENS:
            raise SddtuiError("plan_prompt_too_large", prompt_tokens=prompt_tokens, n_ctx=self.server.n_ctx)
        return min(PLAN_MAX_TOKENS, room)

    def _load_saved_plan(self) -> Plan | None:
        """Return the saved plan when it was made from this very spec text."""
        return load_saved_plan(self.spec, self.project.directory)

    def _save_plan(self, plan: Plan) -> None:
        """Write the plan beside the journal; tasks rejected only for this run are saved as pending."""
        if self._deferred:
            plan = plan.model_copy(deep=True)
            for saved_task in plan.tasks:
                if saved_task.id in self._deferred:
                    saved_task.state = TaskState.PENDING
        save_plan(plan, plan_path(self.project.directory))

    def _exists(self, relative_path: str) -> bool:
        """Return True when the project already has this file."""
        return resolve_inside(self.project.directory, relative_path).is_file()

    def _existing_files(self) -> list[str]:
        """List the files already under the allowed roots, relative to the project."""
        found: list[str] = []
        for root in self.project.allowed_roots:
            folder = self.project.directory / root
            if folder.is_dir():
                found.extend(
                    path.relative_to(self.project.directory).as_posix()
                    for path in sorted(folder.rglob("*"))
                    if path.is_file()
                )
        return found[:200]

    def next_pending(self) -> Task | None:
        """Return the first task that has no decision yet."""
        if self.plan is None:
            return None
        for task in self.plan.tasks:
            if task.state in (TaskState.PENDING, TaskState.FAILED):
                return task
        return None

    # One task

    def stop_stream(self) -> None:
        """Stop the running stream now; what arrived is kept and still becomes a proposal."""
        if self._stop_requested is not None:
            self._stop_requested.set()

    async def run_task(self, task: Task, note: str = "") -> AsyncIterator[SessionEvent]:
        """Send one task, stream the answer, check it and yield the proposal (or the error)."""
        # Created before the prompt is counted, so a stop pressed during that wait is not lost.
        self._stop_requested = asyncio.Event()
        try:
            current = read_text_or_none(resolve_inside(self.project.directory, task.path))
        except SddtuiError as error:
            self._stop_requested = None
            self._fail(task, error)
            yield ErrorOccurred(error, task)
            return
        messages = task_messages(
            self.spec, self.project, task, current, note=note, feedback=self._feedback.get(task.id, [])
        )
        prompt_tokens, prompt_exact = await self._count_prompt_tokens(messages)
        max_tokens = self._answer_budget(prompt_tokens)
        if max_tokens is None:
            error = self._prompt_error(task, prompt_tokens)
            self._stop_requested = None
            self._fail(task, error)
            yield ErrorOccurred(error, task)
            return

        task.state = TaskState.RUNNING
        self.journal.append("prompt", task_id=task.id, messages=messages, max_tokens=max_tokens, note=note)
        yield TaskStarted(task, prompt_tokens, prompt_exact, max_tokens, self.server.n_ctx)

        result = _StreamResult()
        result.max_tokens = max_tokens
        watcher = StreamWatcher(
            spec_language=spec_language(self.spec),
            reasoning_budget=self.settings.reasoning_budget,
            lang=self.lang,
            path=task.path,
        )
        extra = None
        if self.server.answer_grammar:
            extra = {"grammar": answer_grammar(task.path, fence_tag(self.spec), max_tokens)}
        try:
            async for event in self._stream(messages, max_tokens, prompt_tokens, prompt_exact, extra, result, watcher):
                yield event
        except (asyncio.CancelledError, GeneratorExit):
            # The consumer went away mid-answer (quit, Ctrl+C): what arrived is still journaled.
            result.stopped = True
            self._journal_answer(task, result)
            raise
        result.stream_findings = watcher.finish()
        if result.usage is not None and not prompt_exact and self._estimated_prompt_text:
            # The server's own count teaches the offline estimate this model's tokens-per-text ratio.
            overhead = TEMPLATE_TOKENS_PER_MESSAGE * len(messages)
            self.token_counter.calibrate(
                self._estimated_prompt_text, self.server.model, max(1, result.usage["prompt_tokens"] - overhead)
            )
        if watcher.stopped:
            # A loop was cut: keep the first complete answer, not the repetition after it.
            result.kept_answer = watcher.first_complete_answer()

        self._journal_answer(task, result)
        yield self._usage_event(result, exact=result.usage is not None)

        async for event in self._review(task, result):
            yield event

    async def _stream(
        self,
        messages: list[dict],
        max_tokens: int,
        prompt_tokens: int,
        prompt_exact: bool,
        extra: dict | None,
        result: _StreamResult,
        watcher: StreamWatcher,
    ) -> AsyncIterator[SessionEvent]:
        """Pump the client's stream into `result`, yielding text and usage until it ends or is stopped."""
        if self._stop_requested is None:
            self._stop_requested = asyncio.Event()
        queue: asyncio.Queue = asyncio.Queue()
        done = object()

        async def pump() -> None:
            try:
                async for stream_event in self.client.stream_chat(
                    messages,
                    model=self.server.model,
                    max_tokens=max_tokens,
                    temperature=self.settings.temperature,
                    extra=extra,
                    starts_in_reasoning=self.server.reasoning_starts_open,
                ):
                    await queue.put(stream_event)
            finally:
                await queue.put(done)

        pump_task = asyncio.create_task(pump())
        stop_wait = asyncio.create_task(self._stop_requested.wait())
        result.prompt_tokens = prompt_tokens
        result.prompt_exact = prompt_exact
        result.started = time.monotonic()
        last_usage = 0.0
        try:
            while True:
                get = asyncio.ensure_future(queue.get())
                finished, _ = await asyncio.wait({get, stop_wait}, return_when=asyncio.FIRST_COMPLETED)
                if get not in finished:
                    get.cancel()
                    result.stopped = True
                    break
                stream_event = get.result()
                if stream_event is done:
                    break
                text_event = result.absorb(stream_event)
                if text_event is not None:
                    yield text_event
                    now = time.monotonic()
                    if now - last_usage >= USAGE_INTERVAL:
                        last_usage = now
                        yield self._usage_event(result, exact=False)
                    feed = watcher.feed_reasoning if text_event.reasoning else watcher.feed_answer
                    if feed(text_event.text) is not None:
                        result.stopped = True
                        result.stopped_by_guard = True
                        break
                    if self._memory_would_run_out(result):
                        break
        finally:
            stop_wait.cancel()
            if not pump_task.done():
                pump_task.cancel()
            try:
                await pump_task
            except asyncio.CancelledError:
                pass
            self._stop_requested = None

    def _memory_would_run_out(self, result: _StreamResult) -> bool:
        """Record a stop when the next tokens would take memory past the budget; return whether to stop."""
        if self.server.budget is None:
            return False
        context_tokens = result.prompt_tokens + result.answer_chunks + result.reasoning_chunks
        reason = self.server.budget.check_stream(context_tokens)
        if reason is None:
            return False
        result.stopped = True
        result.stopped_by_guard = True
        result.stream_findings.append(
            Finding(
                kind="memory_stop",
                severity=Severity.WARN,
                message=translate(reason.key, self.lang, **reason.params()),
                feedback="Write a shorter file.",
            )
        )
        return True

    def _usage_event(self, result: _StreamResult, exact: bool) -> UsageUpdated:
        """Build a usage update from what the stream reported or what was counted."""
        if exact and result.usage is not None:
            prompt_tokens = result.usage["prompt_tokens"]
            completion_tokens = result.usage["completion_tokens"]
        else:
            prompt_tokens = result.prompt_tokens
            completion_tokens = result.answer_chunks + result.reasoning_chunks
        exact = (exact and result.usage is not None) or (result.prompt_exact and self._chunks_are_tokens())
        memory = {}
        if self.server.budget is not None:
            reading = self.server.budget.reading(
                prompt_tokens, result.reasoning_chunks, completion_tokens - result.reasoning_chunks,
                result.max_tokens or 0, exact,
            )
            memory = {
                "memory_bytes": reading.kv_bytes_now,
                "memory_bytes_at_cap": reading.kv_bytes_at_cap,
                "budget_bytes": reading.budget_bytes,
                "level": reading.level,
            }
        return UsageUpdated(
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            reasoning_tokens=result.reasoning_chunks,
            exact=exact,
            n_ctx=self.server.n_ctx,
            tokens_per_second=result.tokens_per_second(),
            **memory,
        )

    def _chunks_are_tokens(self) -> bool:
        """Return True when the server streams one token per chunk, so counting chunks counts tokens."""
        # NOTE: llama.cpp and llama-cpp-python hold back a token that ends inside a multi-byte
        # character and send it with the next one, so non-ASCII text can undercount by a few.
        dialect = self.server.report.dialect if self.server.report else None
        return dialect in (Dialect.LLAMA_CPP, Dialect.LLAMA_CPP_PYTHON)

    def _incomplete_finding(self, kind: str, feedback: str) -> Finding:
        """Return the warning for an answer that may be incomplete: stopped by the user, or cut at max_tokens."""
        return Finding(
            kind=kind,
            severity=Severity.WARN,
            message=translate(f"finding_{kind}", self.lang),
            feedback=feedback,
        )

    def _journal_answer(self, task: Task, result: _StreamResult) -> None:
        """Record everything one answer's stream delivered."""
        self.journal.append(
            "answer",
            task_id=task.id,
            text=result.answer,
            reasoning=result.reasoning,
            tool_calls=result.tool_calls,
            finish_reason=result.finish_reason,
            usage=result.usage,
            stopped=result.stopped,
        )

    async def _review(self, task: Task, result: _StreamResult) -> AsyncIterator[SessionEvent]:
        """Turn a finished stream into a proposal with findings, or into an error."""
        for finding in result.stream_findings:
            self.journal.append("finding", task_id=task.id, finding=finding)
        if result.failure is not None:
            for finding in result.stream_findings:
                yield FindingRaised(task, finding)
            error = await self._explain_failure(result.failure)
            self._fail(task, error)
            yield ErrorOccurred(error, task)
            return

        finished = FinishedStream(
            prompt_tokens_sent=result.prompt_tokens,
            prompt_tokens_exact=result.prompt_exact,
            n_ctx=self.server.n_ctx,
            usage_prompt_tokens=(result.usage or {}).get("prompt_tokens"),
            usage_completion_tokens=(result.usage or {}).get("completion_tokens"),
            finish_reason=result.finish_reason,
            answer=result.answer,
            reasoning=result.reasoning,
            max_tokens=result.max_tokens,
        )
        answer = result.kept_answer or result.answer
        if not answer.strip():
            for finding in result.stream_findings:
                yield FindingRaised(task, finding)
            error = None
            if result.stopped and not result.reasoning:
                error = SddtuiError("answer_stopped_empty", task=task.id)
            elif result.tool_calls:
                # An edit delivered as a tool call goes through the same parsing, guards and review.
                answer = tool_calls_as_answer(result.tool_calls) or ""
                if not answer:
                    names = ", ".join(str(call["name"]) for call in result.tool_calls.values())
                    error = SddtuiError("answer_tool_call", task=task.id, names=names)
            else:
                error = empty_answer_error(finished, task.id)
            if error is not None:
                self._fail(task, error)
                yield ErrorOccurred(error, task)
                return

        try:
            proposal = build_proposal(task, answer, self.project.directory, lang=self.lang)
        except SddtuiError as error:
            # A loop the watcher stopped is often why no file arrived, so its finding comes first.
            for finding in result.stream_findings:
                yield FindingRaised(task, finding)
            self._fail(task, error)
            yield ErrorOccurred(error, task)
            return

        proposal.findings.extend(check_proposal(proposal, task, self.spec, self.project, lang=self.lang))
        proposal.findings.extend(silent_failure_findings(finished, self.lang))
        proposal.findings.extend(result.stream_findings)
        if result.stopped and not result.stopped_by_guard:
            proposal.findings.append(self._incomplete_finding("stopped", "Write the complete file in one block."))
        elif result.finish_reason == "length" and not proposal.blocked:
            proposal.findings.append(self._incomplete_finding("length", "Keep the file short and write it completely."))

        self._feedback[task.id] = feedback_lines(proposal.findings)
        for finding in proposal.findings:
            if finding not in result.stream_findings:
                self.journal.append("finding", task_id=task.id, finding=finding)
            yield FindingRaised(task, finding)
        self.journal.append("proposal", task_id=task.id, proposal=proposal)
        self.proposals[task.id] = proposal
        task.state = TaskState.PROPOSED
        yield ProposalReady(task, proposal)

    def _fail(self, task: Task, error: SddtuiError) -> None:
        """Mark the task failed and record why."""
        task.state = TaskState.FAILED
        self.journal.append("error", task_id=task.id, key=error.key, error=error.render("en"))

    async def _explain_failure(self, error: SddtuiError) -> SddtuiError:
        """Probe the server after a stream was cut, so the message states whether the server is down."""
        return await explain_stream_cut(error, self.server.base_url, api_key=self.settings.api_key)

    async def _count_prompt_tokens(self, messages: list[dict]) -> tuple[int, bool]:
        """Count the prompt's tokens: exactly when the chat template and a tokenize route are known."""
        template = self.server.chat_template
        if template is not None:
            prompt = render_chat_prompt(
                template.template, messages, bos_token=template.bos_token, eos_token=template.eos_token
            )
            return await self.token_counter.count(self.client.count_tokens, prompt, self.server.model)
        text = "\n".join(str(message.get("content", "")) for message in messages)
        self._estimated_prompt_text = text
        count, _ = await self.token_counter.count(self.client.count_tokens, text, self.server.model)
        # Without the template, the tokens it adds around each message are estimated.
        return count + TEMPLATE_TOKENS_PER_MESSAGE * len(messages), False

    def _answer_budget(self, prompt_tokens: int) -> int | None:
        """Return max_tokens for an answer: the setting, lowered to what the context and memory allow."""
        budget = self.settings.max_answer_tokens
        if self.server.budget is not None:
            budget = min(budget, self.server.budget.max_tokens_for(prompt_tokens) - CONTEXT_MARGIN_TOKENS)
        elif self.server.n_ctx is not None:
            budget = min(budget, self.server.n_ctx - prompt_tokens - CONTEXT_MARGIN_TOKENS)
        return budget if budget >= MIN_ANSWER_TOKENS else None

    def _prompt_error(self, task: Task, prompt_tokens: int) -> SddtuiError:
        """Return why a prompt that leaves no room for an answer is not sent, with the numbers and ways out."""
        if self.server.budget is not None:
            problem = self.server.budget.check_prompt(prompt_tokens, MIN_ANSWER_TOKENS + CONTEXT_MARGIN_TOKENS)
            if problem is not None:
                return SddtuiError(problem.key, **problem.params())
        return SddtuiError(
            "prompt_too_large",
            task=task.id,
            prompt_tokens=prompt_tokens,
            n_ctx=self.server.n_ctx,
            needed=prompt_tokens + MIN_ANSWER_TOKENS + CONTEXT_MARGIN_TOKENS,
        )

    # Decisions

    async def approve(self, task: Task, proposal: Proposal) -> SessionEvent:
        """Write an approved proposal atomically, journaling the decision and the write first."""
        if proposal.blocked:
            kinds = ", ".join(sorted({finding.kind for finding in proposal.blocking_findings}))
            return ErrorOccurred(SddtuiError("approve_blocked", task=task.id, kinds=kinds), task)

        self.journal.append("decision", task_id=task.id, decision="approve", path=proposal.path)
        self.journal.append("write", task_id=task.id, path=proposal.path, bytes=len(proposal.new_content.encode()))
        try:
            written = apply_atomic(self.project.directory, proposal.path, proposal.new_content, proposal.old_sha256)
        except SddtuiError as error:
            self.journal.append("write_failed", task_id=task.id, path=proposal.path, error=error.render("en"))
            return ErrorOccurred(error, task)

        self.journal.append("applied", task_id=task.id, path=proposal.path, bytes=written)
        task.state = TaskState.APPLIED
        self._deferred.discard(task.id)
        return self._save_progress(task) or TaskApplied(task, proposal.path, written)

    async def reject(
        self, task: Task, proposal: Proposal | None, reason: str, *, final: bool = True
    ) -> TaskRejected | ErrorOccurred:
        """Record a rejection; nothing is written. A rejection that is not final leaves the task to a later run."""
        self.journal.append("decision", task_id=task.id, decision="reject", reason=reason, final=final)
        task.state = TaskState.REJECTED
        if not final:
            self._deferred.add(task.id)
        return self._save_progress(task) or TaskRejected(task, reason)

    def _save_progress(self, task: Task) -> ErrorOccurred | None:
        """Save the plan with its task states so a later run resumes; return the error when saving failed."""
        if self.plan is None:
            return None
        try:
            self._save_plan(self.plan)
        except SddtuiError as error:
            self.journal.append("error", task_id=task.id, key=error.key, error=error.render("en"))
            return ErrorOccurred(error, task)
        return None

    async def aclose(self) -> None:
        """Stop any stream, close the client and stop the embedded engine."""
        self.stop_stream()
        await self.client.aclose()
        if self.engine is not None:
            await self.engine.stop()
        self.journal.append("session_closed")
        if self.lock is not None:
            self.lock.release()


class _StreamResult:
    """The text, counts and outcome of one answer's stream, accumulated event by event."""

    def __init__(self) -> None:
        self.answer_parts: list[str] = []
        self.reasoning_parts: list[str] = []
        self.tool_calls: dict[int, dict] = {}
        self.answer_chunks = 0
        self.reasoning_chunks = 0
        self.usage: dict | None = None
        self.timings: dict | None = None
        self.finish_reason: str | None = None
        self.failure: SddtuiError | None = None
        self.stopped = False
        self.prompt_tokens = 0
        self.prompt_exact = False
        self.max_tokens: int | None = None
        self.stopped_by_guard = False
        self.stream_findings: list[Finding] = []
        self.kept_answer: str | None = None
        self.started = 0.0
        self.first_token_at: float | None = None

    @property
    def answer(self) -> str:
        return "".join(self.answer_parts)

    @property
    def reasoning(self) -> str:
        return "".join(self.reasoning_parts)

    def absorb(self, event) -> TextReceived | None:
        """Add one stream event; return the text event to show, if any."""
        match event:
            case AnswerDelta(text=text):
                self._mark_first_token()
                self.answer_parts.append(text)
                self.answer_chunks += 1
                return TextReceived(text)
            case ReasoningDelta(text=text):
                self._mark_first_token()
                self.reasoning_parts.append(text)
                self.reasoning_chunks += 1
                return TextReceived(text, reasoning=True)
            case ToolCallDelta(index=index, id=call_id, name=name, arguments=arguments):
                call = self.tool_calls.setdefault(index, {"id": None, "name": None, "arguments": ""})
                call["id"] = call["id"] or call_id
                call["name"] = call["name"] or name
                call["arguments"] += arguments
            case UsageReported(prompt_tokens=prompt, completion_tokens=completion, total_tokens=total):
                self.usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": total}
            case TimingsReported(values=values):
                self.timings = dict(values)
            case StreamFinished(reason=reason):
                self.finish_reason = reason
            case StreamFailed(error=error):
                self.failure = error
        return None

    def _mark_first_token(self) -> None:
        if self.first_token_at is None:
            self.first_token_at = time.monotonic()

    def tokens_per_second(self) -> float | None:
        """Return the generation speed: the server's own figure when it sent timings, else measured here."""
        if self.timings and self.timings.get("predicted_per_second"):
            return float(self.timings["predicted_per_second"])
        if self.first_token_at is None:
            return None
        elapsed = time.monotonic() - self.first_token_at
        count = self.answer_chunks + self.reasoning_chunks
        return count / elapsed if elapsed > 0 and count > 1 else None
