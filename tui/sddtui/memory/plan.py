"""Combine the KV cache, weights and a compute-buffer estimate into one memory plan, with the largest n_ctx per cache type."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from sddtui.errors import SddtuiError
from sddtui.i18n import translate
from sddtui.memory.architecture import ModelArchitecture
from sddtui.memory.kv import CACHE_TYPES, QUANTIZED_TYPES, CacheSettings, KvPlan, max_n_ctx_within, padded_n_ctx, plan_kv
from sddtui.memory.machine import format_bytes

# Kept free of the budget when the largest safe n_ctx is searched: a tenth of the budget, at least 512 MiB.
SAFETY_SHARE = 0.10
SAFETY_MINIMUM_BYTES = 512 * 1024 * 1024
F32_BYTES = 4
# Average bits per weight of common llama.cpp weight types, scales included. The k-quant figures are
# estimates: llama.cpp mixes tensor types inside one file, so a real file differs by a few percent.
QUANT_BITS_PER_WEIGHT = {
    "q4_0": 4.5,
    "q4_k_m": 4.85,
    "q5_k_m": 5.7,
    "q6_k": 6.56,
    "q8_0": 8.5,
    "f16": 16.0,
    "bf16": 16.0,
}


@dataclass(frozen=True, slots=True)
class Weights:
    """The weight bytes a plan counts and where that number came from."""

    size_bytes: int | None
    """None when no file, flag or parameter count gave the size."""
    source: str = ""
    """"file", "flag" or "estimate", or empty when the size is unknown."""
    parameter_count: int | None = None
    quant: str | None = None
    """The --quant weight type an estimate assumed."""

    @property
    def estimated(self) -> bool:
        """Return whether the size was derived from a parameter count rather than read or given."""
        return self.source == "estimate"


def resolve_weights(architecture: ModelArchitecture, weights_bytes: int | None = None, quant: str | None = None) -> Weights:
    """Pick the weight size: the --weights flag, else --quant times the parameter count, else the model files, else unknown."""
    parameters = architecture.parameter_count
    if weights_bytes is not None:
        return Weights(weights_bytes, "flag", parameters)
    if quant is not None:
        if quant not in QUANT_BITS_PER_WEIGHT:
            raise SddtuiError("memory_quant_unknown", value=quant, known=", ".join(QUANT_BITS_PER_WEIGHT))
        if not parameters:
            raise SddtuiError("memory_quant_needs_parameters", quant=quant, source=architecture.source)
        return Weights(estimate_weights_bytes(parameters, quant), "estimate", parameters, quant)
    if architecture.weights_bytes is not None:
        return Weights(architecture.weights_bytes, "file", parameters)
    return Weights(None, "", parameters)


def estimate_weights_bytes(parameter_count: int, quant: str) -> int:
    """Estimate the bytes of `parameter_count` weights stored as llama.cpp weight type `quant`."""
    return int(parameter_count * QUANT_BITS_PER_WEIGHT[quant] / 8)


@dataclass(frozen=True, slots=True)
class MemoryPlan:
    """The memory one model needs at one n_ctx and cache setting, and whether it fits the budget."""

    architecture: ModelArchitecture
    settings: CacheSettings
    kv: KvPlan
    weights: Weights
    compute_bytes: int
    """An estimate: llama.cpp sizes its compute buffer from the graph it builds at load."""
    budget_bytes: int | None
    safety_margin_bytes: int
    max_ctx: dict[str, int | None] = field(default_factory=dict)
    """Cache type (K and V alike) to the largest n_ctx that fits; quantized types assume flash attention.

    A value is None when the weight size is unknown or the type cannot hold this model's rows."""
    max_ctx_at_model_limit: frozenset[str] = frozenset()
    """Cache types whose largest n_ctx stopped at the model's trained context length, not at the budget."""

    @property
    def weights_bytes(self) -> int | None:
        """Return the weight bytes, or None when they are unknown."""
        return self.weights.size_bytes

    @property
    def kv_and_compute_bytes(self) -> int:
        """Return the KV cache and the compute buffer together, the part of the total known without the weights."""
        return self.kv.kv_bytes + self.compute_bytes

    @property
    def total_bytes(self) -> int | None:
        """Return weights, KV cache and compute buffer together, or None when the weight size is unknown."""
        if self.weights.size_bytes is None:
            return None
        return self.weights.size_bytes + self.kv_and_compute_bytes

    @property
    def fits(self) -> bool | None:
        """Return whether the total fits the budget less the margin (None without a budget or a weight size)."""
        if self.budget_bytes is None or self.total_bytes is None:
            return None
        return self.total_bytes <= self.budget_bytes - self.safety_margin_bytes

    def unknown_reasons(self, lang: str) -> dict[str, str]:
        """Return, for `fits` and `max_ctx` when they are unknown, the sentence that says why and what to pass."""
        reasons = {}
        if self.budget_bytes is None:
            reasons["fits"] = translate("memory_budget_unknown", lang)
        elif self.weights.size_bytes is None:
            reasons["fits"] = translate("memory_weights_unknown_note", lang, hint=weights_hint(self.weights, lang))
            reasons["max_ctx"] = translate("memory_max_ctx_unknown", lang)
        return reasons

    def to_json(self, lang: str = "en") -> dict:
        """Return the plan as the `sddtui memory --json` object, with notes in `lang`."""
        reasons = self.unknown_reasons(lang)
        return {
            "model": self.architecture.architecture,
            "source": self.architecture.source,
            "n_ctx": self.kv.n_ctx,
            "n_ctx_seq": self.kv.n_ctx_seq,
            "cache_type_k": self.settings.type_k,
            "cache_type_v": self.settings.type_v,
            "n_parallel": self.settings.n_parallel,
            "kv_unified": self.settings.kv_unified,
            "flash_attn": self.settings.flash_attn,
            "kv_bytes": self.kv.kv_bytes,
            "k_bytes": self.kv.k_bytes,
            "v_bytes": self.kv.v_bytes,
            "recurrent_state_bytes": self.kv.state_bytes,
            "kv_bytes_per_token": self.kv.kv_bytes_per_token,
            "weights_bytes": self.weights.size_bytes,
            "weights_source": self.weights.source or None,
            "weights_estimated": self.weights.estimated,
            "weights_quant": self.weights.quant,
            "parameter_count": self.weights.parameter_count,
            "parameter_count_source": self.architecture.provenance.get("parameter_count"),
            "compute_bytes_estimate": self.compute_bytes,
            "kv_and_compute_bytes": self.kv_and_compute_bytes,
            "total_bytes": self.total_bytes,
            "budget_bytes": self.budget_bytes,
            "safety_margin_bytes": self.safety_margin_bytes,
            "fits": self.fits,
            "fits_note": reasons.get("fits"),
            "max_ctx": self.max_ctx,
            "max_ctx_note": reasons.get("max_ctx"),
            "max_ctx_limited_by_model": bool(self.max_ctx_at_model_limit),
            "max_ctx_at_model_limit": sorted(self.max_ctx_at_model_limit),
            "model_context_length": self.architecture.context_length,
            "provenance": self.architecture.provenance,
        }


