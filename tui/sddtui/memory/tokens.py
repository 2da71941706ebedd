"""Count tokens: exactly through the server where it can, else with the shipped tiktoken encoding, calibrated per model."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import gzip
import hashlib
import logging
from dataclasses import dataclass, field
from functools import cache
from importlib import resources


from sddtui.errors import SddtuiError

logger = logging.getLogger(__name__)

# cl100k_base as tiktoken 0.14.0 publishes it (tiktoken_ext/openai_public.py states this SHA-256).
ENCODING_FILE = "cl100k_base.tiktoken.gz"
ENCODING_SHA256 = "223921b76ee99bde995b7ff738513eef100fb51d18c93597a113bcffe865b2a7"
ENCODING_PATTERN = (
    r"""'(?i:[sdmt]|ll|ve|re)|[^\r\n\p{L}\p{N}]?+\p{L}++|\p{N}{1,3}+| ?[^\s\p{L}\p{N}]++[\r\n]*+|\s++$|\s*[\r\n]|\s+(?!\S)|\s"""
)
SPECIAL_TOKENS = {"<|endoftext|>": 100257, "<|fim_prefix|>": 100258, "<|fim_middle|>": 100259, "<|fim_suffix|>": 100260, "<|endofprompt|>": 100276}
# Without tiktoken, one token per this many UTF-8 bytes (a rough figure for English and code).
BYTES_PER_TOKEN_FALLBACK = 3.6


def read_encoding_ranks() -> dict[bytes, int]:
    """Read the shipped cl100k_base ranks and check them against the published SHA-256."""
    import base64

    packed = resources.files("sddtui.memory").joinpath("data", ENCODING_FILE).read_bytes()
    contents = gzip.decompress(packed)
    digest = hashlib.sha256(contents).hexdigest()
    if digest != ENCODING_SHA256:
        raise SddtuiError("memory_encoding_hash", path=ENCODING_FILE, expected=ENCODING_SHA256, actual=digest)
    ranks = {}
    for line in contents.splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


@cache
def offline_encoding():
    """Return the tiktoken Encoding built from the shipped file, or None when tiktoken is not installed."""
    try:
        import tiktoken
    except ImportError:
        logger.info("tiktoken is not installed; token counts fall back to bytes / %.1f", BYTES_PER_TOKEN_FALLBACK)
        return None
    return tiktoken.Encoding(
        name="cl100k_base",
        pat_str=ENCODING_PATTERN,
        mergeable_ranks=read_encoding_ranks(),
        special_tokens=SPECIAL_TOKENS,
    )


def count_offline(text: str) -> int:
    """Return the cl100k_base token count of `text` (special-token text counts as ordinary text)."""
    encoding = offline_encoding()
    if encoding is None:
        return round(len(text.encode("utf-8")) / BYTES_PER_TOKEN_FALLBACK)
    return len(encoding.encode(text, disallowed_special=()))


@dataclass(slots=True)
class Calibration:
    """The ratio of a model's own token counts to the offline counts, learned from pairs of both."""

    server_tokens: int = 0
    offline_tokens: int = 0
    samples: int = 0

    def add(self, offline: int, server: int) -> None:
        """Record one text counted both ways."""
        if offline > 0 and server > 0:
            self.offline_tokens += offline
            self.server_tokens += server
            self.samples += 1

    @property
    def ratio(self) -> float:
        """Return server tokens per offline token (1.0 before any sample)."""
        return self.server_tokens / self.offline_tokens if self.offline_tokens else 1.0


@dataclass(slots=True)
class TokenCounter:
    """A model's token counter: exact when a server tokenize route responds, else a calibrated offline estimate."""

    calibrations: dict[str, Calibration] = field(default_factory=dict)

    def estimate(self, text: str, model: str = "") -> int:
        """Return the calibrated estimate of `model`'s token count for `text`."""
        offline = count_offline(text)
        calibration = self.calibrations.get(model)
        return round(offline * calibration.ratio) if calibration else offline

    def calibrate(self, text: str, model: str, server_count: int) -> None:
        """Learn from one exact count the server gave for `text`."""
        self.calibrations.setdefault(model, Calibration()).add(count_offline(text), server_count)

    async def count(self, server_count: Callable[[str], Awaitable[int | None]], text: str, model: str = "") -> tuple[int, bool]:
        """Return (count, exact): the server's count when `server_count` gets one, else the estimate."""
        exact = await server_count(text)
        if exact is not None:
            self.calibrate(text, model, exact)
            return exact, True
        return self.estimate(text, model), False


def render_chat_prompt(
    template: str,
    messages: list[dict],
    *,
    bos_token: str = "",
    eos_token: str = "",
    add_generation_prompt: bool = True,
) -> str:
    """Render a GGUF's `tokenizer.chat_template` as the server does, in a Jinja2 sandbox."""
    from jinja2 import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str):
        raise TemplateError(message)

    environment = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    environment.globals["raise_exception"] = raise_exception
    try:
        return environment.from_string(template).render(
            messages=messages,
            bos_token=bos_token,
            eos_token=eos_token,
            add_generation_prompt=add_generation_prompt,
        )
    except TemplateError as error:
        raise SddtuiError("memory_chat_template_failed", reason=str(error)) from error


@dataclass(frozen=True, slots=True)
class ChatTemplate:
    """A model's chat template and the token texts it refers to."""

    template: str
    bos_token: str
    eos_token: str
    add_bos: bool


def read_chat_template(path) -> ChatTemplate | None:
    """Read `tokenizer.chat_template` and the BOS and EOS texts from a GGUF header, or None without a template."""
    from sddtui.memory.gguf_header import read_gguf_header

    header = read_gguf_header(path, decode_arrays={"tokenizer.ggml.tokens"})
    template = header.fields.get("tokenizer.chat_template")
    if not isinstance(template, str):
        return None
    tokens = header.fields.get("tokenizer.ggml.tokens") or []

    def token_text(key: str) -> str:
        index = header.fields.get(key)
        return tokens[index] if isinstance(index, int) and 0 <= index < len(tokens) else ""

    add_bos = header.fields.get("tokenizer.ggml.add_bos_token")
    return ChatTemplate(
        template=template,
        bos_token=token_text("tokenizer.ggml.bos_token_id"),
        eos_token=token_text("tokenizer.ggml.eos_token_id"),
        add_bos=bool(add_bos) if add_bos is not None else True,
    )
