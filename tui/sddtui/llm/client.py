"""Provide the streaming chat client for OpenAI-compatible model servers."""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from contextlib import aclosing
from types import TracebackType
from urllib.parse import urlsplit, urlunsplit

import httpx

from sddtui.errors import SddtuiError
from sddtui.llm.chunks import ChunkReader
from sddtui.llm.errors import read_error
from sddtui.llm.events import AnswerDelta, StreamEvent, StreamFailed, StreamFinished
from sddtui.llm.sse import SseDecoder

logger = logging.getLogger(__name__)

# Seconds without a byte from the server before a request fails. Local servers send nothing
# while they process a long prompt, which can take minutes on a CPU.
DEFAULT_TIMEOUT = 300.0

# Seconds allowed to open the TCP connection. A local server that is running accepts at once.
CONNECT_TIMEOUT = 10.0

# Endpoint paths that users paste into the base URL. The client cuts them off and adds its own.
_ENDPOINT_SUFFIXES = ("/chat/completions", "/completions", "/models")

# HTTP statuses with which a server rejects a request body it does not understand.
_REJECTED_REQUEST_STATUSES = frozenset({400, 422})


def normalize_base_url(base_url: str) -> str:
    """Return the API root for `base_url`: a scheme, no trailing slash, and a version segment.

    "localhost:1234" becomes "http://localhost:1234/v1", and a pasted endpoint such as
    ".../v1/chat/completions" is cut back to ".../v1". A path that already ends in a version
    segment (v1, v2, ...) is kept.
    """
    text = base_url.strip()
    if "://" not in text:
        text = "http://" + text
    parts = urlsplit(text)
    path = parts.path.rstrip("/")
    for suffix in _ENDPOINT_SUFFIXES:
        if path.endswith(suffix):
            path = path[: -len(suffix)].rstrip("/")
            break
    last_segment = path.rsplit("/", 1)[-1]
    if not (last_segment.startswith("v") and last_segment[1:].isdigit()):
        path += "/v1"
    return urlunsplit((parts.scheme, parts.netloc, path, "", ""))


def json_schema_format(schema: dict) -> dict:
    """Return the OpenAI `response_format` for a strict JSON schema (vLLM, LM Studio, llama-server)."""
    return {"type": "json_schema", "json_schema": {"name": "plan", "schema": schema, "strict": True}}


def json_object_format(schema: dict) -> dict:
    """Return the `json_object` form with the schema beside the type.

    llama-cpp-python 0.3 accepts only "text" and "json_object" as the type and turns `schema`
    into a grammar. llama-server reads the same form.
    """
    return {"type": "json_object", "schema": schema}


