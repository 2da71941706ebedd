"""Find the model server to use: the configured one, a server on a usual local port, or none."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import httpx

from sddtui.errors import SddtuiError
from sddtui.llm.client import normalize_base_url
from sddtui.llm.detect import DEFAULT_LOCAL_PORTS, ServerReport
from sddtui.memory.budget import MemoryBudget
from sddtui.memory.tokens import ChatTemplate


@dataclass(slots=True)
class ServerInfo:
    """The server a session talks to and what is known of its model."""

    label: str
    base_url: str
    model: str
    n_ctx: int | None = None
    kv_bytes_per_token: int | None = None
    embedded: bool = False
    answer_grammar: bool = False
    """True when a GBNF grammar constrains answers to the path-and-fenced-file format."""
    report: ServerReport | None = None
    """The detection report from the server's endpoints, when detection ran."""
    budget: MemoryBudget | None = None
    """The context and memory budget that caps max_tokens and stops a stream before it runs out."""
    chat_template: ChatTemplate | None = None
    """The model's chat template, when known, so the prompt can be counted exactly as the server renders it."""

    @property
    def reasoning_starts_open(self) -> bool:
        """Return whether the server's chat template opens a <think> block before the reply."""
        return self.report.reasoning_starts_open if self.report is not None else False


def validate_base_url(base_url: str) -> str:
    """Return the normalised API root of `base_url`, or raise SddtuiError naming what is wrong with it."""
    try:
        normalized = normalize_base_url(base_url)
        url = httpx.URL(normalized)
        port = url.port
    except (httpx.InvalidURL, ValueError) as error:
        raise SddtuiError("base_url_invalid", url=base_url, reason=str(error)) from error
    if url.scheme not in ("http", "https"):
        raise SddtuiError("base_url_invalid", url=base_url, reason=f"the scheme {url.scheme!r} is not http or https")
    if not url.host:
        raise SddtuiError("base_url_invalid", url=base_url, reason="it names no host")
    if port is not None and not 0 < port < 65536:
        raise SddtuiError("base_url_invalid", url=base_url, reason=f"port {port} is outside 1-65535")
    return normalized


async def list_models(base_url: str, api_key: str | None = None, timeout: float = 2.0) -> list[str] | None:
    """Return the model ids a server lists at /v1/models, or None when nothing responds there."""
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    try:
        async with httpx.AsyncClient(timeout=timeout, trust_env=False) as http:
            response = await http.get(f"{normalize_base_url(base_url)}/models", headers=headers)
    except httpx.HTTPError:
        return None
    if response.status_code != 200:
        return None
    try:
        entries = response.json().get("data", [])
    except (ValueError, AttributeError):
        return None
    return [entry["id"] for entry in entries if isinstance(entry, dict) and isinstance(entry.get("id"), str)]


async def find_local_server(timeout: float = 0.5) -> tuple[str, str, list[str]] | None:
    """Probe the usual local ports at once; return (base URL, server names, models) of the first that responds."""
    urls = [f"http://127.0.0.1:{port}/v1" for port, _ in DEFAULT_LOCAL_PORTS]
    answers = await asyncio.gather(*(list_models(url, timeout=timeout) for url in urls))
    for (port, names), url, models in zip(DEFAULT_LOCAL_PORTS, urls, answers):
        if models:
            return url, names, models
    return None
