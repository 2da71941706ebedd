"""Check the streaming chat client against the scripted loopback server and captures of llama-cpp-python."""

import asyncio
import json
import socket
from contextlib import aclosing
from pathlib import Path

import pytest

from loopback import (  # noqa: F401
    TRANSCRIPTS,
    LlamaCppPythonStream,
    ScriptedResponse,
    json_response,
    loopback_server,
    response_from_http_file,
    split_events,
)
from sddtui.errors import SddtuiError
from sddtui.llm.client import ChatClient, normalize_base_url
from sddtui.llm.events import AnswerDelta, StreamFailed, StreamFinished

ERRORS = Path(__file__).resolve().parent.parent.parent / "shared" / "cases" / "errors"
MESSAGES = [{"role": "user", "content": "Write add(a, b)."}]
PLAN_SCHEMA = {"type": "object", "properties": {"tasks": {"type": "array", "items": {"type": "string"}}}}


async def collect(client: ChatClient, **options) -> list:
    """Return every event of one stream_chat call."""
    options.setdefault("model", "m")
    options.setdefault("max_tokens", 64)
    return [event async for event in client.stream_chat(MESSAGES, **options)]


def answer_of(events: list) -> str:
    """Return the answer text of a list of events."""
    return "".join(event.text for event in events if isinstance(event, AnswerDelta))


def capture_body(name: str) -> bytes:
    """Return the body of a captured `.http` transcript."""
    return (TRANSCRIPTS / name).read_bytes().split(b"\r\n\r\n", 1)[1]


def capture_contents(name: str) -> list[str]:
    """Return the content deltas of a captured stream, read with json alone."""
    contents = []
    for line in capture_body(name).split(b"\n"):
        if line.startswith(b"data: {"):
            delta = json.loads(line[len(b"data: ") :])["choices"][0]["delta"]
            if "content" in delta:
                contents.append(delta["content"])
    return contents


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080/v1"),
        ("http://127.0.0.1:8080/", "http://127.0.0.1:8080/v1"),
        ("http://127.0.0.1:8080/v1/", "http://127.0.0.1:8080/v1"),
        ("localhost:1234", "http://localhost:1234/v1"),
        ("http://localhost:1234/v1/chat/completions", "http://localhost:1234/v1"),
        ("https://gpu.example/openai/v1", "https://gpu.example/openai/v1"),
        ("http://host/proxy", "http://host/proxy/v1"),
        (" http://host:11434/v2 ", "http://host:11434/v2"),
    ],
)
def test_base_url_normalized(given, expected):
    assert normalize_base_url(given) == expected


def test_server_root_drops_version():
    assert ChatClient("http://127.0.0.1:9/v1").server_root == "http://127.0.0.1:9"


async def test_list_models(loopback_server):
    loopback_server.route("GET", "/v1/models", json_response(200, {"object": "list", "data": [{"id": "a"}, {"id": "b"}]}))
    async with ChatClient(loopback_server.url, api_key="secret") as client:
        assert await client.list_models() == ["a", "b"]
    assert loopback_server.requests[0].headers["authorization"] == "Bearer secret"


async def test_list_models_unreadable(loopback_server):
    loopback_server.route("GET", "/v1/models", json_response(200, {"models": []}))
    async with ChatClient(loopback_server.url) as client:
        with pytest.raises(SddtuiError) as raised:
            await client.list_models()
    assert raised.value.key == "llm.invalid_response"


async def test_list_models_http_error(loopback_server):
    loopback_server.route("GET", "/v1/models", json_response(401, {"error": "bad key"}))
    async with ChatClient(loopback_server.url) as client:
        with pytest.raises(SddtuiError) as raised:
            await client.list_models()
    assert raised.value.key == "llm.unauthorized"