def estimate_compute_bytes(architecture: ModelArchitecture, settings: CacheSettings) -> int:
    """Estimate llama.cpp's CPU compute buffer: f32 logits and activations for one micro-batch, plus KQ without flash attention."""
    # NOTE: an estimate on the safe side. Against llama-cpp-python 0.3.36 on CPU (see
    # benchmarks/memory_accuracy.py) it overstates SmolLM2-135M at n_ctx 8192 without flash
    # attention (240 MiB against 166 MiB logged); GPU backends size their buffers differently.
    n_vocab = architecture.n_vocab or 0
    n_embd = architecture.n_embd or 0
    estimate = F32_BYTES * settings.n_ubatch * (n_vocab + 4 * n_embd)
    if not settings.flash_attn:
        n_ctx, _ = padded_n_ctx(settings.n_ctx, settings.n_parallel, settings.kv_unified)
        estimate += F32_BYTES * settings.n_ubatch * n_ctx * (architecture.head_count or 0)
    return estimate


def safety_margin(budget_bytes: int) -> int:
    """Return the bytes kept free of a budget."""
    return max(int(budget_bytes * SAFETY_SHARE), SAFETY_MINIMUM_BYTES)


def weights_hint(weights: Weights, lang: str) -> str:
    """Return what to pass for an unknown weight size, with the q4_k_m size when the parameter count is known."""
    if weights.parameter_count:
        return translate(
            "memory_weights_hint_parameters",
            lang,
            parameters=format_parameters(weights.parameter_count),
            size=format_bytes(estimate_weights_bytes(weights.parameter_count, "q4_k_m")),
        )
    return translate("memory_weights_hint", lang)


def format_parameters(count: int) -> str:
    """Format a parameter count in billions or millions, e.g. 14.77 B."""
    if count >= 1_000_000_000:
        return f"{count / 1e9:.2f} B"
    return f"{count / 1e6:.0f} M"


def plan_memory(
    architecture: ModelArchitecture,
    settings: CacheSettings,
    budget_bytes: int | None,
    weights: Weights | None = None,
) -> MemoryPlan:
    """Plan the memory of `architecture` at `settings` against `budget_bytes`, with the largest n_ctx per cache type.

    Without `weights` the size comes from the model files the architecture was read from."""
    weights = weights or resolve_weights(architecture)
    kv = plan_kv(architecture, settings)
    compute = estimate_compute_bytes(architecture, settings)
    margin = safety_margin(budget_bytes) if budget_bytes is not None else 0

    max_ctx: dict[str, int | None] = {}
    at_model_limit: set[str] = set()
    if budget_bytes is not None:
        room = None if weights.size_bytes is None else budget_bytes - margin - weights.size_bytes
        for cache_type in CACHE_TYPES:
            if room is None:
                # Without the weights, any n_ctx found would overstate what fits.
                max_ctx[cache_type] = None
                continue
            n_ctx, limited = _max_ctx_for_type(architecture, settings, cache_type, room)
            max_ctx[cache_type] = n_ctx
            if limited:
                at_model_limit.add(cache_type)
    return MemoryPlan(architecture, settings, kv, weights, compute, budget_bytes, margin, max_ctx, frozenset(at_model_limit))


def _max_ctx_for_type(architecture: ModelArchitecture, settings: CacheSettings, cache_type: str, room: int) -> tuple[int | None, bool]:
    """Return the largest n_ctx for one cache type within `room` bytes, and whether the model's context length capped it."""
    # A quantized V cache needs flash attention, so those types are planned with it on.
    flash_attn = settings.flash_attn or cache_type in QUANTIZED_TYPES
    candidate = replace(settings, type_k=cache_type, type_v=cache_type, flash_attn=flash_attn)

    def search(limit: int | None) -> int:
        return max_n_ctx_within(
            architecture,
            candidate,
            room,
            limit=limit,
            other_bytes=lambda settings_at: estimate_compute_bytes(architecture, settings_at),
        )

    try:
        n_ctx = search(architecture.context_length)
        limited = architecture.context_length is not None and n_ctx > 0 and search(None) > n_ctx
    except SddtuiError:
        return None, False
    return n_ctx, limited
