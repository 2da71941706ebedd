"""Check the checks of a finished stream: truncation, context shift, cut blocks, empty answers, dead servers."""

import pytest

from loopback import TRANSCRIPTS, LlamaCppPythonStream, LoopbackServer, ScriptedResponse, loopback_server, replay_transcripts  # noqa: F401
from sddtui.errors import SddtuiError
from sddtui.llm.client import ChatClient
from sddtui.llm.embedded import free_loopback_port
from sddtui.llm.errors import read_error
from sddtui.llm.events import AnswerDelta, KeepaliveReceived, StreamFailed, StreamFinished, UsageReported
from sddtui.llm.silent import FinishedStream, empty_answer_error, explain_stream_cut, silent_failure_findings

ANSWER = "src/calc.py\n```python\ndef add(a, b):\n    return a + b\n```\n"


def finished(**changes) -> FinishedStream:
    values = dict(
        prompt_tokens_sent=3000, prompt_tokens_exact=True, n_ctx=8192, usage_prompt_tokens=3000,
        usage_completion_tokens=40, finish_reason="stop", answer=ANSWER, reasoning="", max_tokens=1024,
    )
    values.update(changes)
    return FinishedStream(**values)


def kinds(stream: FinishedStream) -> list[str]:
    return [finding.kind for finding in silent_failure_findings(stream)]


def test_clean_stream_has_no_findings():
    assert kinds(finished()) == []


def test_prompt_truncation_found():
    findings = silent_failure_findings(finished(usage_prompt_tokens=2048, n_ctx=None))

    assert [finding.kind for finding in findings] == ["prompt_truncated"]
    assert findings[0].severity == "block"
    assert "2048" in findings[0].message
    assert "3000" in findings[0].message


def test_estimated_prompt_gets_looser_threshold():
    assert kinds(finished(usage_prompt_tokens=2000, prompt_tokens_exact=False)) == []
    assert kinds(finished(usage_prompt_tokens=1400, prompt_tokens_exact=False)) == ["prompt_truncated"]


def test_short_prompt_not_checked():
    assert kinds(finished(prompt_tokens_sent=200, usage_prompt_tokens=20)) == []


def test_context_shift_found():
    findings = silent_failure_findings(finished(usage_prompt_tokens=3000, usage_completion_tokens=5300))

    assert [finding.kind for finding in findings] == ["context_shifted"]
    assert "8300" in findings[0].message
    assert "8192" in findings[0].message


def test_context_shift_needs_known_n_ctx():
    assert kinds(finished(n_ctx=None, usage_completion_tokens=9000)) == []


def test_stop_mid_block_found():
    cut = "src/calc.py\n```python\ndef add(a, b):\n"

    assert kinds(finished(answer=cut)) == ["stop_mid_block"]
    assert kinds(finished(answer=cut, finish_reason="length")) == []


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_findings_rendered_in_language(lang):
    findings = silent_failure_findings(finished(usage_prompt_tokens=3000, usage_completion_tokens=5300), lang)

    assert findings[0].message
    assert ("コンテキスト" in findings[0].message) is (lang == "ja")


def test_empty_answer_near_limit():
    error = empty_answer_error(finished(answer="", prompt_tokens_sent=7900), "T1")

    assert error.key == "silent.empty_near_limit"
    assert "7900" in error.render("en")
    assert "8192" in error.render("en")


def test_empty_answer_far_from_limit():
    error = empty_answer_error(finished(answer="", prompt_tokens_sent=900), "T1")

    assert error.key == "silent.empty"


def test_reasoning_only_offers_retry():
    error = empty_answer_error(finished(answer="", reasoning="thinking " * 50, finish_reason="length"), "T1")

    assert error.key == "silent.reasoning_only"
    text = error.render("en")
    assert "1024" in text
    assert "--max-answer-tokens" in text
    assert "length" in text


async def test_cut_stream_server_down():
    port = free_loopback_port()
    cut = SddtuiError("llm.stream_truncated", url=f"http://127.0.0.1:{port}/v1")

    error = await explain_stream_cut(cut, f"http://127.0.0.1:{port}")

    assert error.key == "silent.server_down"
    assert str(port) in error.render("en")


