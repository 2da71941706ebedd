"""Provide a model's attention shape from a GGUF header and the f16 KV cache bytes per token."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sddtui.errors import SddtuiError

F16_BYTES = 2


@dataclass(frozen=True, slots=True)
class AttentionShape:
    """The per-layer attention facts that size llama.cpp's KV cache."""

    architecture: str
    block_count: int
    head_count_kv: tuple[int, ...]
    key_length: int
    value_length: int
    context_length: int | None
    source: str

    @property
    def kv_bytes_per_token(self) -> int:
        """Return the f16 K and V bytes one token takes across all layers."""
        per_layer = (head_count * (self.key_length + self.value_length) for head_count in self.head_count_kv)
        return sum(per_layer) * F16_BYTES


def _field_value(reader, key: str):
    """Return a scalar, string or array value of a GGUF metadata field, or None when absent."""
    field = reader.fields.get(key)
    if field is None:
        return None
    return field.contents()


def read_gguf_attention(path: Path) -> AttentionShape:
    """Read the attention shape from a GGUF file's metadata."""
    from gguf import GGUFReader  # imported here: the reader pulls numpy in, which start-up does not need

    try:
        reader = GGUFReader(str(path))
    except (OSError, ValueError) as error:
        raise SddtuiError("gguf_unreadable", path=str(path), reason=str(error)) from error

    architecture = _field_value(reader, "general.architecture")
    if not isinstance(architecture, str):
        raise SddtuiError("gguf_unreadable", path=str(path), reason="no general.architecture")
    block_count = int(_field_value(reader, f"{architecture}.block_count") or 0)
    head_count = _field_value(reader, f"{architecture}.attention.head_count")
    head_count_kv = _field_value(reader, f"{architecture}.attention.head_count_kv")
    embedding_length = int(_field_value(reader, f"{architecture}.embedding_length") or 0)
    if head_count_kv is None:
        head_count_kv = head_count

    per_layer_kv = _per_layer(head_count_kv, block_count)
    first_head_count = _per_layer(head_count, block_count)[0] if head_count is not None else 0
    default_head_length = embedding_length // first_head_count if first_head_count else 0
    key_length = int(_field_value(reader, f"{architecture}.attention.key_length") or default_head_length)
    value_length = int(_field_value(reader, f"{architecture}.attention.value_length") or default_head_length)
    context_length = _field_value(reader, f"{architecture}.context_length")
    return AttentionShape(
        architecture=architecture,
        block_count=block_count,
        head_count_kv=per_layer_kv,
        key_length=key_length,
        value_length=value_length,
        context_length=int(context_length) if context_length is not None else None,
        source=f"GGUF header of {path}",
    )


def _per_layer(value, block_count: int) -> tuple[int, ...]:
    """Expand a head count that is one number or a per-layer array to one entry per layer."""
    if isinstance(value, (list, tuple)):
        return tuple(int(item) for item in value)
    return (int(value),) * block_count
