"""Provide a model's cache-relevant architecture from a Hugging Face or MLX `config.json`."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

from sddtui.errors import SddtuiError
from sddtui.memory.architecture import LayerCache, ModelArchitecture

# HF model_type to the GGUF architecture name llama.cpp uses, where they differ.
GGUF_NAMES = {"gemma3_text": "gemma3", "gpt_oss": "gpt-oss", "deepseek_v2": "deepseek2", "deepseek_v3": "deepseek2"}
# Layer types in HF `layer_types` lists that keep a sliding-window cache or a recurrent state.
SLIDING_LAYER_TYPES = {"sliding_attention", "chunked_attention"}
RECURRENT_LAYER_TYPES = {"mamba", "conv", "linear_attention"}
# Weight file patterns in order of preference. A Hugging Face repository often carries the same
# weights as safetensors and as PyTorch .bin, so only the first pattern present is summed.
WEIGHT_FILE_PATTERNS = ("*.safetensors", "*.bin", "*.npz", "*.gguf")
# Architectures whose MLP has no gate projection (two matrices instead of three).
UNGATED_MLP_TYPES = {"gpt2", "gpt_neox", "gptj", "gpt_bigcode", "starcoder2", "phi", "falcon", "bloom", "opt"}
# Architectures with bias vectors on the Q, K and V projections.
QKV_BIAS_TYPES = {"qwen2", "qwen2_moe", "qwen2_vl"}
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
    # Weight files count only beside a real config.json, so that a loose copy of a config in some
    # other folder never picks up unrelated files.
    if path.is_dir() or config_path.name == "config.json":
        found = weight_files_bytes(config_path.parent)
        if found is not None:
            weights, pattern = found
            provenance = dict(architecture.provenance)
            provenance["weights_bytes"] = f"sizes of {pattern} in {config_path.parent}"
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

    parameter_count = estimate_parameter_count(config)
    if parameter_count:
        provenance["parameter_count"] = "estimate from config.json layer shapes"
    return ModelArchitecture(
        architecture=GGUF_NAMES.get(model_type, model_type),
        layers=tuple(layers),
        sliding_window=int(sliding_window) if sliding_window and any(sliding_flags) else None,
        context_length=get("max_position_embeddings", "n_positions", default=None),
        mla=mla,
        parameter_count=parameter_count,
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


def weight_files_bytes(folder: Path) -> tuple[int, str] | None:
    """Return the summed size of the weight files in a model folder and their pattern, or None when it has none."""
    # NOTE: a folder with several alternative GGUF quantizations of one model is summed as if
    # they were shards of one model, which overstates the weights.
    for pattern in WEIGHT_FILE_PATTERNS:
        files = [file for file in folder.glob(pattern) if file.is_file()]
        if files:
            return sum(file.stat().st_size for file in files), pattern
    return None


def estimate_parameter_count(config: dict) -> int | None:
    """Estimate a model's total parameters from the layer shapes in its config.json, or return None when they are missing."""
    text = config.get("text_config") if isinstance(config.get("text_config"), dict) else config
    model_type = str(text.get("model_type") or config.get("model_type") or "")
    hidden = _first_int(text, "hidden_size", "d_model", "n_embd")
    block_count = _first_int(text, "num_hidden_layers", "n_layer", "num_layers")
    vocab = _first_int(text, "vocab_size")
    if not (hidden and block_count and vocab):
        return None

    tied = text.get("tie_word_embeddings", config.get("tie_word_embeddings"))
    if tied is None:
        # transformers defaults differ per family: Gemma and Mamba tie the output to the embeddings, most others do not.
        tied = model_type.startswith(("gemma", "mamba"))
    embeddings = vocab * hidden * (1 if tied else 2)
    final_norm = hidden

    if model_type == "mamba":
        return embeddings + final_norm + block_count * _mamba_layer_parameters(text, hidden)
    layer_types = text.get("layer_types") if isinstance(text.get("layer_types"), list) else []
    if model_type == "mamba2" or any(str(kind) in RECURRENT_LAYER_TYPES for kind in layer_types):
        # NOTE: hybrid and Mamba-2 layer shapes vary by family, so their weight size must come from files or --weights.
        return None

    attention = _attention_parameters(text, model_type, hidden)
    if attention is None:
        return None
    dense_mlp, sparse_mlp = _mlp_parameters(text, model_type, hidden)
    if dense_mlp is None:
        return None
    layer_norms = 4 * hidden if model_type.startswith("gemma") else 2 * hidden

    total = embeddings + final_norm
    for index in range(block_count):
        mlp = sparse_mlp if sparse_mlp is not None and _is_sparse_layer(text, index) else dense_mlp
        total += attention + mlp + layer_norms
    return total


def _first_int(section: dict, *names: str) -> int | None:
    """Return the first of `names` that `section` sets to a number, as an int."""
    for name in names:
        value = section.get(name)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return int(value)
    return None


