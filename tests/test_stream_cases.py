"""Check every recorded stream and error body from users of local model servers, decoded and through the client."""

import base64
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from loopback import LoopbackServer, loopback_server, reads_response, response_from_http_file, sse_response  # noqa: F401
from sddtui.llm.chunks import ChunkReader, ThinkSplitter
from sddtui.llm.client import ChatClient
from sddtui.llm.errors import CONTEXT_OVERFLOW_KEYS, read_error
from sddtui.llm.events import (
    AnswerDelta,
    KeepaliveReceived,
    ReasoningDelta,
    StreamFailed,
    StreamFinished,
    TimingsReported,
    ToolCallDelta,
    UsageReported,
)
from sddtui.llm.sse import SseDecoder

SHARED_CASES = Path(__file__).resolve().parent.parent.parent / "shared" / "cases"
STREAMS = SHARED_CASES / "streams"
ERRORS = SHARED_CASES / "errors"


@dataclass
class Outcome:
    """What a stream amounted to, gathered from its events."""

    answer: str = ""
    reasoning: str = ""
    tool_arguments: dict[int, str] = field(default_factory=dict)
    tool_names: dict[int, str] = field(default_factory=dict)
    usage: UsageReported | None = None
    timings: dict[str, float] | None = None
    keepalives: list[KeepaliveReceived] = field(default_factory=list)
    end: str = "open"
    error_key: str | None = None
    error_params: dict = field(default_factory=dict)
    events_after_end: int = 0


def summarize(events) -> Outcome:
    """Gather a list of stream events into an Outcome."""
    outcome = Outcome()
    for event in events:
        if outcome.end != "open":
            outcome.events_after_end += 1
        match event:
            case AnswerDelta(text):
                outcome.answer += text
            case ReasoningDelta(text):
                outcome.reasoning += text
            case ToolCallDelta(index, _id, name, arguments):
                outcome.tool_arguments[index] = outcome.tool_arguments.get(index, "") + arguments
                if name:
                    outcome.tool_names[index] = name
            case UsageReported():
                outcome.usage = event
            case TimingsReported(values):
                outcome.timings = values
            case KeepaliveReceived():
                outcome.keepalives.append(event)
            case StreamFinished(reason):
                outcome.end = f"finished:{reason}"
            case StreamFailed(error):
                outcome.end = "failed"
                outcome.error_key = error.key
                outcome.error_params = error.params
    return outcome


def decode_reads(reads: list[bytes]) -> Outcome:
    """Run reads through the SSE decoder and the chunk reader, as the client does, without HTTP."""
    decoder = SseDecoder()
    reader = ChunkReader()
    events = []
    for read in reads:
        for item in decoder.feed(read):
            events += reader.read(item)
    for item in decoder.flush():
        events += reader.read(item)
    events += reader.end()
    return summarize(events)


async def stream_through_client(server: LoopbackServer, response) -> Outcome:
    """Serve `response` on the loopback server and return what the real client made of it."""
    server.route("POST", "/v1/chat/completions", response)
    async with ChatClient(server.url) as client:
        events = [
            event
            async for event in client.stream_chat([{"role": "user", "content": "x"}], model="m", max_tokens=64)
        ]
    return summarize(events)


def read_reads_file(name: str) -> tuple[list[bytes], dict]:
    """Return the reads of a `.reads.json` case and its document."""
    document = json.loads((STREAMS / name).read_text(encoding="utf-8"))
    return [base64.b64decode(read) for read in document["reads_b64"]], document


THINK_DRAFT = "Draft:\n```python\ndef add(a, b): pass\n```\n"
THINK_ANSWER = "\n\n```python\ndef add(a, b):\n    return a + b\n```\n"

# Expected outcome of each `.sse` case when the stream ends where the file ends. A stream with no
# finish reason and no [DONE] is "truncated". The client reports it, and the decoder alone leaves it open.
SSE_CASES = {
    "context-shifted-usage.sse": dict(usage=(2100, 2600, 4700), end="finished:unknown"),
    "edit-as-tool-call.sse": dict(end="finished:tool_calls", tool_name="write_file"),
    "empty-reply.sse": dict(answer="", end="finished:stop"),
    "error-as-data-frame.sse": dict(end="failed", error_key="llm.context_overflow_unsized"),
    "keepalive-comments.sse": dict(answer="```python\n", end="truncated", progress=(2048, 8192)),
    "reasoning-content-field.sse": dict(
        answer="```python\n", reasoning="The spec wants add() to handle None", end="truncated"
    ),
    "reasoning-field.sse": dict(answer="", reasoning="Let me check the spec.", end="truncated"),
    "reasoning-only-reply.sse": dict(answer="", reasoning="...4096 tokens of thinking...", end="finished:length"),
    "text-in-finish-chunk.sse": dict(answer=" b\n", end="finished:length"),
    "think-tags-split.sse": dict(answer=THINK_ANSWER, reasoning=THINK_DRAFT, end="truncated"),
    "thinking-without-delimiter.sse": dict(
        answer="Here's a thinking process:\n1. The file needs add().\n```python\ndef add(a, b):\n    return a + b\n```\n",
        reasoning="",
        end="truncated",
    ),
    "usage-in-empty-choices-chunk.sse": dict(
        answer="    return a + b\n```\n", usage=(75, 31, 106), end="finished:stop", timings_speed=35.41
    ),
}


