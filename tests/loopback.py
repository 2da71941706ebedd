"""Provide a scripted HTTP/1.1 server on 127.0.0.1 that plays model-server responses for tests.

Each route plays a ScriptedResponse: a status line, headers in the given order and body pieces,
each written and flushed separately (after an optional delay) so that a test chooses where the
client's reads split the bytes. The server records every request and every connection that the
client closed while a response was still being written.
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import pytest_asyncio

TRANSCRIPTS = Path(__file__).resolve().parent / "transcripts"

# Headers of llama-cpp-python 0.3 (uvicorn with sse-starlette) on a streamed chat completion,
# in the order of the capture in transcripts/llama-cpp-python-stream.http.
LLAMA_CPP_PYTHON_STREAM_HEADERS = (
    ("date", "Fri, 04 Dec 2026 19:47:35 GMT"),
    ("server", "uvicorn"),
    ("cache-control", "no-store"),
    ("connection", "keep-alive"),
    ("x-accel-buffering", "no"),
    ("content-type", "text/event-stream; charset=utf-8"),
    ("openai-processing-ms", "4"),
    ("x-request-id", "e368e24da21e4e1b951f75eab9a2fc63"),
    ("vary", "Origin"),
    ("Transfer-Encoding", "chunked"),
)

# Seconds a response marked `hold_open` waits for the client to close before giving up.
HOLD_OPEN_LIMIT = 30.0


@dataclass
class ScriptedResponse:
    """One scripted HTTP response.

    With `chunked` the pieces go out as HTTP chunks; otherwise a Content-Length header is added
    unless the headers have one. `drop_after` closes the socket after that many pieces, in the
    middle of the body. `hold_open` keeps the response open after the last piece, without the
    terminating chunk, until the client closes the connection.
    """

    status: int = 200
    reason: str = "OK"
    headers: list[tuple[str, str]] = field(default_factory=list)
    pieces: list[bytes] = field(default_factory=list)
    chunked: bool = True
    delay: float = 0.0
    drop_after: int | None = None
    hold_open: bool = False


@dataclass(frozen=True)
class RecordedRequest:
    """A request the server received."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> object:
        """Return the body parsed as JSON."""
        return json.loads(self.body)


Route = ScriptedResponse | list[ScriptedResponse] | Callable[[RecordedRequest], ScriptedResponse]