class ChatClient:
    """An async client for one OpenAI-compatible server: model list, streamed chat, token counts."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = normalize_base_url(base_url)
        self.timeout = timeout
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.AsyncClient(
            base_url=self.base_url + "/",
            headers=headers,
            timeout=httpx.Timeout(timeout, connect=min(timeout, CONNECT_TIMEOUT)),
            transport=transport,
        )
        # The response_format builder that the server accepted last, tried first next time.
        self._json_formats = [json_schema_format, json_object_format]
        # The token-count route that worked, or False once no route exists.
        self._token_route: str | bool | None = None

    async def __aenter__(self) -> ChatClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self._http.aclose()

    @property
    def server_root(self) -> str:
        """The base URL without its version segment, where llama.cpp-style extra routes live."""
        return self.base_url.rsplit("/", 1)[0]

    async def list_models(self) -> list[str]:
        """Return the model ids from GET /models, raising SddtuiError when the request fails."""
        url = self.base_url + "/models"
        try:
            response = await self._http.get("models")
        except httpx.HTTPError as error:
            raise _transport_error(error, url, self.timeout) from error
        if not response.is_success:
            raise read_error(response.status_code, response.content)

        try:
            listing = response.json()
            return [str(entry["id"]) for entry in listing["data"]]
        except (ValueError, KeyError, TypeError) as error:
            raise SddtuiError("llm.invalid_response", url=url, detail=response.text[:200]) from error

    async def stream_chat(
        self,
        messages: list[dict],
        *,
        model: str,
        max_tokens: int,
        temperature: float = 0.2,
        response_format: dict | None = None,
        extra: dict | None = None,
        starts_in_reasoning: bool = False,
    ) -> AsyncIterator[StreamEvent]:
        """Stream one chat completion as typed events, with every failure as a StreamFailed event.

        The last event is StreamFinished or StreamFailed. Closing the iterator or cancelling the
        task closes the HTTP response at once. `starts_in_reasoning` is for chat templates that
        open a <think> block in the prompt (see ThinkSplitter). `extra` adds or overrides body
        fields, except `stream`.
        """
        body: dict = {
            "model": model,
            "messages": messages,
            "max_tokens": max_tokens,
            "temperature": temperature,
            "stream_options": {"include_usage": True},
        }
        if response_format is not None:
            body["response_format"] = response_format
        body.update(extra or {})
        body["stream"] = True

        url = self.base_url + "/chat/completions"
        reader = ChunkReader(starts_in_reasoning=starts_in_reasoning)
        received_any = False
        try:
            async with self._http.stream("POST", "chat/completions", json=body) as response:
                if not response.is_success:
                    yield StreamFailed(read_error(response.status_code, await response.aread()))
                    return

                pieces: AsyncIterator[bytes] = response.aiter_bytes()
                if not _is_event_stream(response):
                    head = await _read_head(pieces)
                    if head.strip() and not _starts_like_sse(head):
                        body = head + b"".join([piece async for piece in pieces])
                        for event in _read_whole_completion(body, response, reader, url):
                            yield event
                        return
                    # An event stream sent under another content type, or an empty body.
                    pieces = _prepend(head, pieces)

                decoder = SseDecoder()
                async for piece in pieces:
                    items = decoder.feed(piece)
                    received_any = received_any or bool(items)
                    for item in items:
                        for event in reader.read(item):
                            yield event
                    if reader.closed:
                        return
                items = decoder.flush()
                received_any = received_any or bool(items)
                for item in items:
                    for event in reader.read(item):
                        yield event

        except httpx.HTTPError as error:
            if not reader.closed:
                yield StreamFailed(_transport_error(error, url, self.timeout))
            return

        for event in reader.end():
            yield event
        if not reader.closed:
            # llama-cpp-python 0.3 answers a prompt longer than n_ctx this way: status 200, empty body.
            key = "llm.stream_truncated" if received_any else "llm.stream_empty"
            yield StreamFailed(SddtuiError(key, url=url))

    async def complete_json(
        self,
        messages: list[dict],
        *,
        model: str,
        max_tokens: int,
        schema: dict,
    ) -> str:
        """Return the full answer text of a JSON-schema-constrained completion.

        Servers disagree on the request shape. The strict `json_schema` form goes first, because
        vLLM and LM Studio honour only that one (vLLM accepts `json_object` but ignores the
        schema). A server that rejects it before any text (llama-cpp-python 0.3 answers HTTP 500)
        gets the `json_object` form with `schema`, and the client remembers which one worked.
        Raise SddtuiError when the request fails or the answer is cut off at `max_tokens`.
        """
        last_error: SddtuiError | None = None
        for build_format in list(self._json_formats):
            parts: list[str] = []
            events = self.stream_chat(
                messages, model=model, max_tokens=max_tokens, temperature=0.0, response_format=build_format(schema)
            )
            async with aclosing(events):
                async for event in events:
                    if isinstance(event, AnswerDelta):
                        parts.append(event.text)
                    elif isinstance(event, StreamFinished):
                        if event.reason == "length":
                            raise SddtuiError("llm.json_cut_short", max_tokens=max_tokens)
                        self._json_formats.sort(key=lambda builder: builder is not build_format)
                        return "".join(parts)
                    elif isinstance(event, StreamFailed):
                        last_error = event.error
                        if parts or not _rejected_request_shape(event.error):
                            raise event.error
                        logger.info("server rejected response_format %s: %s", build_format.__name__, event.error)
        assert last_error is not None
        raise last_error

    async def count_tokens(self, text: str) -> int | None:
        """Return the server's token count for `text`, or None when the server has no tokenize route.

        llama-cpp-python serves POST /extras/tokenize/count {"input"} -> {"count"}; llama-server
        serves POST /tokenize {"content"} -> {"tokens"}, and vLLM POST /tokenize {"prompt"} ->
        {"count", "tokens"}. All sit beside /v1, not under it.
        """
        routes = {
            "/extras/tokenize/count": ({"input": text}, _count_from_count),
            "/tokenize": ({"content": text, "prompt": text, "add_special": False}, _count_from_tokens),
        }
        if self._token_route is False:
            return None
        names = [self._token_route] if isinstance(self._token_route, str) else list(routes)

        for name in names:
            payload, read_count = routes[name]
            url = self.server_root + name
            try:
                response = await self._http.post(url, json=payload)
            except httpx.HTTPError as error:
                logger.warning("token count request to %s failed: %r", url, error)
                return None
            if not response.is_success:
                logger.info("token count route %s returned HTTP %d", url, response.status_code)
                continue
            try:
                count = read_count(response.json())
            except (ValueError, KeyError, TypeError):
                logger.info("token count route %s returned an unreadable body", url)
                continue
            self._token_route = name
            return count

        self._token_route = False
        return None


def _count_from_count(document: dict) -> int:
    """Read llama-cpp-python's {"count": N}."""
    return int(document["count"])