def check_outcome(outcome: Outcome, expected: dict, *, through_client: bool) -> None:
    """Assert that an Outcome matches one row of SSE_CASES."""
    if expected["end"] == "truncated":
        if through_client:
            assert outcome.end == "failed"
            assert outcome.error_key == "llm.stream_truncated"
        else:
            assert outcome.end == "open"
    else:
        assert outcome.end == expected["end"]
    assert outcome.events_after_end == 0

    if "answer" in expected:
        assert outcome.answer == expected["answer"]
    if "reasoning" in expected:
        assert outcome.reasoning == expected["reasoning"]
    if "error_key" in expected:
        assert outcome.error_key == expected["error_key"]
    if "usage" in expected:
        assert outcome.usage == UsageReported(*expected["usage"])
    if "timings_speed" in expected:
        assert outcome.timings["predicted_per_second"] == expected["timings_speed"]
    if "progress" in expected:
        assert [keepalive.progress for keepalive in outcome.keepalives if keepalive.progress] == [expected["progress"]]
    if "tool_name" in expected:
        assert outcome.tool_names == {0: expected["tool_name"]}
        assert json.loads(outcome.tool_arguments[0]) == {
            "path": "src/calc.py",
            "content": "def add(a, b):\n    return a + b\n",
        }


def test_every_sse_case_has_expectation():
    assert sorted(path.name for path in STREAMS.glob("*.sse")) == sorted(SSE_CASES)


@pytest.mark.parametrize("name", sorted(SSE_CASES))
def test_sse_case_decoded(name):
    body = (STREAMS / name).read_bytes()
    check_outcome(decode_reads([body]), SSE_CASES[name], through_client=False)


@pytest.mark.parametrize("name", sorted(SSE_CASES))
def test_sse_case_split_everywhere(name):
    body = (STREAMS / name).read_bytes()
    expected = decode_reads([body])
    for split_at in range(len(body) + 1):
        assert decode_reads([body[:split_at], body[split_at:]]) == expected, f"split at byte {split_at}"


@pytest.mark.parametrize("name", sorted(SSE_CASES))
async def test_sse_case_through_client(loopback_server, name):
    body = (STREAMS / name).read_bytes()
    outcome = await stream_through_client(loopback_server, sse_response(body, delay=0.005))
    check_outcome(outcome, SSE_CASES[name], through_client=True)


async def test_sse_case_byte_reads_through_client(loopback_server):
    body = (STREAMS / "usage-in-empty-choices-chunk.sse").read_bytes()
    pieces = [body[index : index + 7] for index in range(0, len(body), 7)]
    outcome = await stream_through_client(loopback_server, sse_response(body, pieces=pieces, delay=0.001))
    check_outcome(outcome, SSE_CASES["usage-in-empty-choices-chunk.sse"], through_client=True)


@pytest.mark.parametrize("name", ["crlf-ping.reads.json", "event-split-mid-json.reads.json"])
def test_reads_case_decoded(name):
    reads, document = read_reads_file(name)
    outcome = decode_reads(reads)
    assert outcome.answer == document["expected_content"]


@pytest.mark.parametrize("name", ["crlf-ping.reads.json", "event-split-mid-json.reads.json"])
async def test_reads_case_through_client(loopback_server, name):
    response, document = reads_response(STREAMS / name)
    outcome = await stream_through_client(loopback_server, response)
    assert outcome.answer == document["expected_content"]


async def test_crlf_ping_is_keepalive(loopback_server):
    response, _document = reads_response(STREAMS / "crlf-ping.reads.json")
    outcome = await stream_through_client(loopback_server, response)
    assert [keepalive.comment for keepalive in outcome.keepalives] == ["ping - 2025-01-01 00:00:00.000000"]
    assert outcome.error_key == "llm.stream_truncated"


