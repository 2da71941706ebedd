"""Write small random-weight llama-family GGUFs of a chosen attention shape, to check the planner against llama.cpp."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

TINY_VOCAB = ["<unk>", "<s>", "</s>"] + [chr(code) for code in range(ord("a"), ord("z") + 1)] + ["▁"]


@dataclass(frozen=True, slots=True)
class TinyShape:
    """The attention shape of a generated model."""

    name: str
    layers: int
    heads: int
    heads_kv: int | tuple[int, ...]
    embedding: int
    key_length: int | None = None
    value_length: int | None = None
    context_length: int = 4096
    architecture: str = "llama"
    sliding_window: int | None = None
    """With "gemma3": the window of the sliding-window layers (five of every six)."""
    """"deci" for per-layer head counts: llama.cpp's llama graph takes every layer's shape from layer 0."""


# GQA, MQA, per-layer KV heads and head lengths other than embedding / heads.
TINY_SHAPES = (
    TinyShape("gqa", layers=4, heads=8, heads_kv=2, embedding=256),
    TinyShape("mqa", layers=3, heads=4, heads_kv=1, embedding=256),
    TinyShape("per-layer-heads", layers=4, heads=8, heads_kv=(2, 1, 4, 2), embedding=256, architecture="deci"),
    TinyShape("head-dim-96", layers=2, heads=4, heads_kv=2, embedding=256, key_length=96, value_length=96),
    TinyShape("wide-heads", layers=2, heads=2, heads_kv=2, embedding=128, key_length=128, value_length=128),
    TinyShape("sliding-window", layers=7, heads=4, heads_kv=2, embedding=256, architecture="gemma3", sliding_window=128),
)


def write_tiny_gguf(path: Path, shape: TinyShape, *, header_only: bool = False, extra_keys: int = 0) -> Path:
    """Write a llama-family GGUF with random f32 weights (or no tensors) for `shape`."""
    import gguf
    import numpy as np

    generator = np.random.default_rng(0)
    heads_kv = shape.heads_kv
    key_length = shape.key_length or shape.embedding // shape.heads
    value_length = shape.value_length or shape.embedding // shape.heads
    feed_forward = shape.embedding * 2

    writer = gguf.GGUFWriter(str(path), shape.architecture)
    writer.add_block_count(shape.layers)
    writer.add_context_length(shape.context_length)
    writer.add_embedding_length(shape.embedding)
    writer.add_feed_forward_length(feed_forward)
    writer.add_head_count(shape.heads)
    writer.add_head_count_kv(list(heads_kv) if isinstance(heads_kv, tuple) else heads_kv)
    writer.add_layer_norm_rms_eps(1e-5)
    if shape.sliding_window:
        writer.add_sliding_window(shape.sliding_window)
    if shape.key_length:
        writer.add_key_length(key_length)
        writer.add_rope_dimension_count(key_length)
    if shape.value_length:
        writer.add_value_length(value_length)
    writer.add_file_type(gguf.LlamaFileType.ALL_F32)
    writer.add_tokenizer_model("llama")
    writer.add_token_list(TINY_VOCAB)
    writer.add_token_scores([0.0] * len(TINY_VOCAB))
    writer.add_token_types([2, 3, 3] + [1] * (len(TINY_VOCAB) - 3))
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(2)
    writer.add_unk_token_id(0)
    for index in range(extra_keys):
        writer.add_string(f"sddtui.padding.{index}", "x" * 32)

    def tensor(name: str, *numpy_shape: int) -> None:
        writer.add_tensor(name, (generator.standard_normal(numpy_shape) * 0.02).astype(np.float32))

    if not header_only:
        tensor("token_embd.weight", len(TINY_VOCAB), shape.embedding)
        writer.add_tensor("output_norm.weight", np.ones(shape.embedding, dtype=np.float32))
        for layer in range(shape.layers):
            layer_heads_kv = heads_kv[layer] if isinstance(heads_kv, tuple) else heads_kv
            writer.add_tensor(f"blk.{layer}.attn_norm.weight", np.ones(shape.embedding, dtype=np.float32))
            tensor(f"blk.{layer}.attn_q.weight", shape.heads * key_length, shape.embedding)
            tensor(f"blk.{layer}.attn_k.weight", layer_heads_kv * key_length, shape.embedding)
            tensor(f"blk.{layer}.attn_v.weight", layer_heads_kv * value_length, shape.embedding)
            tensor(f"blk.{layer}.attn_output.weight", shape.embedding, shape.heads * value_length)
            writer.add_tensor(f"blk.{layer}.ffn_norm.weight", np.ones(shape.embedding, dtype=np.float32))
            if shape.architecture == "gemma3":
                for norm in ("post_attention_norm", "post_ffw_norm"):
                    writer.add_tensor(f"blk.{layer}.{norm}.weight", np.ones(shape.embedding, dtype=np.float32))
                for norm in ("attn_q_norm", "attn_k_norm"):
                    writer.add_tensor(f"blk.{layer}.{norm}.weight", np.ones(key_length, dtype=np.float32))
            tensor(f"blk.{layer}.ffn_gate.weight", feed_forward, shape.embedding)
            tensor(f"blk.{layer}.ffn_up.weight", feed_forward, shape.embedding)
            tensor(f"blk.{layer}.ffn_down.weight", shape.embedding, feed_forward)

    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path
