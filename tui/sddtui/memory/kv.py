"""Size the KV cache as llama.cpp allocates it, and MLX's cache that grows in steps.

llama.cpp rules (llama-cpp-python 0.3.36's vendored copy): n_ctx is padded to a multiple of 256;
with split (not unified) slots each of n_parallel streams gets n_ctx / n_parallel cells padded to
256; a sliding-window layer gets min(cells, window × (n_parallel if unified else 1) + n_ubatch)
padded to 256 cells unless the full-size SWA cache is chosen; without flash attention V is stored
transposed and padded to the widest layer; MLA layers keep no V cache; recurrent layers keep
f32 state for max(1, n_parallel) sequences.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

from sddtui.errors import SddtuiError
from sddtui.memory.architecture import F32_BYTES, ModelArchitecture

CONTEXT_PADDING = 256
DEFAULT_UBATCH = 512
# The search ceiling when the model states no context length: 4Mi tokens.
MAX_PLANNED_N_CTX = 1 << 22

# ggml type name to (bytes per block, elements per block).
CACHE_TYPES: dict[str, tuple[int, int]] = {
    "f32": (4, 1),
    "f16": (2, 1),
    "bf16": (2, 1),
    "q8_0": (34, 32),
    "q4_0": (18, 32),
    "q4_1": (20, 32),
    "q5_0": (22, 32),
    "q5_1": (24, 32),
    "iq4_nl": (18, 32),
}
QUANTIZED_TYPES = {name for name, (_, block) in CACHE_TYPES.items() if block > 1}


@dataclass(frozen=True, slots=True)
class CacheSettings:
    """The load settings that change the KV cache size."""

    n_ctx: int
    type_k: str = "f16"
    type_v: str = "f16"
    n_parallel: int = 1
    kv_unified: bool = False
    flash_attn: bool = False
    n_ubatch: int = DEFAULT_UBATCH
    swa_full: bool = False


@dataclass(frozen=True, slots=True)
class KvPlan:
    """The cache llama.cpp allocates for one model and one set of settings."""

    n_ctx: int
    """n_ctx after padding (and after rounding down to a multiple of the slots when split)."""
    n_ctx_seq: int
    """Cells each sequence can use."""
    cells_full: int
    """Cells per full-attention layer, over all streams."""
    cells_sliding: int
    """Cells per sliding-window layer, over all streams (0 when there is none)."""
    k_bytes: int
    v_bytes: int
    state_bytes: int
    kv_bytes_per_token: int
    """Bytes one more cell of every full-attention layer costs at these cache types."""

    @property
    def kv_bytes(self) -> int:
        """Return the whole cache: K, V and recurrent state."""
        return self.k_bytes + self.v_bytes + self.state_bytes


def row_bytes(cache_type: str, width: int) -> int:
    """Return the bytes of one cache row of `width` elements in `cache_type`."""
    try:
        type_size, block_size = CACHE_TYPES[cache_type]
    except KeyError:
        raise SddtuiError("memory_cache_type_unknown", value=cache_type, known=", ".join(CACHE_TYPES)) from None
    if width % block_size:
        raise SddtuiError("memory_cache_type_block", value=cache_type, width=width, block=block_size)
    return width // block_size * type_size


def padded_n_ctx(n_ctx: int, n_parallel: int = 1, kv_unified: bool = False) -> tuple[int, int]:
    """Return (n_ctx, n_ctx per sequence) after llama.cpp's padding to 256 cells."""
    if n_ctx <= 0:
        raise SddtuiError("memory_n_ctx_invalid", value=n_ctx)
    n_ctx = _pad(n_ctx, CONTEXT_PADDING)
    if kv_unified or n_parallel <= 1:
        return n_ctx, n_ctx
    n_ctx_seq = _pad(n_ctx // n_parallel, CONTEXT_PADDING)
    return n_ctx_seq * n_parallel, n_ctx_seq


def plan_kv(architecture: ModelArchitecture, settings: CacheSettings) -> KvPlan:
    """Compute the bytes llama.cpp allocates for the KV cache and recurrent state."""
    if settings.type_v in QUANTIZED_TYPES and not settings.flash_attn:
        raise SddtuiError("memory_quantized_v_needs_flash_attn", value=settings.type_v)
    n_parallel = max(1, settings.n_parallel)
    n_ctx, n_ctx_seq = padded_n_ctx(settings.n_ctx, n_parallel, settings.kv_unified)
    streams = 1 if settings.kv_unified else n_parallel
    cells_per_stream = n_ctx_seq

    sliding_per_stream = 0
    if architecture.has_sliding_window:
        window = architecture.sliding_window or 0
        wanted = window * (n_parallel if settings.kv_unified else 1) + settings.n_ubatch
        sliding_per_stream = _pad(min(cells_per_stream, wanted), CONTEXT_PADDING)
        if settings.swa_full:
            sliding_per_stream = cells_per_stream

    attention_layers = [layer for layer in architecture.layers if layer.kind in ("full", "sliding")]
    widest_v = max((layer.v_width for layer in attention_layers), default=0)
    k_bytes = v_bytes = 0
    per_token = 0
    for layer in attention_layers:
        cells = (sliding_per_stream if layer.kind == "sliding" else cells_per_stream) * streams
        # Without flash attention V is stored transposed, so every layer's V row is padded to the widest.
        v_width = layer.v_width if settings.flash_attn or layer.v_width == 0 else widest_v
        k_row = row_bytes(settings.type_k, layer.k_width)
        v_row = row_bytes(settings.type_v, v_width) if v_width else 0
        k_bytes += k_row * cells
        v_bytes += v_row * cells
        if layer.kind == "full":
            per_token += k_row + v_row

    sequences = max(1, n_parallel)
    state_bytes = architecture.recurrent_state_bytes_per_sequence * sequences
    return KvPlan(
        n_ctx=n_ctx,
        n_ctx_seq=n_ctx_seq,
        cells_full=cells_per_stream * streams,
        cells_sliding=sliding_per_stream * streams,
        k_bytes=k_bytes,
        v_bytes=v_bytes,
        state_bytes=state_bytes,
        kv_bytes_per_token=per_token,
    )


def max_n_ctx_within(
    architecture: ModelArchitecture,
    settings: CacheSettings,
    budget_bytes: int,
    limit: int | None = None,
    other_bytes: Callable[[CacheSettings], int] | None = None,
) -> int:
    """Return the largest padded n_ctx up to `limit` whose KV cache, plus `other_bytes` at that n_ctx, fits `budget_bytes`."""
    if budget_bytes <= 0:
        return 0

    def fits(n_ctx: int) -> bool:
        candidate = _with_n_ctx(settings, n_ctx)
        extra = other_bytes(candidate) if other_bytes else 0
        return plan_kv(architecture, candidate).kv_bytes + extra <= budget_bytes

    step = CONTEXT_PADDING if settings.kv_unified else CONTEXT_PADDING * max(1, settings.n_parallel)
    low, high = 0, (limit or MAX_PLANNED_N_CTX) // step
    while low < high:
        middle = (low + high + 1) // 2
        if fits(middle * step):
            low = middle
        else:
            high = middle - 1
    return low * step


def _with_n_ctx(settings: CacheSettings, n_ctx: int) -> CacheSettings:
    """Return the settings with another n_ctx."""
    from dataclasses import replace

    return replace(settings, n_ctx=n_ctx)


def _pad(value: int, multiple: int) -> int:
    """Round `value` up to a multiple of `multiple`."""
    return (value + multiple - 1) // multiple * multiple


# MLX (mlx_lm.models.cache): KVCache grows its buffers 256 tokens at a time; RotatingKVCache
# (sliding-window layers) stops growing at the window; QuantizedKVCache packs `bits` per element
# into uint32 words and keeps one scale and one bias (in the model dtype) per group.
MLX_STEP = 256


def mlx_kv_bytes(
    architecture: ModelArchitecture,
    tokens: int,
    *,
    dtype_bytes: int = 2,
    kv_bits: int | None = None,
    kv_group_size: int = 64,
    step: int = MLX_STEP,
) -> int:
    """Estimate MLX's KV cache bytes after `tokens` tokens, with its step-wise growth."""
    # NOTE: follows mlx_lm's cache classes as published in 2025; a later mlx_lm may grow differently.
    allocated = math.ceil(max(tokens, 0) / step) * step
    total = 0
    for layer in architecture.layers:
        if layer.kind not in ("full", "sliding"):
            continue
        cells = allocated
        if layer.kind == "sliding" and architecture.sliding_window:
            cells = min(allocated, architecture.sliding_window)
        for width in (layer.k_width, layer.v_width):
            if not width:
                continue
            if kv_bits is None:
                total += cells * width * dtype_bytes
            else:
                packed = width * kv_bits // 32 * 4
                groups = width // kv_group_size
                total += cells * (packed + 2 * groups * dtype_bytes)
    total += architecture.recurrent_state_bytes_per_sequence // F32_BYTES * dtype_bytes
    return total
