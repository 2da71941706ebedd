"""Provide the memory budget: answer caps, prompt checks, the stream stop rule and the gauge's numbers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

# The gauge turns to warning at this share of the tighter limit (context or memory), and to danger at the next.
WARNING_SHARE = 0.75
DANGER_SHARE = 0.90
# A stream is stopped when the next this many tokens would take memory past the budget.
STREAM_LOOKAHEAD_TOKENS = 16


@dataclass(frozen=True, slots=True)
class PromptProblem:
    """The reason a prompt is not sent, with the numbers and the ways out."""

    key: str
    prompt_tokens: int
    n_ctx: int
    available_tokens: int
    kv_bytes: int
    budget_bytes: int | None
    ways_out: tuple[str, ...] = ("smaller_task", "larger_context", "quantized_cache")

    def params(self) -> dict[str, object]:
        """Return the message parameters."""
        from sddtui.memory.machine import format_bytes

        return {
            "prompt_tokens": self.prompt_tokens,
            "n_ctx": self.n_ctx,
            "available_tokens": self.available_tokens,
            "kv": format_bytes(self.kv_bytes),
            "budget": format_bytes(self.budget_bytes),
        }


@dataclass(frozen=True, slots=True)
class StopReason:
    """Why a stream is stopped: the context tokens now, and the memory projected against the budget."""

    key: str
    context_tokens: int
    projected_bytes: int
    budget_bytes: int

    def params(self) -> dict[str, object]:
        """Return the message parameters."""
        from sddtui.memory.machine import format_bytes

        return {
            "context_tokens": self.context_tokens,
            "projected": format_bytes(self.projected_bytes),
            "budget": format_bytes(self.budget_bytes),
        }


@dataclass(frozen=True, slots=True)
class GaugeReading:
    """The gauge's numbers: context used against n_ctx, KV bytes now and at the answer's cap, against the budget."""

    prompt_tokens: int
    reasoning_tokens: int
    answer_tokens: int
    n_ctx: int
    kv_bytes_now: int
    kv_bytes_at_cap: int
    budget_bytes: int | None
    exact: bool
    level: str
    """"safe", "warning" or "danger"."""

    @property
    def context_tokens(self) -> int:
        """Return the tokens in the context now."""
        return self.prompt_tokens + self.reasoning_tokens + self.answer_tokens


@dataclass(slots=True)
class MemoryBudget:
    """The cost of the server's cache as the context grows, against n_ctx and a byte budget.

    `memory_at(tokens)` returns the bytes the model needs with `tokens` in the context: constant
    for a preallocated llama.cpp cache, growing for MLX. `budget_bytes` None means no memory limit.
    """

    n_ctx: int
    memory_at: Callable[[int], int]
    budget_bytes: int | None = None
    grows: bool = False
    answer_cap: int | None = None
    """The largest max_tokens to ask for whatever room remains (None: no cap of our own)."""

    def context_room(self, prompt_tokens: int) -> int:
        """Return the tokens left in the context after the prompt."""
        return max(0, self.n_ctx - prompt_tokens)

    def memory_room(self, prompt_tokens: int) -> int | None:
        """Return the tokens the budget allows after the prompt, or None when memory does not limit them."""
        if self.budget_bytes is None:
            return None
        if self.memory_at(prompt_tokens) > self.budget_bytes:
            return 0
        if not self.grows:
            return None
        low, high = 0, self.context_room(prompt_tokens)
        while low < high:
            middle = (low + high + 1) // 2
            if self.memory_at(prompt_tokens + middle) <= self.budget_bytes:
                low = middle
            else:
                high = middle - 1
        return low

    def max_tokens_for(self, prompt_tokens: int) -> int:
        """Return the max_tokens that fits the remaining context and, for growing caches, the budget."""
        room = self.context_room(prompt_tokens)
        memory = self.memory_room(prompt_tokens)
        if memory is not None:
            room = min(room, memory)
        if self.answer_cap is not None:
            room = min(room, self.answer_cap)
        return room

    def check_prompt(self, prompt_tokens: int, minimum_answer: int = 1) -> PromptProblem | None:
        """Return why a prompt cannot be sent (no room for `minimum_answer` tokens), or None when it can."""
        room = self.max_tokens_for(prompt_tokens)
        if room >= minimum_answer:
            return None
        context_full = self.context_room(prompt_tokens) < minimum_answer
        key = "memory_prompt_over_context" if context_full else "memory_prompt_over_budget"
        return PromptProblem(
            key=key,
            prompt_tokens=prompt_tokens,
            n_ctx=self.n_ctx,
            available_tokens=room,
            kv_bytes=self.memory_at(min(prompt_tokens, self.n_ctx)),
            budget_bytes=self.budget_bytes,
        )

    def check_stream(self, context_tokens: int) -> StopReason | None:
        """Return a stop reason when the next few tokens would take memory past the budget, else None."""
        if self.budget_bytes is None:
            return None
        projected = self.memory_at(context_tokens + STREAM_LOOKAHEAD_TOKENS)
        if projected <= self.budget_bytes:
            return None
        return StopReason("memory_stream_stopped", context_tokens, projected, self.budget_bytes)

    def reading(
        self, prompt_tokens: int, reasoning_tokens: int, answer_tokens: int, max_tokens: int, exact: bool
    ) -> GaugeReading:
        """Return the gauge's numbers for the counts so far and the answer's cap."""
        used = prompt_tokens + reasoning_tokens + answer_tokens
        at_cap = min(self.n_ctx, prompt_tokens + max_tokens)
        now_bytes = self.memory_at(used)
        cap_bytes = self.memory_at(at_cap)
        shares = [used / self.n_ctx if self.n_ctx else 1.0]
        if self.budget_bytes:
            shares.append(now_bytes / self.budget_bytes)
        share = max(shares)
        level = "safe"
        if share >= DANGER_SHARE:
            level = "danger"
        elif share >= WARNING_SHARE:
            level = "warning"
        return GaugeReading(prompt_tokens, reasoning_tokens, answer_tokens, self.n_ctx, now_bytes, cap_bytes, self.budget_bytes, exact, level)


def llama_cpp_budget(n_ctx: int, fixed_bytes: int, budget_bytes: int | None = None) -> MemoryBudget:
    """Return the budget of a llama.cpp server, whose cache is allocated in full at load."""
    return MemoryBudget(n_ctx=n_ctx, memory_at=lambda tokens: fixed_bytes, budget_bytes=budget_bytes, grows=False)


def growing_budget(n_ctx: int, base_bytes: int, cache_bytes_at: Callable[[int], int], budget_bytes: int | None) -> MemoryBudget:
    """Return the budget of a server whose cache grows with the tokens (MLX)."""
    return MemoryBudget(
        n_ctx=n_ctx, memory_at=lambda tokens: base_bytes + cache_bytes_at(tokens), budget_bytes=budget_bytes, grows=True
    )