async def test_split_done_finishes_stream(loopback_server):
    response, _document = reads_response(STREAMS / "event-split-mid-json.reads.json")
    outcome = await stream_through_client(loopback_server, response)
    assert outcome.end == "finished:unknown"


async def test_error_as_sse_field_fails(loopback_server):
    response = response_from_http_file(STREAMS / "error-as-sse-field.http")
    outcome = await stream_through_client(loopback_server, response)
    assert outcome.end == "failed"
    assert outcome.error_key in CONTEXT_OVERFLOW_KEYS
    assert outcome.events_after_end == 0


async def test_lmstudio_event_error_fails_with_numbers(loopback_server):
    response = response_from_http_file(STREAMS / "lmstudio-event-error.http")
    outcome = await stream_through_client(loopback_server, response)
    assert outcome.error_key == "llm.context_overflow"
    assert outcome.error_params["requested_tokens"] == 31430
    assert outcome.error_params["n_ctx"] == 30000


def test_error_then_done_stays_failed():
    reader = ChunkReader()
    decoder = SseDecoder()
    events = []
    for item in decoder.feed(b'data: {"error":"Context size has been exceeded."}\n\ndata: [DONE]\n\n'):
        events += reader.read(item)
    events += reader.end()
    outcome = summarize(events)
    assert outcome.end == "failed"
    assert outcome.events_after_end == 0


def test_finish_comes_after_usage():
    body = (STREAMS / "usage-in-empty-choices-chunk.sse").read_bytes()
    decoder = SseDecoder()
    reader = ChunkReader()
    events = [event for item in decoder.feed(body) for event in reader.read(item)]
    assert isinstance(events[-1], StreamFinished)
    assert isinstance(events[-3], UsageReported)


def test_invalid_chunk_fails():
    reader = ChunkReader()
    (item,) = SseDecoder().feed(b"data: <html>\n\n")
    (event,) = reader.read(item)
    assert isinstance(event, StreamFailed)
    assert event.error.key == "llm.invalid_chunk"


def test_cut_final_event_is_not_invalid():
    decoder = SseDecoder()
    reader = ChunkReader()
    decoder.feed(b'data: {"choices":[{"index":0,"delta":{"content":"a')
    events = [event for item in decoder.flush() for event in reader.read(item)]
    assert events == []
    assert reader.closed is False


# Think splitter -----------------------------------------------------------------------------


def split_think(deltas: list[str], **options) -> tuple[str, str, ThinkSplitter]:
    """Run deltas through a ThinkSplitter; return the reasoning, the answer and the splitter."""
    splitter = ThinkSplitter(**options)
    events = [event for delta in deltas for event in splitter.feed(delta)] + splitter.flush()
    outcome = summarize(events)
    return outcome.reasoning, outcome.answer, splitter


def test_think_split_at_every_point():
    content = "<think>" + THINK_DRAFT + "</think>" + THINK_ANSWER
    for split_at in range(len(content) + 1):
        reasoning, answer, _splitter = split_think([content[:split_at], content[split_at:]])
        assert reasoning == THINK_DRAFT, f"split at {split_at}"
        assert answer == THINK_ANSWER, f"split at {split_at}"


def test_think_one_character_deltas():
    content = "\n<think>plan</think>code"
    reasoning, answer, _splitter = split_think(list(content))
    assert reasoning == "plan"
    assert answer == "code"


def test_bare_close_tag_dropped():
    reasoning, answer, splitter = split_think(["I should add a", " function.</th", "ink>\ndef f(): pass"])
    assert reasoning == ""
    assert answer == "I should add a function.\ndef f(): pass"
    assert splitter.bare_close_seen is True


def test_starts_in_reasoning_option():
    reasoning, answer, splitter = split_think(["I should add", "</think>def f(): pass"], starts_in_reasoning=True)
    assert reasoning == "I should add"
    assert answer == "def f(): pass"
    assert splitter.bare_close_seen is False


def test_tags_after_block_are_text():
    reasoning, answer, _splitter = split_think(["<think>a</think>b = '<think>'", " + '</think>'"])
    assert reasoning == "a"
    assert answer == "b = '<think>' + '</think>'"


def test_open_tag_only_at_start():
    reasoning, answer, _splitter = split_think(["x = 1\n<think>y</think>"])
    assert reasoning == ""
    assert answer == "x = 1\n<think>y"


def test_lookalike_tag_is_answer():
    reasoning, answer, _splitter = split_think(["<thinker>", " ok"])
    assert reasoning == ""
    assert answer == "<thinker> ok"


