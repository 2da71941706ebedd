"""Provide a model's cache-relevant architecture from a Hugging Face or MLX `config.json`."""

from __future__ import annotations

import json
from pathlib import Path

from sddtui.errors import SddtuiError
from sddtui.memory.architecture import LayerCache, ModelArchitecture

# HF model_type to the GGUF architecture name llama.cpp uses, where they differ.
GGUF_NAMES = {"gemma3_text": "gemma3", "gpt_oss": "gpt-oss", "deepseek_v2": "deepseek2", "deepseek_v3": "deepseek2"}
# Layer types in HF `layer_types` lists that keep a sliding-window cache or a recurrent state.
SLIDING_LAYER_TYPES = {"sliding_attention", "chunked_attention"}
RECURRENT_LAYER_TYPES = {"mamba", "conv", "linear_attention"}
# Gemma 2 alternates local and global layers; Gemma 3 has five local layers to each global one.
DEFAULT_SLIDING_PATTERNS = {"gemma2": 2, "gemma3": 6, "gemma3_text": 6}


def read_config_architecture(path: Path) -> ModelArchitecture:
    """Read the architecture from `config.json` or a model folder that contains one."""
    path = Path(path)
    config_path = path / "config.json" if path.is_dir() else path
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise SddtuiError("memory_config_unreadable", path=str(config_path), reason=str(error)) from error
    if not isinstance(config, dict):
        raise SddtuiError("memory_config_unreadable", path=str(config_path), reason="the top level is not an object")

    architecture = architecture_from_config(config, source=f"config.json at {config_path}")
    weights = _safetensors_bytes(config_path.parent)
    if weights:
        provenance = dict(architecture.provenance)
        provenance["weights_bytes"] = f"sizes of *.safetensors in {config_path.parent}"
        from dataclasses import replace

        architecture = replace(architecture, weights_bytes=weights, provenance=provenance)
    return architecture