def _count_from_tokens(document: dict) -> int:
    """Read llama-server's {"tokens": [...]} or vLLM's {"count": N, "tokens": [...]}."""
    if isinstance(document.get("count"), int):
        return document["count"]
    tokens = document["tokens"]
    if not isinstance(tokens, list):
        raise TypeError("tokens is not a list")
    return len(tokens)


# Field names that can open an SSE body, or ":" for a comment line.
_SSE_STARTS = (b"data:", b"event:", b"id:", b"retry:", b":")
# Characters of a body that is neither an event stream nor a completion, kept for the error message.
_BODY_EXCERPT_CHARS = 200


def _is_event_stream(response: httpx.Response) -> bool:
    """Return whether a response declares an SSE body (text/event-stream)."""
    return _media_type(response) == "text/event-stream"


def _media_type(response: httpx.Response) -> str:
    """Return the lower-cased media type of a response without its parameters, "" when it has none."""
    return response.headers.get("content-type", "").split(";")[0].strip().lower()


async def _read_head(pieces: AsyncIterator[bytes]) -> bytes:
    """Return the first bytes of a body, read until one that is not whitespace arrives or the body ends."""
    head = b""
    async for piece in pieces:
        head += piece
        if head.strip():
            break
    return head


def _starts_like_sse(head: bytes) -> bool:
    """Return whether the start of a body reads as SSE: a field such as "data:" or a comment."""
    return head.lstrip().startswith(_SSE_STARTS)


async def _prepend(head: bytes, pieces: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    """Yield `head`, when it has bytes, and then the rest of `pieces`."""
    if head:
        yield head
    async for piece in pieces:
        yield piece


def _read_whole_completion(body: bytes, response: httpx.Response, reader: ChunkReader, url: str) -> list[StreamEvent]:
    """Return the events of a body that is not an event stream: a whole completion from a server that
    ignored `stream: true`, or a failure naming what the server sent instead."""
    try:
        completion = json.loads(body)
    except ValueError:
        completion = None
    if isinstance(completion, dict) and ("choices" in completion or "error" in completion):
        return reader.read_completion(completion)

    excerpt = " ".join(body.decode("utf-8", "replace").split())[:_BODY_EXCERPT_CHARS]
    media_type = _media_type(response)
    if media_type:
        error = SddtuiError("llm.not_event_stream", url=url, content_type=media_type, detail=excerpt)
    else:
        error = SddtuiError("llm.not_event_stream_untyped", url=url, detail=excerpt)
    return [StreamFailed(error)]


def _rejected_request_shape(error: SddtuiError) -> bool:
    """Return whether an error means the server rejected the request body, not the prompt.

    llama-cpp-python 0.3 rejects an unknown response_format type with HTTP 500 and the validation
    error as text, so a server failure that names response_format counts too.
    """
    if error.key == "llm.bad_request" and error.params.get("status") in _REJECTED_REQUEST_STATUSES:
        return True
    return error.key == "llm.server_failure" and "response_format" in str(error.params.get("detail", ""))


def _transport_error(error: httpx.HTTPError, url: str, timeout: float) -> SddtuiError:
    """Return the SddtuiError for a connection that failed, timed out or was dropped."""
    reason = str(error) or type(error).__name__
    if isinstance(error, httpx.ConnectTimeout):
        return SddtuiError("llm.connect_timeout", url=url, seconds=min(timeout, CONNECT_TIMEOUT))
    if isinstance(error, httpx.ConnectError):
        return SddtuiError("llm.connect_failed", url=url, reason=reason)
    if isinstance(error, httpx.TimeoutException):
        return SddtuiError("llm.read_timeout", url=url, seconds=timeout)
    if isinstance(error, httpx.RemoteProtocolError | httpx.ReadError):
        return SddtuiError("llm.connection_dropped", url=url, reason=reason)
    return SddtuiError("llm.http_failed", url=url, reason=reason)
