"""Provide `sddtui memory`: the KV cache and memory plan for a model, a context length and a machine."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import replace
from pathlib import Path

from sddtui.errors import SddtuiError
from sddtui.i18n import detect_language, translate
from sddtui.memory.architecture import ModelArchitecture, read_gguf_architecture
from sddtui.memory.config import read_config_architecture
from sddtui.memory.kv import CACHE_TYPES, QUANTIZED_TYPES, CacheSettings
from sddtui.memory.machine import format_bytes, parse_size, read_machine_memory, read_nvidia_memory
from sddtui.memory.plan import QUANT_BITS_PER_WEIGHT, MemoryPlan, format_parameters, plan_memory, resolve_weights

DEFAULT_N_CTX = 4096


def _whole_number(flag: str, minimum: int):
    """Return an argparse type that accepts a whole number of at least `minimum` and names `flag` otherwise."""

    def parse(text: str) -> int:
        """Return `text` as an int, or raise an argparse error that names the flag, the value and the range."""
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(
                translate("memory_flag_out_of_range", detect_language(), flag=flag, value=text, minimum=minimum)
            )
        return value

    return parse


def _memory_size(text: str) -> str:
    """Return the --memory text when it is a size above zero, else raise an argparse error that names it."""
    try:
        size = parse_size(text)
    except ValueError:
        size = 0
    if size <= 0:
        raise argparse.ArgumentTypeError(translate("memory_size_invalid", detect_language(), value=text))
    return text


def add_memory_parser(subparsers) -> argparse.ArgumentParser:
    """Add the `memory` subcommand and its options to an argparse subparsers object."""
    parser = subparsers.add_parser("memory", help="KV cache and memory plan for a model and context length")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--gguf", type=Path, help="GGUF model file; only its header is read")
    source.add_argument("--config", type=Path, help="config.json of a Hugging Face or MLX model, or its folder")
    parser.add_argument("--base-url", help="running server whose model to plan for (llama.cpp, LM Studio, Ollama, vLLM)")
    parser.add_argument("--model", help="model id on the server, when it serves several")
    parser.add_argument("--ctx", type=_whole_number("--ctx", 1), default=None, help=f"n_ctx in tokens (default: the server's, else {DEFAULT_N_CTX})")
    parser.add_argument("--cache-type", choices=sorted(CACHE_TYPES), help="K and V cache type (default f16)")
    parser.add_argument("--cache-type-k", "-ctk", choices=sorted(CACHE_TYPES), help="K cache type")
    parser.add_argument("--cache-type-v", "-ctv", choices=sorted(CACHE_TYPES), help="V cache type; quantized needs --flash-attn")
    parser.add_argument("--parallel", type=_whole_number("--parallel", 1), default=1, help="parallel sequences (server slots), default 1")
    parser.add_argument("--kv-unified", action="store_true", help="one KV buffer shared by all slots (llama-server --kv-unified)")
    parser.add_argument("--flash-attn", action="store_true", help="plan for flash attention (no V padding; allows a quantized V)")
    parser.add_argument("--ubatch", type=_whole_number("--ubatch", 1), default=512, help="micro-batch size in tokens (sizes sliding-window caches), default 512")
    parser.add_argument("--swa-full", action="store_true", help="full-size cache for sliding-window layers")
    parser.add_argument("--memory", type=_memory_size, help="memory budget to plan for, e.g. 24G (default: this machine's)")
    parser.add_argument("--weights", help="weight size in bytes or with a unit, e.g. 9G; overrides the model files")
    parser.add_argument(
        "--quant",
        choices=list(QUANT_BITS_PER_WEIGHT),
        help="estimate the weight size from the parameter count at this llama.cpp weight type (needs a config.json; not with --gguf or --weights)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    return parser


def run_memory(arguments: argparse.Namespace, lang: str) -> int:
    """Run `sddtui memory` and return the exit status."""
    try:
        _check_weight_flags(arguments)
        architecture, server_n_ctx = _load_architecture(arguments)
        weights = resolve_weights(architecture, _weights_bytes(arguments.weights), arguments.quant)
        settings = CacheSettings(
            n_ctx=arguments.ctx or server_n_ctx or DEFAULT_N_CTX,
            type_k=arguments.cache_type_k or arguments.cache_type or "f16",
            type_v=arguments.cache_type_v or arguments.cache_type or "f16",
            n_parallel=arguments.parallel,
            kv_unified=arguments.kv_unified,
            flash_attn=arguments.flash_attn,
            n_ubatch=arguments.ubatch,
            swa_full=arguments.swa_full,
        )
        plan = plan_memory(architecture, settings, _budget_bytes(arguments.memory), weights)
    except SddtuiError as error:
        print(translate("cli_error", lang, message=error.render(lang)), file=sys.stderr)
        return 2

    if arguments.json:
        document = plan.to_json(lang)
        document["exceeds_model_context"] = exceeds_model_context(plan)
        document["model_context_note"] = _model_context_note(plan, lang)
        print(json.dumps(document, indent=2, ensure_ascii=False))
    else:
        print(format_plan(plan, lang))
    return 0 if plan.fits is not False else 1


def _check_weight_flags(arguments: argparse.Namespace) -> None:
    """Reject --quant beside --weights (two sources of one size) or beside --gguf (its tensors give the exact size)."""
    if arguments.quant is None:
        return
    if arguments.weights is not None:
        raise SddtuiError("memory_weights_quant_conflict", weights=arguments.weights, quant=arguments.quant)
    if arguments.gguf is not None:
        raise SddtuiError("memory_quant_with_gguf", quant=arguments.quant, path=str(arguments.gguf))


def exceeds_model_context(plan: MemoryPlan) -> bool:
    """Return whether the context of one sequence is above the context length the model was trained for."""
    trained = plan.architecture.context_length
    return trained is not None and plan.kv.n_ctx_seq > trained


def _model_context_note(plan: MemoryPlan, lang: str) -> str | None:
    """Return the warning for a context above the model's trained context length, or None when it is within."""
    if not exceeds_model_context(plan):
        return None
    return translate(
        "memory_over_model_context", lang, n_ctx=plan.kv.n_ctx_seq, trained=plan.architecture.context_length
    )