def test_unclosed_think_flushed_as_reasoning():
    reasoning, answer, _splitter = split_think(["<think>still thinking </thi"])
    assert reasoning == "still thinking </thi"
    assert answer == ""


# Error bodies -------------------------------------------------------------------------------

ERROR_CASES = {
    "llama-cpp-python-context-exceeded.json": ("llm.context_overflow", {"requested_tokens": 3042, "n_ctx": 2048}),
    "llama-server-exceed-context.json": ("llm.context_overflow", {"requested_tokens": 33056, "n_ctx": 32768}),
    "lmstudio-mid-generation.txt": ("llm.context_overflow_at_limit", {"n_ctx": 4096}),
    "lmstudio-string-error-exceeded.json": ("llm.context_overflow_unsized", {}),
    "lmstudio-string-error-n-keep.json": ("llm.context_overflow", {"requested_tokens": 13055, "n_ctx": 4096}),
}


def test_every_error_case_has_expectation():
    assert sorted(path.name for path in ERRORS.iterdir()) == sorted(ERROR_CASES)


@pytest.mark.parametrize("name", sorted(ERROR_CASES))
@pytest.mark.parametrize("status", [400, 500, 200, None])
def test_error_case_classified(name, status):
    key, numbers = ERROR_CASES[name]
    error = read_error(status, (ERRORS / name).read_bytes())
    assert error.key == key
    for param, value in numbers.items():
        assert error.params[param] == value


@pytest.mark.parametrize("name", sorted(ERROR_CASES))
@pytest.mark.parametrize("lang", ["en", "ja"])
def test_error_case_message_shows_numbers(name, lang):
    _key, numbers = ERROR_CASES[name]
    message = read_error(400, (ERRORS / name).read_text(encoding="utf-8")).render(lang)
    for value in numbers.values():
        assert str(value) in message
    assert "n_ctx" in message


@pytest.mark.parametrize(
    ("status", "body", "key"),
    [
        (500, "CUDA error: out of memory", "llm.out_of_memory"),
        (None, '{"error":"[METAL] Command buffer execution failed: Insufficient Memory (kIOGPUCommandBufferCallbackErrorOutOfMemory)"}', "llm.out_of_memory"),
        (500, '{"error":{"message":"ggml_backend_cuda_buffer_type_alloc_buffer: failed to allocate 2048 MiB"}}', "llm.out_of_memory"),
        (503, '{"error":{"code":503,"message":"Loading model","type":"unavailable_error"}}', "llm.model_loading"),
        (404, '{"error":{"message":"The model `qwen` does not exist.","type":"NotFoundError","code":404}}', "llm.model_not_found"),
        (404, '{"error":"model \\"qwen\\" not found, try pulling it first"}', "llm.model_not_found"),
        (400, '{"error":"No models loaded. Please load a model in the developer page."}', "llm.model_not_found"),
        (404, '{"detail":"Not Found"}', "llm.endpoint_not_found"),
        (401, '{"error":{"message":"Invalid API Key","type":"invalid_request_error"}}', "llm.unauthorized"),
        (422, '{"detail":[{"loc":["body","messages"],"msg":"Field required","type":"missing"}]}', "llm.bad_request"),
        (400, '{"message":"temperature must be positive"}', "llm.bad_request"),
        (502, "Bad Gateway", "llm.server_failure"),
        (500, "", "llm.server_failure"),
        (None, '{"error":{"message":"decode failed","type":"server_error"}}', "llm.stream_error"),
        (400, '{"error":{"message":"the request exceeds the available context size, try increasing it"}}', "llm.context_overflow_unsized"),
    ],
)
def test_error_body_classified(status, body, key):
    assert read_error(status, body).key == key


def test_error_detail_from_fastapi_list():
    error = read_error(422, '{"detail":[{"loc":["body","messages"],"msg":"Field required"}]}')
    assert error.params["detail"] == "body.messages: Field required"


def test_error_detail_from_top_level_message():
    error = read_error(200, '{"error":{"code":1},"message":"Reached context length of 8192 tokens"}')
    assert error.key == "llm.context_overflow_at_limit"
    assert error.params["n_ctx"] == 8192


def test_error_detail_cut_short():
    error = read_error(500, "x" * 5000)
    assert len(error.params["detail"]) <= 600
    assert error.params["detail"].endswith("…")


def test_empty_error_body_named():
    error = read_error(500, b"")
    assert error.params["detail"] == "(empty body)"
    assert "500" in error.render("en")
