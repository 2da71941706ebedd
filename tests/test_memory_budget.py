"""Check the memory budget: answer caps, prompts that cannot fit, the stream stop rule and the gauge."""

from pathlib import Path

from sddtui.memory.budget import growing_budget, llama_cpp_budget
from sddtui.memory.config import read_config_architecture
from sddtui.memory.kv import mlx_kv_bytes

CONFIGS = Path(__file__).resolve().parent / "memory_configs"
WEIGHTS = 4 * 1024**3


def mlx_budget(budget_bytes, n_ctx=32_768):
    architecture = read_config_architecture(CONFIGS / "llama-3.1-8b.json")
    return growing_budget(n_ctx, WEIGHTS, lambda tokens: mlx_kv_bytes(architecture, tokens), budget_bytes)


def test_max_tokens_fits_the_context():
    budget = llama_cpp_budget(n_ctx=8192, fixed_bytes=400 * 1024**2, budget_bytes=1024**3)
    assert budget.max_tokens_for(8000) == 192
    assert budget.max_tokens_for(9000) == 0


def test_max_tokens_fits_a_growing_cache():
    budget = mlx_budget(WEIGHTS + mlx_kv_bytes(read_config_architecture(CONFIGS / "llama-3.1-8b.json"), 3000))
    cap = budget.max_tokens_for(1000)
    assert budget.memory_at(1000 + cap) <= budget.budget_bytes
    assert budget.memory_at(1000 + cap + 1) > budget.budget_bytes


def test_prompt_over_context_is_not_sent():
    budget = llama_cpp_budget(n_ctx=4096, fixed_bytes=1, budget_bytes=None)
    problem = budget.check_prompt(5000)
    assert problem is not None
    assert problem.key == "memory_prompt_over_context"
    assert problem.params()["prompt_tokens"] == 5000
    assert budget.check_prompt(1000) is None


def test_prompt_over_memory_is_not_sent():
    budget = mlx_budget(WEIGHTS + 100 * 1024**2)
    problem = budget.check_prompt(2000)
    assert problem is not None
    assert problem.key == "memory_prompt_over_budget"


def test_stream_stopped_before_budget():
    architecture = read_config_architecture(CONFIGS / "llama-3.1-8b.json")
    prompt_tokens = 1000
    # A budget just above the memory at the start: the cache may grow by one 256-token step at most.
    budget = mlx_budget(WEIGHTS + mlx_kv_bytes(architecture, prompt_tokens) + 1)
    stopped_at = None
    for context_tokens in range(prompt_tokens, prompt_tokens + 4000):
        if budget.check_stream(context_tokens) is not None:
            stopped_at = context_tokens
            break
    assert stopped_at is not None
    assert budget.memory_at(stopped_at) <= budget.budget_bytes
    assert stopped_at < 1024
    reason = budget.check_stream(stopped_at)
    assert reason.projected_bytes > reason.budget_bytes


def test_gauge_levels():
    budget = llama_cpp_budget(n_ctx=1000, fixed_bytes=10, budget_bytes=100)
    assert budget.reading(100, 0, 0, 200, exact=True).level == "safe"
    assert budget.reading(500, 200, 100, 200, exact=True).level == "warning"
    reading = budget.reading(500, 200, 250, 200, exact=True)
    assert reading.level == "danger"
    assert reading.context_tokens == 950
    assert reading.kv_bytes_at_cap == 10
