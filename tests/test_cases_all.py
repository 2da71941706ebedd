"""Check that every failure case from users of local servers gives the behaviour it calls for.

Most stream and error cases are checked in test_stream_cases.py, test_client.py and
test_parse_answer.py; this file adds the behaviours those leave to the session: an empty answer,
an all-reasoning answer, a shifted context and an edit sent as a tool call.
"""

import json
from pathlib import Path

import pytest

from loopback import LoopbackServer, loopback_server, sse_response  # noqa: F401
from sddtui.edits.proposal import build_proposal
from sddtui.errors import SddtuiError
from sddtui.llm.chunks import tool_calls_as_answer
from sddtui.llm.client import ChatClient
from sddtui.llm.events import ReasoningDelta, StreamFinished, ToolCallDelta, UsageReported
from sddtui.llm.silent import FinishedStream, empty_answer_error, silent_failure_findings
from sddtui.tasks.model import Task, TaskAction

SHARED_CASES = Path(__file__).resolve().parent.parent.parent / "shared" / "cases"

# Where each case's behaviour is checked: a test module, and this file for the rows it adds.
CASE_TESTS = {
    "errors/llama-cpp-python-context-exceeded.json": "test_stream_cases.py",
    "errors/llama-server-exceed-context.json": "test_stream_cases.py",
    "errors/lmstudio-mid-generation.txt": "test_stream_cases.py",
    "errors/lmstudio-string-error-exceeded.json": "test_stream_cases.py",
    "errors/lmstudio-string-error-n-keep.json": "test_stream_cases.py",
    "outputs/decorated-paths.md": "test_proposal.py",
    "outputs/edit-as-xml-tool-call.txt": "test_cases_all.py",
    "outputs/elided-rewrite.original.py": "test_parse_answer.py",
    "outputs/elided-rewrite.reply.md": "test_parse_answer.py",
    "outputs/nested-fences-readme.md": "test_proposal.py",
    "streams/context-shifted-usage.sse": "test_cases_all.py",
    "streams/crlf-ping.reads.json": "test_stream_cases.py",
    "streams/edit-as-tool-call.sse": "test_cases_all.py",
    "streams/empty-reply.sse": "test_cases_all.py",
    "streams/error-as-data-frame.sse": "test_stream_cases.py",
    "streams/error-as-sse-field.http": "test_stream_cases.py",
    "streams/event-split-mid-json.reads.json": "test_stream_cases.py",
    "streams/keepalive-comments.sse": "test_stream_cases.py",
    "streams/lmstudio-event-error.http": "test_stream_cases.py",
    "streams/reasoning-content-field.sse": "test_stream_cases.py",
    "streams/reasoning-field.sse": "test_stream_cases.py",
    "streams/reasoning-only-reply.sse": "test_cases_all.py",
    "streams/text-in-finish-chunk.sse": "test_stream_cases.py",
    "streams/think-tags-split.sse": "test_stream_cases.py",
    "streams/thinking-without-delimiter.sse": "test_stream_cases.py",
    "streams/usage-in-empty-choices-chunk.sse": "test_stream_cases.py",
}


def test_every_case_has_a_test():
    found = {
        path.relative_to(SHARED_CASES).as_posix()
        for path in SHARED_CASES.rglob("*")
        if path.is_file() and path.name != "README.md"
    }

    assert found == set(CASE_TESTS)


@pytest.mark.parametrize("case, module", sorted(CASE_TESTS.items()))
def test_case_named_in_its_test_module(case, module):
    source = (Path(__file__).resolve().parent / module).read_text(encoding="utf-8")
    name = Path(case).name

    assert name in source or Path(case).parent.name in source


async def stream_case(server: LoopbackServer, name: str) -> list:
    """Serve one `.sse` case and return the client's events."""
    server.route("POST", "/v1/chat/completions", sse_response((SHARED_CASES / "streams" / name).read_bytes()))
    async with ChatClient(server.url) as client:
        return [event async for event in client.stream_chat([{"role": "user", "content": "x"}], model="m", max_tokens=4096)]


def task(path: str = "src/calc.py") -> Task:
    return Task(id="T1", path=path, action=TaskAction.CREATE, requirement_ids=["FUNC-1"], instruction="Add add().")