def _budget_bytes(text: str | None) -> int:
    """Return the budget from --memory, else the NVIDIA GPUs' memory, else the macOS GPU limit or total RAM."""
    if text:
        try:
            return parse_size(text)
        except ValueError:
            raise SddtuiError("memory_size_invalid", value=text) from None
    # A model on NVIDIA GPUs is bounded by their memory (llama.cpp splits layers across them), not by RAM.
    gpus = read_nvidia_memory()
    if gpus:
        return sum(gpu.total_bytes for gpu in gpus)
    machine = read_machine_memory()
    return machine.gpu_limit_bytes or machine.total_bytes


def _weights_bytes(text: str | None) -> int | None:
    """Return the weight size from --weights, or None when the flag is absent."""
    if text is None:
        return None
    try:
        size = parse_size(text)
    except ValueError:
        raise SddtuiError("memory_weights_invalid", value=text) from None
    if size <= 0:
        raise SddtuiError("memory_weights_invalid", value=text)
    return size


def _load_architecture(arguments: argparse.Namespace) -> tuple[ModelArchitecture, int | None]:
    """Return the architecture from --gguf, --config or --base-url, and the server's n_ctx when it reported one."""
    if arguments.gguf:
        return read_gguf_architecture(arguments.gguf), None
    if arguments.config:
        return read_config_architecture(arguments.config), None
    if arguments.base_url:
        from sddtui.memory.server import read_server_model

        found = asyncio.run(read_server_model(arguments.base_url, arguments.model))
        if found is None or found.architecture is None:
            raise SddtuiError("memory_server_unknown", url=arguments.base_url)
        architecture = found.architecture
        if architecture.weights_bytes is None and found.weights_bytes:
            architecture = replace(architecture, weights_bytes=found.weights_bytes)
        return architecture, found.n_ctx
    raise SddtuiError("memory_model_required")