async def test_request_body_fields(loopback_server):
    loopback_server.route("POST", "/v1/chat/completions", LlamaCppPythonStream().response(["ok"]))
    async with ChatClient(loopback_server.url + "/v1/") as client:
        await collect(
            client,
            model="qwen",
            max_tokens=300,
            temperature=0.5,
            response_format={"type": "json_object"},
            extra={"top_k": 20, "stream": False, "temperature": 0.1},
        )
    request = loopback_server.requests[0]
    body = request.json()
    assert request.path == "/v1/chat/completions"
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 300
    assert body["model"] == "qwen"
    assert body["temperature"] == 0.1
    assert body["top_k"] == 20
    assert body["response_format"] == {"type": "json_object"}
    assert body["messages"] == MESSAGES
    assert "authorization" not in request.headers


async def test_captured_stream_replayed(loopback_server):
    name = "llama-cpp-python-stream.http"
    loopback_server.route("POST", "/v1/chat/completions", response_from_http_file(TRANSCRIPTS / name))
    async with ChatClient(loopback_server.url) as client:
        events = await collect(client)
    assert answer_of(events) == "".join(capture_contents(name))
    assert answer_of(events).startswith("```python\n")
    assert events[-1] == StreamFinished("stop")


def test_stream_builder_matches_capture():
    body = capture_body("llama-cpp-python-stream.http")
    first = json.loads(split_events(body)[0][len(b"data: ") :])
    builder = LlamaCppPythonStream(model=first["model"], completion_id=first["id"])
    builder.created = first["created"]
    assert b"".join(builder.events(capture_contents("llama-cpp-python-stream.http"))) == body


def test_stream_builder_headers_match_capture():
    captured = response_from_http_file(TRANSCRIPTS / "llama-cpp-python-stream.http")
    built = LlamaCppPythonStream().response(["x"])
    assert built.headers == captured.headers
    assert built.chunked is True


async def test_built_stream_split_mid_token(loopback_server):
    events = LlamaCppPythonStream().events(["déf ", "日本語", "\n"])
    body = b"".join(events)
    pieces = [body[index : index + 5] for index in range(0, len(body), 5)]
    loopback_server.route("POST", "/v1/chat/completions", ScriptedResponse(pieces=pieces, delay=0.0005))
    async with ChatClient(loopback_server.url) as client:
        events = await collect(client)
    assert answer_of(events) == "déf 日本語\n"
    assert events[-1] == StreamFinished("stop")


async def test_overflow_stream_reported_empty(loopback_server):
    response = response_from_http_file(TRANSCRIPTS / "llama-cpp-python-overflow-stream.http")
    loopback_server.route("POST", "/v1/chat/completions", response)
    async with ChatClient(loopback_server.url) as client:
        events = await collect(client)
    assert len(events) == 1
    assert isinstance(events[0], StreamFailed)
    assert events[0].error.key == "llm.stream_empty"
    assert "n_ctx" in events[0].error.render("en")


async def test_overflow_status_classified(loopback_server):
    response = response_from_http_file(TRANSCRIPTS / "llama-cpp-python-overflow.http")
    loopback_server.route("POST", "/v1/chat/completions", response)
    async with ChatClient(loopback_server.url) as client:
        (event,) = await collect(client)
    assert event.error.key == "llm.context_overflow"
    assert event.error.params["requested_tokens"] == 2541
    assert event.error.params["n_ctx"] == 2048


ERROR_STATUSES = {
    "llama-cpp-python-context-exceeded.json": 400,
    "llama-server-exceed-context.json": 400,
    "lmstudio-mid-generation.txt": 500,
    "lmstudio-string-error-exceeded.json": 400,
    "lmstudio-string-error-n-keep.json": 400,
}