class LoopbackServer:
    """A scripted HTTP/1.1 server on 127.0.0.1 with a free port."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Route] = {}
        # The response for a route with no script; None gives FastAPI's 404.
        self.fallback: ScriptedResponse | None = None
        self.requests: list[RecordedRequest] = []
        self.client_closed = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._connections: set[asyncio.Task] = set()
        self.port = 0

    @property
    def url(self) -> str:
        """The server's root URL."""
        return f"http://127.0.0.1:{self.port}"

    def route(self, method: str, path: str, response: Route) -> None:
        """Serve `response` for `method` `path`; a list is served one item per request, in order."""
        self.routes[(method.upper(), path)] = response

    async def start(self) -> None:
        """Listen on a free port of 127.0.0.1."""
        self._server = await asyncio.start_server(self._serve_connection, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        """Close the listener and every open connection."""
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def _serve_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Answer requests on one connection until either side closes it."""
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        try:
            while True:
                request = await _read_request(reader)
                if request is None:
                    return
                self.requests.append(request)
                response = self._pick_response(request)
                keep_open = await self._write_response(response, reader, writer)
                if not keep_open:
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            self.client_closed.set()
        finally:
            self._connections.discard(task)
            writer.close()

    def _pick_response(self, request: RecordedRequest) -> ScriptedResponse:
        """Return the scripted response for a request, or a FastAPI-style 404."""
        route = self.routes.get((request.method, request.path))
        if route is None:
            return self.fallback or json_response(404, {"detail": "Not Found"}, reason="Not Found")
        if isinstance(route, list):
            return route.pop(0)
        if callable(route):
            return route(request)
        return route

    async def _write_response(
        self, response: ScriptedResponse, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> bool:
        """Write one response piece by piece; return whether the connection may serve another."""
        header_names = {name.lower() for name, _ in response.headers}
        headers = list(response.headers)
        if response.chunked and "transfer-encoding" not in header_names:
            headers.append(("Transfer-Encoding", "chunked"))
        if not response.chunked and "content-length" not in header_names:
            headers.append(("content-length", str(sum(len(piece) for piece in response.pieces))))
        head = f"HTTP/1.1 {response.status} {response.reason}\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in headers) + "\r\n"
        writer.write(head.encode("latin-1"))
        await writer.drain()

        for number, piece in enumerate(response.pieces):
            if response.drop_after is not None and number >= response.drop_after:
                return False
            if response.delay:
                await asyncio.sleep(response.delay)
            if response.chunked:
                piece = b"%x\r\n%s\r\n" % (len(piece), piece) if piece else b""
            writer.write(piece)
            await writer.drain()
        if response.drop_after is not None:
            return False

        if response.hold_open:
            await self._wait_for_client_close(reader)
            return False
        if response.chunked:
            writer.write(b"0\r\n\r\n")
            await writer.drain()
        return "close" not in dict((name.lower(), value.lower()) for name, value in headers).get("connection", "")

    async def _wait_for_client_close(self, reader: asyncio.StreamReader) -> None:
        """Wait until the client closes the connection, and record that it did."""
        deadline = time.monotonic() + HOLD_OPEN_LIMIT
        while time.monotonic() < deadline:
            try:
                data = await asyncio.wait_for(reader.read(1024), timeout=deadline - time.monotonic())
            except TimeoutError:
                return
            if not data:
                self.client_closed.set()
                return


async def _read_request(reader: asyncio.StreamReader) -> RecordedRequest | None:
    """Read one request with a Content-Length body; return None when the client closed."""
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError:
        return None
    lines = head.decode("latin-1").split("\r\n")
    method, target, _version = lines[0].split(" ", 2)
    headers = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
    body = await reader.readexactly(int(headers.get("content-length", "0")))
    return RecordedRequest(method=method, path=target.split("?", 1)[0], headers=headers, body=body)


def json_response(status: int, document: object, *, reason: str = "") -> ScriptedResponse:
    """Return a JSON response with uvicorn's header set and a Content-Length."""
    body = json.dumps(document, separators=(",", ":")).encode()
    return ScriptedResponse(
        status=status,
        reason=reason or _REASONS.get(status, "Error"),
        headers=[("server", "uvicorn"), ("content-type", "application/json")],
        pieces=[body],
        chunked=False,
    )


def response_from_http_file(path: Path, *, pieces: Iterable[bytes] | None = None, delay: float = 0.0) -> ScriptedResponse:
    """Return the response stored in a `.http` file: its status line, its headers in order, its body.

    The file holds the body as a client shows it (already de-chunked); with Transfer-Encoding
    chunked the body goes out in HTTP chunks again, one per event unless `pieces` splits it.
    """
    raw = path.read_bytes()
    head, _, body = raw.partition(_header_end(raw))
    lines = head.decode("latin-1").replace("\r\n", "\n").split("\n")
    _version, status, reason = (lines[0].split(" ", 2) + [""])[:3]
    headers = [tuple(part.strip() for part in line.split(":", 1)) for line in lines[1:] if line]
    chunked = any(name.lower() == "transfer-encoding" and "chunked" in value.lower() for name, value in headers)
    if not chunked:
        headers = [(name, value) for name, value in headers if name.lower() != "content-length"]
    return ScriptedResponse(
        status=int(status),
        reason=reason,
        headers=headers,
        pieces=list(pieces) if pieces is not None else split_events(body),
        chunked=chunked,
        delay=delay,
    )


def _header_end(raw: bytes) -> bytes:
    """Return the blank line that ends the head of a `.http` file: CRLF as sent, or LF as typed."""
    crlf_at = raw.find(b"\r\n\r\n")
    lf_at = raw.find(b"\n\n")
    if crlf_at >= 0 and (lf_at < 0 or crlf_at < lf_at):
        return b"\r\n\r\n"
    return b"\n\n"


def sse_response(body: bytes, *, pieces: Iterable[bytes] | None = None, delay: float = 0.0) -> ScriptedResponse:
    """Return a `.sse` body served with the streaming headers of llama-cpp-python."""
    return ScriptedResponse(
        headers=list(LLAMA_CPP_PYTHON_STREAM_HEADERS),
        pieces=list(pieces) if pieces is not None else split_events(body),
        delay=delay,
    )


def reads_response(path: Path, *, delay: float = 0.02) -> tuple[ScriptedResponse, dict]:
    """Return a response that writes the reads of a `.reads.json` file one by one, and the file's data."""
    document = json.loads(path.read_text(encoding="utf-8"))
    pieces = [base64.b64decode(read) for read in document["reads_b64"]]
    return sse_response(b"".join(pieces), pieces=pieces, delay=delay), document


def split_events(body: bytes) -> list[bytes]:
    """Split an SSE body after each blank line, as sse-starlette writes one event per HTTP chunk."""
    pieces = []
    start = 0
    while True:
        end = body.find(b"\n\n", start)
        if end < 0:
            break
        pieces.append(body[start : end + 2])
        start = end + 2
    if start < len(body):
        pieces.append(body[start:])
    return pieces


def split_every(body: bytes, size: int) -> list[bytes]:
    """Split a body into pieces of `size` bytes, so that reads break inside events and characters."""
    return [body[start : start + size] for start in range(0, len(body), size)] or [b""]


def replay_transcripts(
    server: LoopbackServer,
    directory: Path,
    *,
    read_size: int | None = None,
    overrides: dict[str, str | None] | None = None,
) -> dict:
    """Route every response of one server's transcript folder, as its `routes.json` lists them.

    `routes.json` maps "METHOD /path" to a `.http` file and names the file served for any other
    route (`not_found`). `read_size` cuts every body into pieces of that many bytes. `overrides`
    replaces the file of a route, or with None removes the route. Return the routing document.
    """
    document = json.loads((directory / "routes.json").read_text(encoding="utf-8"))
    table = dict(document["routes"])
    for route, file_name in (overrides or {}).items():
        if file_name is None:
            table.pop(route, None)
        else:
            table[route] = file_name

    def load(file_name: str) -> ScriptedResponse:
        path = directory / file_name
        if read_size is None:
            return response_from_http_file(path)
        body = response_from_http_file(path).pieces
        return response_from_http_file(path, pieces=split_every(b"".join(body), read_size))

    for route, file_name in table.items():
        method, _, route_path = route.partition(" ")
        # A callable route builds a fresh response per request, so that a route can serve many.
        server.route(method, route_path, lambda _request, name=file_name: load(name))
    server.fallback = load(document["not_found"])
    return document


class LlamaCppPythonStream:
    """Build streamed chat completions in llama-cpp-python 0.3's framing.

    Framing, as in the capture: `data: ` plus json.dumps with its default separators, LF line
    ends, one event per HTTP chunk; keys id, model, created, object, choices; each choice has
    index, delta, logprobs null and finish_reason; the first delta is {"role": "assistant"}, the
    last is {} with the finish reason, then `data: [DONE]`. The server sends no usage chunk even
    when `stream_options.include_usage` is set.
    """

    def __init__(self, model: str = "SmolLM2-135M-Instruct.Q4_1.gguf", completion_id: str = "chatcmpl-0000") -> None:
        self.model = model
        self.completion_id = completion_id
        self.created = 1796413656

    def chunk(self, delta: dict, finish_reason: str | None = None) -> bytes:
        """Return one `data:` event holding one choice delta."""
        document = {
            "id": self.completion_id,
            "model": self.model,
            "created": self.created,
            "object": "chat.completion.chunk",
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        return b"data: " + json.dumps(document).encode() + b"\n\n"

    def events(self, contents: Iterable[str], finish_reason: str | None = "stop") -> list[bytes]:
        """Return the events of a stream that sends `contents` as deltas, then the finish and [DONE]."""
        events = [self.chunk({"role": "assistant"})]
        events += [self.chunk({"content": text}) for text in contents]
        if finish_reason is not None:
            events.append(self.chunk({}, finish_reason))
            events.append(b"data: [DONE]\n\n")
        return events

    def response(self, contents: Iterable[str], finish_reason: str | None = "stop", **options: object) -> ScriptedResponse:
        """Return a ScriptedResponse with the captured headers and the events of `contents`."""
        return ScriptedResponse(
            headers=list(LLAMA_CPP_PYTHON_STREAM_HEADERS),
            pieces=self.events(contents, finish_reason),
            **options,  # type: ignore[arg-type]
        )


_REASONS = {200: "OK", 400: "Bad Request", 401: "Unauthorized", 404: "Not Found",
            422: "Unprocessable Entity", 500: "Internal Server Error", 503: "Service Unavailable"}


@pytest_asyncio.fixture
async def loopback_server() -> AsyncIterator[LoopbackServer]:
    """Start a LoopbackServer for one test and stop it afterwards."""
    server = LoopbackServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