def format_plan(plan: MemoryPlan, lang: str) -> str:
    """Format a plan as an aligned two-column table with the largest n_ctx per cache type."""
    labels = translate("memory_table_rows", lang).split("|")
    values = [
        str(plan.kv.n_ctx),
        str(plan.settings.n_parallel),
        _format_slot_context(plan, lang),
        f"{format_bytes(plan.kv.kv_bytes)} ({plan.kv.kv_bytes:,} B)",
        f"{plan.kv.kv_bytes_per_token:,} B",
        _format_weights(plan, lang),
        format_bytes(plan.compute_bytes),
        _format_total(plan, lang),
        format_bytes(plan.budget_bytes),
        _format_fits(plan, lang),
    ]
    width = max(len(label) for label in labels)
    lines = [translate("memory_table_title", lang, model=plan.architecture.architecture, source=plan.architecture.source)]
    lines += [f"  {label.ljust(width)}  {value}" for label, value in zip(labels, values)]

    note = _model_context_note(plan, lang)
    if note:
        lines.append(note)
    reasons = plan.unknown_reasons(lang)
    if "fits" in reasons:
        lines.append(reasons["fits"])
    if "max_ctx" in reasons:
        lines.append(reasons["max_ctx"])
    elif plan.max_ctx:
        lines.append(translate("memory_table_max_ctx", lang, margin=format_bytes(plan.safety_margin_bytes)))
        for cache_type, n_ctx in plan.max_ctx.items():
            lines.append(f"  {cache_type.ljust(8)} {_format_max_ctx(plan, cache_type, n_ctx, lang)}")
    return "\n".join(lines)


def _format_slot_context(plan: MemoryPlan, lang: str) -> str:
    """Format the per-slot context row: n_ctx_seq, and whether the slots share one unified KV buffer."""
    if plan.settings.kv_unified and plan.settings.n_parallel > 1:
        return translate("memory_slot_context_unified", lang, n_ctx_seq=plan.kv.n_ctx_seq)
    return str(plan.kv.n_ctx_seq)


def _format_fits(plan: MemoryPlan, lang: str) -> str:
    """Format the fits row; a "no" caused by the safety margin alone says so with the sizes."""
    if plan.fits is None:
        return unknown_text(lang)
    if plan.fits:
        return translate("memory_yes", lang)
    if plan.total_bytes is not None and plan.budget_bytes is not None and plan.total_bytes <= plan.budget_bytes:
        return translate(
            "memory_no_margin",
            lang,
            total=format_bytes(plan.total_bytes),
            margin=format_bytes(plan.safety_margin_bytes),
            budget=format_bytes(plan.budget_bytes),
        )
    return translate("memory_no", lang)


def _format_weights(plan: MemoryPlan, lang: str) -> str:
    """Format the weights row: the size and, unless it was read from the model files, where it came from."""
    weights = plan.weights
    if weights.size_bytes is None:
        return unknown_text(lang)
    size = format_bytes(weights.size_bytes)
    if weights.source == "flag":
        return translate("memory_weights_from_flag", lang, size=size)
    if weights.source == "estimate":
        return translate(
            "memory_weights_estimate",
            lang,
            size=size,
            parameters=format_parameters(weights.parameter_count or 0),
            quant=weights.quant,
            bits=QUANT_BITS_PER_WEIGHT[weights.quant or ""],
        )
    return size


def _format_total(plan: MemoryPlan, lang: str) -> str:
    """Format the total row, or mark it unknown and show the bytes of the KV cache and compute buffer alone."""
    if plan.total_bytes is None:
        return translate("memory_total_unknown", lang, known=format_bytes(plan.kv_and_compute_bytes))
    return format_bytes(plan.total_bytes)


def _format_max_ctx(plan: MemoryPlan, cache_type: str, n_ctx: int | None, lang: str) -> str:
    """Format one cache type's largest n_ctx with its notes: the model maximum, flash attention."""
    text = str(n_ctx) if n_ctx is not None else unknown_text(lang)
    notes = []
    if cache_type in plan.max_ctx_at_model_limit:
        notes.append(translate("memory_model_maximum", lang))
    if cache_type in QUANTIZED_TYPES and not plan.settings.flash_attn:
        notes.append(translate("memory_needs_flash_attn", lang))
    if notes:
        text += f" ({', '.join(notes)})"
    return text


def unknown_text(lang: str) -> str:
    """Return the word the table shows for an unknown value."""
    return translate("memory_unknown", lang)