@pytest.mark.parametrize("name", sorted(ERROR_STATUSES))
async def test_non_2xx_error_body(loopback_server, name):
    body = (ERRORS / name).read_bytes()
    content_type = "application/json" if name.endswith(".json") else "text/plain"
    response = ScriptedResponse(
        status=ERROR_STATUSES[name], reason="Error", headers=[("content-type", content_type)], pieces=[body], chunked=False
    )
    loopback_server.route("POST", "/v1/chat/completions", response)
    async with ChatClient(loopback_server.url) as client:
        events = await collect(client)
    assert len(events) == 1
    assert events[0].error.key.startswith("llm.context_overflow")


async def test_non_streamed_completion_read(loopback_server):
    completion = {
        "object": "chat.completion",
        "choices": [{"index": 0, "message": {"role": "assistant", "reasoning_content": "hm", "content": "done"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
    }
    loopback_server.route("POST", "/v1/chat/completions", json_response(200, completion))
    async with ChatClient(loopback_server.url) as client:
        events = await collect(client)
    assert answer_of(events) == "done"
    assert events[-1] == StreamFinished("stop")


async def test_non_streamed_error_at_200(loopback_server):
    loopback_server.route("POST", "/v1/chat/completions", json_response(200, {"error": "Context size has been exceeded."}))
    async with ChatClient(loopback_server.url) as client:
        (event,) = await collect(client)
    assert event.error.key == "llm.context_overflow_unsized"


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("text/html; charset=utf-8", b"<!doctype html>\n<html><body><h1>Welcome to nginx!</h1></body></html>\n"),
        ("application/json", b'{"status": "ok", "version": "1.2"}'),
        ("text/plain", b'{"object": "list", "data": []}'),
    ],
)
async def test_body_not_event_stream(loopback_server, content_type, body):
    response = ScriptedResponse(headers=[("content-type", content_type)], pieces=[body], chunked=False)
    loopback_server.route("POST", "/v1/chat/completions", response)
    async with ChatClient(loopback_server.url) as client:
        (event,) = await collect(client)

    message = event.error.render("en")
    assert event.error.key == "llm.not_event_stream"
    assert f"answered with {content_type.split(';')[0]} instead of an event stream" in message
    assert "--base-url" in message
    assert body.decode()[:15] in message
    assert "received so far" not in message
    assert content_type.split(";")[0] in event.error.render("ja")


async def test_body_without_content_type_not_event_stream(loopback_server):
    response = ScriptedResponse(pieces=[b"  \n", b"Hello from a web app\n"], chunked=True)
    loopback_server.route("POST", "/v1/chat/completions", response)
    async with ChatClient(loopback_server.url) as client:
        (event,) = await collect(client)

    assert event.error.key == "llm.not_event_stream_untyped"
    assert "Hello from a web app" in str(event.error)


async def test_completion_under_other_content_type_read(loopback_server):
    completion = {"choices": [{"index": 0, "message": {"role": "assistant", "content": "done"}, "finish_reason": "stop"}]}
    response = ScriptedResponse(headers=[("content-type", "text/plain")], pieces=[json.dumps(completion).encode()], chunked=False)
    loopback_server.route("POST", "/v1/chat/completions", response)
    async with ChatClient(loopback_server.url) as client:
        events = await collect(client)

    assert answer_of(events) == "done"
    assert events[-1] == StreamFinished("stop")


async def test_event_stream_under_other_content_type_read(loopback_server):
    pieces = LlamaCppPythonStream().events(["def ", "add"])
    response = ScriptedResponse(headers=[("content-type", "text/plain")], pieces=[b"\n", *pieces])
    loopback_server.route("POST", "/v1/chat/completions", response)
    async with ChatClient(loopback_server.url) as client:
        events = await collect(client)

    assert answer_of(events) == "def add"
    assert events[-1] == StreamFinished("stop")


async def test_empty_body_other_content_type_is_empty_stream(loopback_server):
    response = ScriptedResponse(headers=[("content-type", "text/plain")], pieces=[], chunked=False)
    loopback_server.route("POST", "/v1/chat/completions", response)
    async with ChatClient(loopback_server.url) as client:
        (event,) = await collect(client)
    assert event.error.key == "llm.stream_empty"


async def test_connection_refused():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with ChatClient(f"http://127.0.0.1:{port}") as client:
        (event,) = await collect(client)
    assert event.error.key == "llm.connect_failed"
    assert f"127.0.0.1:{port}/v1/chat/completions" in event.error.render("en")
    assert f"127.0.0.1:{port}" in event.error.render("ja")


async def test_connection_refused_on_list_models():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with ChatClient(f"http://127.0.0.1:{port}") as client:
        with pytest.raises(SddtuiError) as raised:
            await client.list_models()
    assert raised.value.key == "llm.connect_failed"


async def test_dropped_connection_keeps_deltas(loopback_server):
    response = LlamaCppPythonStream().response(["def ", "add", "(a, b):"], drop_after=3, delay=0.01)
    loopback_server.route("POST", "/v1/chat/completions", response)
    async with ChatClient(loopback_server.url) as client:
        events = await collect(client)
    assert answer_of(events) == "def add"
    assert isinstance(events[-1], StreamFailed)
    assert events[-1].error.key == "llm.connection_dropped"


async def test_stream_without_done_truncated(loopback_server):
    response = LlamaCppPythonStream().response(["def ", "add"], finish_reason=None)
    loopback_server.route("POST", "/v1/chat/completions", response)
    async with ChatClient(loopback_server.url) as client:
        events = await collect(client)
    assert answer_of(events) == "def add"
    assert events[-1].error.key == "llm.stream_truncated"


async def test_read_timeout(loopback_server):
    response = LlamaCppPythonStream().response(["def "], finish_reason=None, hold_open=True)
    loopback_server.route("POST", "/v1/chat/completions", response)
    async with ChatClient(loopback_server.url, timeout=0.3) as client:
        events = await collect(client)
    assert answer_of(events) == "def "
    assert events[-1].error.key == "llm.read_timeout"
    assert "0.3" in events[-1].error.render("en")


async def test_aclose_closes_connection(loopback_server):
    response = LlamaCppPythonStream().response(["def ", "add"], finish_reason=None, hold_open=True)
    loopback_server.route("POST", "/v1/chat/completions", response)
    async with ChatClient(loopback_server.url) as client:
        stream = client.stream_chat(MESSAGES, model="m", max_tokens=64)
        async with aclosing(stream):
            async for event in stream:
                if isinstance(event, AnswerDelta):
                    break
        await asyncio.wait_for(loopback_server.client_closed.wait(), timeout=2)
    assert loopback_server.client_closed.is_set()


async def test_cancel_closes_connection(loopback_server):
    response = LlamaCppPythonStream().response(["def "], finish_reason=None, hold_open=True)
    loopback_server.route("POST", "/v1/chat/completions", response)
    first_delta = asyncio.Event()

    async def consume(client: ChatClient) -> None:
        async for event in client.stream_chat(MESSAGES, model="m", max_tokens=64):
            if isinstance(event, AnswerDelta):
                first_delta.set()

    async with ChatClient(loopback_server.url) as client:
        task = asyncio.create_task(consume(client))
        await asyncio.wait_for(first_delta.wait(), timeout=2)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.wait_for(loopback_server.client_closed.wait(), timeout=2)
    assert loopback_server.client_closed.is_set()


async def test_complete_json_falls_back_for_llama_cpp_python(loopback_server):
    rejected = response_from_http_file(TRANSCRIPTS / "llama-cpp-python-json-schema-rejected.http")
    accepted = [response_from_http_file(TRANSCRIPTS / "llama-cpp-python-json-object-stream.http") for _ in range(2)]
    loopback_server.route("POST", "/v1/chat/completions", [rejected, *accepted])
    async with ChatClient(loopback_server.url) as client:
        first = await client.complete_json(MESSAGES, model="m", max_tokens=60, schema=PLAN_SCHEMA)
        second = await client.complete_json(MESSAGES, model="m", max_tokens=60, schema=PLAN_SCHEMA)

    assert json.loads(first) == {"tasks": ["list_of_tasks", "add_new_task"]}
    assert second == first
    formats = [request.json()["response_format"] for request in loopback_server.requests]
    assert formats[0]["type"] == "json_schema"
    assert formats[0]["json_schema"] == {"name": "plan", "schema": PLAN_SCHEMA, "strict": True}
    assert formats[1] == {"type": "json_object", "schema": PLAN_SCHEMA}
    assert formats[2] == {"type": "json_object", "schema": PLAN_SCHEMA}


async def test_complete_json_schema_accepted(loopback_server):
    loopback_server.route("POST", "/v1/chat/completions", LlamaCppPythonStream().response(['{"tasks"', ": []}"]))
    async with ChatClient(loopback_server.url) as client:
        text = await client.complete_json(MESSAGES, model="m", max_tokens=60, schema=PLAN_SCHEMA)
    assert json.loads(text) == {"tasks": []}
    assert len(loopback_server.requests) == 1


async def test_complete_json_cut_short(loopback_server):
    loopback_server.route("POST", "/v1/chat/completions", LlamaCppPythonStream().response(['{"tasks": ['], "length"))
    async with ChatClient(loopback_server.url) as client:
        with pytest.raises(SddtuiError) as raised:
            await client.complete_json(MESSAGES, model="m", max_tokens=8, schema=PLAN_SCHEMA)
    assert raised.value.key == "llm.json_cut_short"
    assert "8" in raised.value.render("en")


async def test_complete_json_overflow_not_retried(loopback_server):
    response = response_from_http_file(TRANSCRIPTS / "llama-cpp-python-overflow.http")
    loopback_server.route("POST", "/v1/chat/completions", response)
    async with ChatClient(loopback_server.url) as client:
        with pytest.raises(SddtuiError) as raised:
            await client.complete_json(MESSAGES, model="m", max_tokens=8, schema=PLAN_SCHEMA)
    assert raised.value.key == "llm.context_overflow"
    assert len(loopback_server.requests) == 1


async def test_count_tokens_llama_cpp_python(loopback_server):
    loopback_server.route("POST", "/extras/tokenize/count", json_response(200, {"count": 2}))
    async with ChatClient(loopback_server.url) as client:
        assert await client.count_tokens("hello world") == 2
        assert await client.count_tokens("again") == 2
    assert [request.path for request in loopback_server.requests] == ["/extras/tokenize/count"] * 2
    assert loopback_server.requests[0].json() == {"input": "hello world"}


async def test_count_tokens_llama_server(loopback_server):
    loopback_server.route("POST", "/tokenize", json_response(200, {"tokens": [1, 2, 3]}))
    async with ChatClient(loopback_server.url) as client:
        assert await client.count_tokens("a b c") == 3
        assert await client.count_tokens("a b c") == 3
    paths = [request.path for request in loopback_server.requests]
    assert paths == ["/extras/tokenize/count", "/tokenize", "/tokenize"]
    assert loopback_server.requests[1].json() == {"content": "a b c", "prompt": "a b c", "add_special": False}


async def test_count_tokens_unsupported(loopback_server):
    async with ChatClient(loopback_server.url) as client:
        assert await client.count_tokens("x") is None
        assert await client.count_tokens("x") is None
    assert len(loopback_server.requests) == 2


async def test_count_tokens_server_down():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    async with ChatClient(f"http://127.0.0.1:{port}") as client:
        assert await client.count_tokens("x") is None


async def test_count_tokens_vllm(loopback_server):
    loopback_server.route("POST", "/tokenize", json_response(200, {"count": 3, "max_model_len": 8192, "tokens": [1, 2, 3]}))
    async with ChatClient(loopback_server.url) as client:
        assert await client.count_tokens("a b c") == 3