def _attention_parameters(text: dict, model_type: str, hidden: int) -> int | None:
    """Return the parameters of one attention block: projections, their biases and MLA's low-rank factors."""
    heads = _first_int(text, "num_attention_heads", "n_head")
    if not heads:
        return None
    kv_lora_rank = _first_int(text, "kv_lora_rank")
    if kv_lora_rank:
        rope = _first_int(text, "qk_rope_head_dim") or 0
        nope = _first_int(text, "qk_nope_head_dim") or 0
        v_head = _first_int(text, "v_head_dim") or nope
        q_lora_rank = _first_int(text, "q_lora_rank")
        if q_lora_rank:
            query = hidden * q_lora_rank + q_lora_rank + q_lora_rank * heads * (nope + rope)
        else:
            query = hidden * heads * (nope + rope)
        latent = hidden * (kv_lora_rank + rope) + kv_lora_rank + kv_lora_rank * heads * (nope + v_head)
        return query + latent + heads * v_head * hidden

    kv_heads = text.get("num_key_value_heads", text.get("num_kv_heads")) or heads
    if isinstance(kv_heads, list):
        kv_heads = max(int(count) for count in kv_heads)
    head_dim = _first_int(text, "head_dim") or hidden // heads
    query_width = heads * head_dim
    kv_width = int(kv_heads) * head_dim
    projections = hidden * query_width + 2 * hidden * kv_width + query_width * hidden
    if text.get("attention_bias") or model_type in QKV_BIAS_TYPES:
        projections += query_width + 2 * kv_width
    return projections


def _mlp_parameters(text: dict, model_type: str, hidden: int) -> tuple[int | None, int | None]:
    """Return the parameters of one dense MLP and of one mixture-of-experts MLP (None when the model has no experts)."""
    matrices = 2 if model_type in UNGATED_MLP_TYPES else 3
    intermediate = _first_int(text, "intermediate_size", "n_inner", "ffn_dim")
    if not intermediate:
        return None, None
    dense = matrices * hidden * intermediate

    experts = _first_int(text, "n_routed_experts", "num_experts", "num_local_experts")
    if not experts:
        return dense, None
    expert_width = _first_int(text, "moe_intermediate_size") or intermediate
    routed = experts * matrices * hidden * expert_width
    router = hidden * experts
    shared_width = _first_int(text, "shared_expert_intermediate_size")
    if shared_width:
        # Qwen MoE: one shared expert of its own width, scaled by a one-output gate.
        shared = matrices * hidden * shared_width + hidden
    else:
        shared = (_first_int(text, "n_shared_experts") or 0) * matrices * hidden * expert_width
    return dense, routed + router + shared


def _is_sparse_layer(text: dict, index: int) -> bool:
    """Return whether layer `index` of an MoE model uses experts rather than a dense MLP."""
    if index < (_first_int(text, "first_k_dense_replace") or 0):
        return False
    if index in (text.get("mlp_only_layers") or []):
        return False
    step = _first_int(text, "decoder_sparse_step") or 1
    return (index + 1) % step == 0


def _mamba_layer_parameters(text: dict, hidden: int) -> int:
    """Return the parameters of one Mamba-1 block: in and out projections, conv, x and dt projections, A, D and the norm."""
    d_inner = _first_int(text, "intermediate_size") or 2 * hidden
    d_state = _first_int(text, "state_size") or 16
    d_conv = _first_int(text, "conv_kernel") or 4
    dt_rank = text.get("time_step_rank")
    dt_rank = int(dt_rank) if isinstance(dt_rank, int) else math.ceil(hidden / 16)
    in_projection = hidden * 2 * d_inner
    convolution = d_inner * d_conv + d_inner
    x_projection = d_inner * (dt_rank + 2 * d_state)
    dt_projection = dt_rank * d_inner + d_inner
    return in_projection + convolution + x_projection + dt_projection + d_inner * d_state + d_inner + d_inner * hidden + hidden


def find_local_model_folder(model_id: str, environ: dict[str, str] | None = None) -> Path | None:
    """Return the folder with config.json for a model id that is a local path or in the Hugging Face cache.

    mlx_lm.server lists a model by the path or the Hugging Face repo id it was started with, and it
    loads a repo from the cache at HF_HOME (default ~/.cache/huggingface); only this machine's files are read.
    """
    import os

    environ = dict(os.environ) if environ is None else environ
    direct = Path(model_id).expanduser()
    if (direct / "config.json").is_file():
        return direct
    if "/" not in model_id or model_id.startswith(("/", ".", "~")):
        return None
    hf_home = Path(environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface").expanduser()
    hub = Path(environ.get("HF_HUB_CACHE") or hf_home / "hub")
    snapshots = hub / f"models--{model_id.replace('/', '--')}" / "snapshots"
    if not snapshots.is_dir():
        return None
    candidates = sorted(
        (folder for folder in snapshots.iterdir() if (folder / "config.json").is_file()),
        key=lambda folder: folder.stat().st_mtime,
        reverse=True,
    )
    return candidates[0] if candidates else None