def architecture_from_config(config: dict, *, source: str) -> ModelArchitecture:
    """Build the architecture from a parsed config.json (text_config is used for multimodal models)."""
    text = config.get("text_config") if isinstance(config.get("text_config"), dict) else config
    model_type = str(text.get("model_type") or config.get("model_type") or "")
    provenance = {"architecture": "config.json model_type"}

    def get(*names: str, default=None):
        for name in names:
            if text.get(name) is not None:
                provenance[names[0]] = f"config.json {name}"
                return text[name]
        return default

    block_count = get("num_hidden_layers", "n_layer", "num_layers")
    if not block_count:
        raise SddtuiError("memory_architecture_missing", source=source, key="num_hidden_layers")
    block_count = int(block_count)
    n_embd = int(get("hidden_size", "d_model", default=0) or 0)
    head_count = int(get("num_attention_heads", "n_head", default=0) or 0)
    head_count_kv = get("num_key_value_heads", "num_kv_heads", default=head_count)
    head_dim = get("head_dim", default=None) or (n_embd // head_count if head_count else 0)
    key_length = int(head_dim)
    value_length = int(get("v_head_dim", default=None) or head_dim) if not text.get("kv_lora_rank") else 0

    layer_types = text.get("layer_types") if isinstance(text.get("layer_types"), list) else None
    sliding_window = get("sliding_window", default=None)
    sliding_flags = _sliding_flags(model_type, text, layer_types, block_count, sliding_window)
    recurrent_flags = [str(kind) in RECURRENT_LAYER_TYPES for kind in layer_types] if layer_types else [False] * block_count
    if model_type in ("mamba", "mamba2"):
        recurrent_flags = [True] * block_count
    state_r, state_s = _recurrent_state(model_type, text, n_embd)

    mla = bool(text.get("kv_lora_rank"))
    if mla:
        # llama.cpp caches one latent "head" per token: kv_lora_rank plus the RoPE part of the key.
        key_length = int(text["kv_lora_rank"]) + int(text.get("qk_rope_head_dim") or 0)
        provenance["key_length"] = "config.json kv_lora_rank + qk_rope_head_dim"

    layers = []
    for index in range(block_count):
        if recurrent_flags[index]:
            layers.append(LayerCache("recurrent", state_r_elements=state_r, state_s_elements=state_s))
            continue
        kv_heads = 1 if mla else int(head_count_kv[index] if isinstance(head_count_kv, list) else head_count_kv)
        layers.append(
            LayerCache(
                "sliding" if sliding_flags[index] else "full",
                k_width=kv_heads * key_length,
                v_width=0 if mla else kv_heads * value_length,
            )
        )

    return ModelArchitecture(
        architecture=GGUF_NAMES.get(model_type, model_type),
        layers=tuple(layers),
        sliding_window=int(sliding_window) if sliding_window and any(sliding_flags) else None,
        context_length=get("max_position_embeddings", "n_positions", default=None),
        mla=mla,
        n_vocab=get("vocab_size", default=None),
        n_embd=n_embd or None,
        head_count=head_count or None,
        key_length=key_length,
        value_length=value_length,
        source=source,
        provenance=provenance,
    )


def mlx_quantization(config: dict) -> tuple[int, int] | None:
    """Return MLX's weight quantization (bits, group_size) from a config.json, or None."""
    quantization = config.get("quantization") or config.get("quantization_config")
    if isinstance(quantization, dict) and "bits" in quantization:
        return int(quantization["bits"]), int(quantization.get("group_size", 64))
    return None


def _sliding_flags(model_type: str, text: dict, layer_types, block_count: int, sliding_window) -> list[bool]:
    """Return, per layer, whether it uses a sliding-window cache."""
    if layer_types:
        return [str(kind) in SLIDING_LAYER_TYPES for kind in layer_types][:block_count]
    if not sliding_window or text.get("use_sliding_window") is False:
        return [False] * block_count
    pattern = text.get("sliding_window_pattern") or DEFAULT_SLIDING_PATTERNS.get(model_type)
    if not pattern:
        return [False] * block_count
    return [index % int(pattern) < int(pattern) - 1 for index in range(block_count)]


def _recurrent_state(model_type: str, text: dict, n_embd: int) -> tuple[int, int]:
    """Return the f32 conv (r) and SSM (s) state elements per recurrent layer."""
    # NOTE: these follow llama.cpp's hparams for Mamba, Mamba-2, Granite 4 hybrid, LFM2 and
    # Qwen3-Next; a config from another recurrent family is sized as Mamba, which may be wrong.
    if text.get("conv_L_cache"):
        return n_embd * (int(text["conv_L_cache"]) - 1), 0
    if text.get("linear_conv_kernel_dim"):
        d_conv = int(text["linear_conv_kernel_dim"])
        d_inner = int(text["linear_value_head_dim"]) * int(text["linear_num_value_heads"])
        d_state = int(text["linear_key_head_dim"])
        n_group = int(text["linear_num_key_heads"])
        return (d_conv - 1) * (d_inner + 2 * n_group * d_state), d_state * d_inner
    d_conv = int(text.get("conv_kernel") or text.get("mamba_d_conv") or 0)
    expand = int(text.get("expand") or text.get("mamba_expand") or 2)
    d_inner = int(text.get("intermediate_size") if model_type == "mamba" else 0) or expand * n_embd
    if text.get("mamba_n_heads"):
        d_inner = int(text["mamba_n_heads"]) * int(text.get("mamba_d_head") or 0) or d_inner
    d_state = int(text.get("state_size") or text.get("mamba_d_state") or 0)
    n_group = int(text.get("n_groups") or text.get("mamba_n_groups") or 0)
    return (d_conv - 1 if d_conv else 0) * (d_inner + 2 * n_group * d_state), d_state * d_inner


def _safetensors_bytes(folder: Path) -> int:
    """Return the total size of the safetensors files in a model folder (weights plus small headers)."""
    return sum(file.stat().st_size for file in folder.glob("*.safetensors"))
