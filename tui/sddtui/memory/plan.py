"""Combine the KV cache, weights and a compute-buffer estimate into one memory plan, with the largest n_ctx per cache type."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from sddtui.errors import SddtuiError
from sddtui.memory.architecture import ModelArchitecture
from sddtui.memory.kv import CACHE_TYPES, QUANTIZED_TYPES, CacheSettings, KvPlan, max_n_ctx_within, padded_n_ctx, plan_kv

# Kept free of the budget when the largest safe n_ctx is searched: a tenth of the budget, at least 512 MiB.
SAFETY_SHARE = 0.10
SAFETY_MINIMUM_BYTES = 512 * 1024 * 1024
F32_BYTES = 4


@dataclass(frozen=True, slots=True)
class MemoryPlan:
    """The memory one model needs at one n_ctx and cache setting, and whether it fits the budget."""

    architecture: ModelArchitecture
    settings: CacheSettings
    kv: KvPlan
    weights_bytes: int
    compute_bytes: int
    """An estimate: llama.cpp sizes its compute buffer from the graph it builds at load."""
    budget_bytes: int | None
    safety_margin_bytes: int
    max_ctx: dict[str, int | None] = field(default_factory=dict)
    """Cache type (K and V alike) to the largest n_ctx that fits; quantized types assume flash attention."""

    @property
    def total_bytes(self) -> int:
        """Return weights, KV cache and compute buffer together."""
        return self.weights_bytes + self.kv.kv_bytes + self.compute_bytes

    @property
    def fits(self) -> bool | None:
        """Return whether the total fits the budget less the margin (None without a budget)."""
        if self.budget_bytes is None:
            return None
        return self.total_bytes <= self.budget_bytes - self.safety_margin_bytes

    def to_json(self) -> dict:
        """Return the plan as the `sddtui memory --json` object."""
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
            "weights_bytes": self.weights_bytes,
            "compute_bytes_estimate": self.compute_bytes,
            "total_bytes": self.total_bytes,
            "budget_bytes": self.budget_bytes,
            "safety_margin_bytes": self.safety_margin_bytes,
            "fits": self.fits,
            "max_ctx": self.max_ctx,
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


def plan_memory(architecture: ModelArchitecture, settings: CacheSettings, budget_bytes: int | None) -> MemoryPlan:
    """Plan the memory of `architecture` at `settings` against `budget_bytes`, with the largest n_ctx per cache type."""
    kv = plan_kv(architecture, settings)
    weights = architecture.weights_bytes or 0
    compute = estimate_compute_bytes(architecture, settings)
    margin = safety_margin(budget_bytes) if budget_bytes is not None else 0

    max_ctx: dict[str, int | None] = {}
    if budget_bytes is not None:
        room = budget_bytes - margin - weights
        for cache_type in CACHE_TYPES:
            # A quantized V cache needs flash attention, so those types are planned with it on.
            flash_attn = settings.flash_attn or cache_type in QUANTIZED_TYPES
            candidate = replace(settings, type_k=cache_type, type_v=cache_type, flash_attn=flash_attn)
            try:
                max_ctx[cache_type] = max_n_ctx_within(
                    architecture,
                    candidate,
                    room,
                    limit=architecture.context_length,
                    other_bytes=lambda settings_at: estimate_compute_bytes(architecture, settings_at),
                )
            except SddtuiError:
                max_ctx[cache_type] = None
    return MemoryPlan(architecture, settings, kv, weights, compute, budget_bytes, margin, max_ctx)