@pytest.mark.parametrize("prompt_tokens, key", [(3900, "silent.empty_near_limit"), (600, "silent.empty")])
async def test_empty_reply_reported(loopback_server: LoopbackServer, prompt_tokens, key):
    events = await stream_case(loopback_server, "empty-reply.sse")
    finish = events[-1]

    stream = FinishedStream(
        prompt_tokens_sent=prompt_tokens, prompt_tokens_exact=True, n_ctx=4096, usage_prompt_tokens=None,
        usage_completion_tokens=None, finish_reason=finish.reason, answer="",
    )
    error = empty_answer_error(stream, "T1")

    assert finish == StreamFinished("stop")
    assert error.key == key
    assert "empty" in error.render("en")


async def test_reasoning_only_reply_offers_retry(loopback_server: LoopbackServer):
    events = await stream_case(loopback_server, "reasoning-only-reply.sse")
    reasoning = "".join(event.text for event in events if isinstance(event, ReasoningDelta))

    stream = FinishedStream(
        prompt_tokens_sent=500, prompt_tokens_exact=True, n_ctx=8192, usage_prompt_tokens=None,
        usage_completion_tokens=None, finish_reason=events[-1].reason, answer="", reasoning=reasoning,
        max_tokens=4096,
    )
    error = empty_answer_error(stream, "T1")

    assert error.key == "silent.reasoning_only"
    for lang in ("en", "ja"):
        text = error.render(lang)
        assert "4096" in text
        assert "--max-answer-tokens" in text


async def test_context_shifted_usage_blocks_approval(loopback_server: LoopbackServer, tmp_path):
    events = await stream_case(loopback_server, "context-shifted-usage.sse")
    usage = next(event for event in events if isinstance(event, UsageReported))
    answer = "src/calc.py\n```python\ndef add(a, b):\n    return a + b\n```\n"
    stream = FinishedStream(
        prompt_tokens_sent=2100, prompt_tokens_exact=True, n_ctx=4096, usage_prompt_tokens=usage.prompt_tokens,
        usage_completion_tokens=usage.completion_tokens, finish_reason="stop", answer=answer,
    )

    proposal = build_proposal(task(), answer, tmp_path)
    assert not proposal.blocked
    proposal.findings.extend(silent_failure_findings(stream))

    assert [finding.kind for finding in proposal.findings] == ["context_shifted"]
    assert proposal.blocked
    assert "4700" in proposal.findings[0].message


async def test_streamed_tool_call_becomes_proposal(loopback_server: LoopbackServer, tmp_path):
    events = await stream_case(loopback_server, "edit-as-tool-call.sse")
    calls: dict[int, dict] = {}
    for event in events:
        if isinstance(event, ToolCallDelta):
            call = calls.setdefault(event.index, {"id": None, "name": None, "arguments": ""})
            call["name"] = call["name"] or event.name
            call["arguments"] += event.arguments

    answer = tool_calls_as_answer(calls)
    proposal = build_proposal(task(), answer, tmp_path)

    assert events[-1] == StreamFinished("tool_calls")
    assert proposal.path == "src/calc.py"
    assert proposal.new_content == "def add(a, b):\n    return a + b\n"
    assert not proposal.blocked


def test_tool_call_outside_task_goes_through_guards(tmp_path):
    calls = {0: {"id": "c", "name": "write_file", "arguments": json.dumps({"path": "../etc/passwd", "content": "x\n"})}}

    answer = tool_calls_as_answer(calls)

    # The same rule as for a fenced block: only the task's own file becomes a proposal.
    with pytest.raises(SddtuiError) as raised:
        build_proposal(task(), answer, tmp_path)
    assert raised.value.key == "answer_other_files"
    assert "../etc/passwd" in str(raised.value)
    assert list(tmp_path.iterdir()) == []


def test_unreadable_tool_call_rejected():
    calls = {0: {"id": "c", "name": "run_shell", "arguments": "rm -rf"}}

    assert tool_calls_as_answer(calls) is None


def test_xml_tool_call_text_becomes_proposal(tmp_path):
    answer = (SHARED_CASES / "outputs" / "edit-as-xml-tool-call.txt").read_text(encoding="utf-8")

    proposal = build_proposal(task(), answer, tmp_path)

    assert proposal.path == "src/calc.py"
    assert proposal.new_content == "def add(a, b):\n    return a + b\n"
