"""Print the planner's KV cache estimate against llama.cpp's allocation, and time the planner on a large GGUF header.

Run: PYTHONPATH=tui .venv/bin/python benchmarks/memory_accuracy.py
Each case loads a model with llama-cpp-python in a child process; the baseline for the timing is
gguf.GGUFReader reading the same header in the same run.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from sddtui.llm.embedded import find_bundled_model
from sddtui.memory.architecture import read_gguf_architecture
from sddtui.memory.kv import CacheSettings, plan_kv
from sddtui.memory.plan import estimate_compute_bytes
from sddtui.memory.probe import measure_llama_cpp
from sddtui.memory.synthetic import TINY_SHAPES, TinyShape, write_tiny_gguf

MIB = 1024 * 1024


def compare(label: str, path: Path, settings: CacheSettings) -> bool:
    """Print one estimate against llama.cpp's logged allocation; return whether they match."""
    architecture = read_gguf_architecture(path)
    plan = plan_kv(architecture, settings)
    measurement = measure_llama_cpp(path, settings)
    estimate = plan.kv_bytes / MIB
    match = abs(measurement.kv_mib - estimate) <= 0.005 * max(1, len(measurement.caches))
    compute = estimate_compute_bytes(architecture, settings) / MIB
    print(
        f"{label:<34} n_ctx {plan.n_ctx:>6}  KV estimate {estimate:>9.2f} MiB  llama.cpp {measurement.kv_mib:>9.2f} MiB  "
        f"{'match' if match else 'MISMATCH'}  compute estimate {compute:>7.2f} MiB, logged {measurement.compute_mib:>7.2f} MiB"
    )
    return match


def main() -> int:
    """Run every case this machine can load and the header timing; return 1 on any mismatch."""
    matches = []
    model = find_bundled_model()
    with tempfile.TemporaryDirectory() as folder:
        if model is not None:
            for n_ctx in (512, 1000, 4096, 8192):
                matches.append(compare(f"SmolLM2-135M f16", model, CacheSettings(n_ctx=n_ctx)))
            matches.append(compare("SmolLM2-135M q8_0/q4_0 fa", model, CacheSettings(n_ctx=4096, type_k="q8_0", type_v="q4_0", flash_attn=True)))
            matches.append(compare("SmolLM2-135M 4 slots", model, CacheSettings(n_ctx=4096, n_parallel=4)))
        for shape in TINY_SHAPES:
            path = write_tiny_gguf(Path(folder) / f"{shape.name}.gguf", shape)
            for flash_attn in (False, True):
                matches.append(compare(f"{shape.name} {'fa' if flash_attn else 'no-fa'}", path, CacheSettings(n_ctx=2000, flash_attn=flash_attn)))

        large = write_tiny_gguf(
            Path(folder) / "large-header.gguf",
            TinyShape("large", layers=64, heads=8, heads_kv=2, embedding=256),
            header_only=False,
            extra_keys=50_000,
        )
        time_header(large)
    print(f"{sum(matches)} of {len(matches)} cases match llama.cpp's allocation")
    return 0 if all(matches) else 1


def time_header(path: Path, rounds: int = 5) -> None:
    """Print the planner's time to read and plan from a large header against gguf.GGUFReader's."""
    from gguf import GGUFReader

    def best(function) -> float:
        times = []
        for _ in range(rounds):
            start = time.perf_counter()
            function()
            times.append(time.perf_counter() - start)
        return min(times)

    planner = best(lambda: plan_kv(read_gguf_architecture(path), CacheSettings(n_ctx=8192)))
    baseline = best(lambda: GGUFReader(str(path)))
    print(f"large header ({path.stat().st_size / MIB:.1f} MiB, 50,000 extra keys, 64 layers): planner {planner * 1000:.1f} ms, "
          f"gguf.GGUFReader {baseline * 1000:.1f} ms (best of {rounds})")


if __name__ == "__main__":
    raise SystemExit(main())
