"""Provide a model's cache-relevant architecture from GGUF metadata, with where each fact came from.

The layer rules follow llama.cpp (the copy vendored in llama-cpp-python 0.3.36): per-layer KV
head counts, key and value lengths that default to embedding / heads, sliding-window layer
patterns, MLA models that cache only the compressed latent, and recurrent layers whose state
does not grow with n_ctx.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from sddtui.errors import SddtuiError
from sddtui.memory.gguf_header import GGUFHeader, read_gguf_header

F16_BYTES = 2
F32_BYTES = 4

# Sliding-window layer patterns that llama.cpp sets in code when the GGUF has no
# `{arch}.attention.sliding_window_pattern` key: (n_pattern, dense_first). With dense_first False,
# layer il is a sliding-window layer when il % n_pattern < n_pattern - 1.
DEFAULT_SWA_PATTERNS: dict[str, tuple[int, bool]] = {
    "gemma2": (2, False),
    "gemma3": (6, False),
    "gemma3n": (5, False),
    "gpt-oss": (2, False),
    "cohere2": (4, False),
    "llama4": (4, False),
    "exaone4": (4, False),
    "olmo2": (4, False),
}
# Gemma 2 GGUFs may omit the window; llama.cpp then uses this one.
DEFAULT_SWA_WINDOWS = {"gemma2": 4096}
# Architectures whose every layer keeps a recurrent state and no KV cache.
RECURRENT_ARCHITECTURES = {"mamba", "mamba2", "rwkv6", "rwkv7", "rwkv6qwen2", "arwkv7"}


@dataclass(frozen=True, slots=True)
class LayerCache:
    """The cache one layer keeps: per token (K and V widths, in elements) or per sequence (recurrent state)."""

    kind: str
    """"full", "sliding", "recurrent" or "none"."""
    k_width: int = 0
    v_width: int = 0
    state_r_elements: int = 0
    state_s_elements: int = 0


@dataclass(frozen=True, slots=True)
class ModelArchitecture:
    """The facts that size a model's cache, and where each one came from."""

    architecture: str
    layers: tuple[LayerCache, ...]
    sliding_window: int | None = None
    context_length: int | None = None
    mla: bool = False
    """True when K contains the compressed latent and no V cache exists (DeepSeek V2/V3 in llama.cpp)."""
    weights_bytes: int | None = None
    """Bytes of the weight tensors as stored in the model files; None when no file was read."""
    parameter_count: int | None = None
    """Total parameters (all experts of an MoE model), from metadata or derived from config.json."""
    n_vocab: int | None = None
    n_embd: int | None = None
    head_count: int | None = None
    key_length: int = 0
    value_length: int = 0
    source: str = ""
    provenance: dict[str, str] = field(default_factory=dict)
    """Fact name to the key or endpoint it was read from."""

    @property
    def block_count(self) -> int:
        """Return the number of layers."""
        return len(self.layers)

    @property
    def head_count_kv(self) -> tuple[int, ...]:
        """Return the KV head count of each layer, derived from the K width and key length."""
        if not self.key_length:
            return tuple(0 for _ in self.layers)
        return tuple(layer.k_width // self.key_length for layer in self.layers)

    @property
    def kv_bytes_per_token(self) -> int:
        """Return the f16 K and V bytes one cache cell takes across all attention layers, before padding."""
        return sum((layer.k_width + layer.v_width) * F16_BYTES for layer in self.layers if layer.kind in ("full", "sliding"))

    @property
    def has_sliding_window(self) -> bool:
        """Return whether any layer uses a sliding window."""
        return any(layer.kind == "sliding" for layer in self.layers)

    @property
    def recurrent_state_bytes_per_sequence(self) -> int:
        """Return the f32 recurrent state one sequence keeps across all recurrent layers."""
        return sum(
            (layer.state_r_elements + layer.state_s_elements) * F32_BYTES for layer in self.layers if layer.kind == "recurrent"
        )


# Kept for callers written before sliding windows and MLA were modelled.
AttentionShape = ModelArchitecture


def read_gguf_architecture(path: Path) -> ModelArchitecture:
    """Read the cache-relevant architecture and the exact weight bytes from a GGUF file's header."""
    header = read_gguf_header(Path(path))
    architecture = architecture_from_fields(header.fields, source=f"GGUF header of {path}", origin="GGUF")
    return _with_weights(architecture, header)


def read_gguf_attention(path: Path) -> ModelArchitecture:
    """Read the architecture from a GGUF header (the name older callers use)."""
    return read_gguf_architecture(path)


def _with_weights(architecture: ModelArchitecture, header: GGUFHeader) -> ModelArchitecture:
    """Return the architecture with the tensor bytes the header lists."""
    provenance = dict(architecture.provenance)
    provenance["weights_bytes"] = "GGUF tensor infos (exact)"
    return _replace(architecture, weights_bytes=header.tensor_bytes, provenance=provenance)


def _replace(architecture: ModelArchitecture, **changes: object) -> ModelArchitecture:
    """Return a copy of a frozen slots dataclass with some fields changed."""
    from dataclasses import replace

    return replace(architecture, **changes)


def architecture_from_fields(fields: Mapping[str, object], *, source: str, origin: str) -> ModelArchitecture:
    """Build the architecture from GGUF-style metadata keys (a GGUF header or Ollama's model_info)."""
    name = fields.get("general.architecture")
    if not isinstance(name, str) or not name:
        raise SddtuiError("memory_architecture_missing", source=source, key="general.architecture")
    provenance: dict[str, str] = {"architecture": f"{origin} general.architecture"}

    def get(suffix: str):
        key = f"{name}.{suffix}"
        value = fields.get(key)
        if value is not None:
            provenance[suffix] = f"{origin} {key}"
        return value

    block_count = _int_or_none(get("block_count"))
    if not block_count:
        raise SddtuiError("memory_architecture_missing", source=source, key=f"{name}.block_count")
    n_embd = _int_or_none(get("embedding_length")) or 0
    head_count = _per_layer(get("attention.head_count"), block_count)
    head_count_kv_value = get("attention.head_count_kv")
    head_count_kv = _per_layer(head_count_kv_value, block_count) if head_count_kv_value is not None else head_count
    first_heads = next((count for count in head_count if count), 0)
    default_head_length = n_embd // first_heads if first_heads else 0
    key_length = _int_or_none(get("attention.key_length")) or default_head_length
    value_length = _int_or_none(get("attention.value_length")) or default_head_length
    key_length_swa = _int_or_none(get("attention.key_length_swa")) or key_length
    value_length_swa = _int_or_none(get("attention.value_length_swa")) or value_length
    mla = bool(_int_or_none(get("attention.key_length_mla")) and _int_or_none(get("attention.value_length_mla")))

    sliding_window = _int_or_none(get("attention.sliding_window")) or DEFAULT_SWA_WINDOWS.get(name)
    swa_flags = _sliding_window_layers(name, get("attention.sliding_window_pattern"), block_count, sliding_window)
    recurrent_flags = _recurrent_layers(name, fields, block_count, head_count_kv, get)
    state_r, state_s = _recurrent_state(name, n_embd, head_count, get)

    layers = []
    for index in range(block_count):
        if recurrent_flags[index]:
            layers.append(LayerCache("recurrent", state_r_elements=state_r, state_s_elements=state_s))
            continue
        kv_heads = head_count_kv[index]
        if kv_heads == 0:
            layers.append(LayerCache("none"))
            continue
        sliding = swa_flags[index]
        layer_key = key_length_swa if sliding else key_length
        layer_value = value_length_swa if sliding else value_length
        layers.append(
            LayerCache(
                "sliding" if sliding else "full",
                k_width=kv_heads * layer_key,
                v_width=0 if mla else kv_heads * layer_value,
            )
        )

    parameter_count = _int_or_none(fields.get("general.parameter_count"))
    if parameter_count:
        provenance["parameter_count"] = f"{origin} general.parameter_count"

    vocab = _int_or_none(get("vocab_size"))
    if vocab is None and isinstance(fields.get("tokenizer.ggml.tokens"), (list, tuple)):
        vocab = len(fields["tokenizer.ggml.tokens"])
    if vocab is None:
        vocab = _int_or_none(fields.get("tokenizer.ggml.tokens.count"))
    return ModelArchitecture(
        architecture=name,
        layers=tuple(layers),
        sliding_window=sliding_window if any(swa_flags) else None,
        context_length=_int_or_none(get("context_length")),
        mla=mla,
        parameter_count=parameter_count or None,
        n_vocab=vocab,
        n_embd=n_embd or None,
        head_count=first_heads or None,
        key_length=key_length,
        value_length=value_length,
        source=source,
        provenance=provenance,
    )


def _sliding_window_layers(name: str, pattern, block_count: int, sliding_window: int | None) -> list[bool]:
    """Return, per layer, whether llama.cpp gives it a sliding-window cache."""
    if not sliding_window:
        return [False] * block_count
    if isinstance(pattern, (list, tuple)):
        flags = [bool(flag) for flag in pattern]
        return (flags + [False] * block_count)[:block_count]
    default = DEFAULT_SWA_PATTERNS.get(name)
    if default is None and pattern is None:
        return [False] * block_count
    n_pattern, dense_first = default or (0, False)
    if pattern is not None:
        n_pattern = int(pattern)
    if dense_first:
        return [n_pattern == 0 or index % n_pattern != 0 for index in range(block_count)]
    return [n_pattern == 0 or index % n_pattern < n_pattern - 1 for index in range(block_count)]


def _recurrent_layers(name: str, fields: Mapping[str, object], block_count: int, head_count_kv, get) -> list[bool]:
    """Return, per layer, whether it keeps a recurrent state instead of a KV cache."""
    if name in RECURRENT_ARCHITECTURES:
        return [True] * block_count
    interval = _int_or_none(get("full_attention_interval"))
    if name in ("qwen3next", "qwen35", "qwen35moe"):
        interval = interval or 4
        return [(index + 1) % interval != 0 for index in range(block_count)]
    has_state = get("ssm.conv_kernel") is not None or get("shortconv.l_cache") is not None
    if has_state:
        # Hybrid GGUFs (Granite 4 hybrid, LFM2, Nemotron-H) mark state layers with zero KV heads.
        return [count == 0 for count in head_count_kv]
    return [False] * block_count


def _recurrent_state(name: str, n_embd: int, head_count, get) -> tuple[int, int]:
    """Return the f32 elements of the conv (r) and SSM (s) state per layer, as llama.cpp sizes them."""
    wkv_head_size = _int_or_none(get("wkv.head_size")) or 0
    if wkv_head_size:
        token_shift_count = _int_or_none(get("token_shift_count")) or 2
        return token_shift_count * n_embd, n_embd * wkv_head_size
    l_cache = _int_or_none(get("shortconv.l_cache")) or 0
    if l_cache:
        return n_embd * (l_cache - 1), 0
    d_conv = _int_or_none(get("ssm.conv_kernel")) or 0
    d_inner = _int_or_none(get("ssm.inner_size")) or 0
    d_state = _int_or_none(get("ssm.state_size")) or 0
    n_group = _int_or_none(get("ssm.group_count")) or 0
    conv = (d_conv - 1 if d_conv > 0 else 0) * (d_inner + 2 * n_group * d_state)
    return conv, d_state * d_inner


def _int_or_none(value) -> int | None:
    """Return an int from a scalar metadata value, or None."""
    if value is None or isinstance(value, (list, tuple, str)):
        return None
    return int(value)


def _per_layer(value, block_count: int) -> tuple[int, ...]:
    """Expand a count that is one number or a per-layer array to one entry per layer."""
    if value is None:
        return (0,) * block_count
    if isinstance(value, (list, tuple)):
        counts = tuple(int(item) for item in value)
        return (counts + (0,) * block_count)[:block_count]
    return (int(value),) * block_count