async def test_cut_stream_server_still_up(loopback_server: LoopbackServer):
    replay_transcripts(loopback_server, TRANSCRIPTS / "llama-cpp-python")
    cut = SddtuiError("llm.connection_dropped", url=loopback_server.url, reason="x")

    error = await explain_stream_cut(cut, loopback_server.url + "/v1/")

    assert error.key == "silent.stream_cut_server_up"
    assert error.params["status"] == 200


async def test_other_errors_not_probed():
    overflow = read_error(400, '{"error": "context length exceeded"}')

    assert await explain_stream_cut(overflow, "http://127.0.0.1:9") is overflow


async def test_server_death_mid_stream(loopback_server: LoopbackServer):
    stream = LlamaCppPythonStream()
    loopback_server.route("POST", "/v1/chat/completions", stream.response(["src/calc.py\n", "```python\n"], drop_after=2))
    async with ChatClient(loopback_server.url) as client:
        events = [event async for event in client.stream_chat([{"role": "user", "content": "x"}], model="m", max_tokens=64)]
    await loopback_server.stop()

    failure = events[-1]
    assert isinstance(failure, StreamFailed)
    explained = await explain_stream_cut(failure.error, loopback_server.url)
    assert explained.key == "silent.server_down"


async def test_keepalive_comments_reset_read_timeout(loopback_server: LoopbackServer):
    stream = LlamaCppPythonStream()
    pieces = [b": keepalive 1/4\n\n", b": keepalive 2/4\n\n", b": keepalive 3/4\n\n", b": keepalive 4/4\n\n"]
    pieces += stream.events(["done"])
    loopback_server.route(
        "POST", "/v1/chat/completions",
        ScriptedResponse(headers=[("content-type", "text/event-stream")], pieces=pieces, delay=0.2),
    )

    # Each piece comes 0.2 s after the last, the whole stream takes 1.4 s, and the timeout is 0.5 s.
    async with ChatClient(loopback_server.url, timeout=0.5) as client:
        events = [event async for event in client.stream_chat([{"role": "user", "content": "x"}], model="m", max_tokens=8)]

    assert [event.progress for event in events if isinstance(event, KeepaliveReceived)][-1] == (4, 4)
    assert events[-1] == StreamFinished("stop")


async def test_stall_without_bytes_times_out(loopback_server: LoopbackServer):
    stream = LlamaCppPythonStream()
    loopback_server.route(
        "POST", "/v1/chat/completions",
        ScriptedResponse(headers=[("content-type", "text/event-stream")], pieces=stream.events(["a", "b"]), delay=0.8),
    )

    async with ChatClient(loopback_server.url, timeout=0.3) as client:
        events = [event async for event in client.stream_chat([{"role": "user", "content": "x"}], model="m", max_tokens=8)]

    assert isinstance(events[-1], StreamFailed)
    assert events[-1].error.key == "llm.read_timeout"


async def test_ollama_truncation_from_transcript(loopback_server: LoopbackServer):
    replay_transcripts(loopback_server, TRANSCRIPTS / "ollama", read_size=37)
    async with ChatClient(loopback_server.url) as client:
        events = [event async for event in client.stream_chat([{"role": "user", "content": "x"}], model="m", max_tokens=64)]
    usage = next(event for event in events if isinstance(event, UsageReported))
    answer = "".join(event.text for event in events if isinstance(event, AnswerDelta))

    stream = finished(
        prompt_tokens_sent=6200, n_ctx=4096, usage_prompt_tokens=usage.prompt_tokens,
        usage_completion_tokens=usage.completion_tokens, answer=answer,
    )

    assert "prompt_truncated" in kinds(stream)


async def test_mlx_cut_block_from_transcript(loopback_server: LoopbackServer):
    replay_transcripts(loopback_server, TRANSCRIPTS / "mlx_lm", read_size=11)
    async with ChatClient(loopback_server.url) as client:
        events = [event async for event in client.stream_chat([{"role": "user", "content": "x"}], model="m", max_tokens=64)]
    answer = "".join(event.text for event in events if isinstance(event, AnswerDelta))

    assert events[-1] == StreamFinished("stop")
    assert kinds(finished(answer=answer, usage_prompt_tokens=None, usage_completion_tokens=None)) == ["stop_mid_block"]
