"""Measure the KV cache llama.cpp really allocates, by loading a GGUF with llama-cpp-python in a subprocess.

The child process creates a context through llama-cpp-python's low-level API (so that n_seq_max
and kv_unified can be set) and exits; the parent parses the `size = … MiB (N cells …)` lines
llama.cpp logs to stderr while it allocates.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from sddtui.memory.kv import CacheSettings

# ggml type ids (ggml.h) for the cache types.
GGML_TYPE_IDS = {"f32": 0, "f16": 1, "q4_0": 2, "q4_1": 3, "q5_0": 6, "q5_1": 7, "q8_0": 8, "iq4_nl": 20, "bf16": 30}

_CHILD = r"""
import json, sys
import llama_cpp as L
options = json.loads(sys.argv[1])
L.llama_backend_init()
model_params = L.llama_model_default_params()
model_params.n_gpu_layers = 0
model = L.llama_model_load_from_file(options["path"].encode(), model_params)
if not model:
    sys.exit(3)
params = L.llama_context_default_params()
params.n_ctx = options["n_ctx"]
params.n_batch = options["n_ubatch"]
params.n_ubatch = options["n_ubatch"]
params.n_seq_max = options["n_parallel"]
params.kv_unified = options["kv_unified"]
params.swa_full = options["swa_full"]
params.type_k = options["type_k"]
params.type_v = options["type_v"]
params.flash_attn_type = L.LLAMA_FLASH_ATTN_TYPE_ENABLED if options["flash_attn"] else L.LLAMA_FLASH_ATTN_TYPE_DISABLED
context = L.llama_init_from_model(model, params)
sys.exit(0 if context else 4)
"""

_KV_LINE = re.compile(
    r"(?P<owner>llama_kv_cache\w*|llama_memory_recurrent\w*): size = +(?P<mib>[\d.]+) MiB \( *(?P<cells>\d+) cells"
)
_PART = re.compile(r"(?P<name>[KVRS]) \((?P<type>\w+)\): +(?P<mib>[\d.]+) MiB")
_COMPUTE = re.compile(r"(?P<device>\w+) compute buffer size = +(?P<mib>[\d.]+) MiB")


@dataclass(slots=True)
class MeasuredCache:
    """One cache llama.cpp allocated: its cell count and the MiB it logged (to two decimals)."""

    owner: str
    cells: int
    mib: float
    parts_mib: dict[str, float] = field(default_factory=dict)


@dataclass(slots=True)
class Measurement:
    """What llama.cpp logged while creating one context."""

    caches: list[MeasuredCache]
    compute_mib: float
    n_ctx: int | None
    log: str

    @property
    def kv_mib(self) -> float:
        """Return the summed MiB of every cache llama.cpp logged."""
        return sum(cache.mib for cache in self.caches)


def measure_llama_cpp(model_path: Path, settings: CacheSettings, timeout: float = 120.0) -> Measurement:
    """Load `model_path` with `settings` in a child process and parse the cache sizes it logs."""
    options = {
        "path": str(model_path),
        "n_ctx": settings.n_ctx,
        "n_ubatch": settings.n_ubatch,
        "n_parallel": settings.n_parallel,
        "kv_unified": settings.kv_unified,
        "swa_full": settings.swa_full,
        "type_k": GGML_TYPE_IDS[settings.type_k],
        "type_v": GGML_TYPE_IDS[settings.type_v],
        "flash_attn": settings.flash_attn,
    }
    completed = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(options)],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if completed.returncode != 0:
        tail = "\n".join(completed.stderr.splitlines()[-15:])
        raise RuntimeError(f"llama.cpp could not create a context for {model_path} (exit {completed.returncode}):\n{tail}")
    return parse_llama_log(completed.stderr)


def parse_llama_log(log: str) -> Measurement:
    """Parse llama.cpp's context-creation log into cache and compute-buffer sizes."""
    caches = []
    compute = 0.0
    n_ctx = None
    for line in log.splitlines():
        kv = _KV_LINE.search(line)
        if kv:
            parts = {part["name"]: float(part["mib"]) for part in _PART.finditer(line)}
            caches.append(MeasuredCache(kv["owner"], int(kv["cells"]), float(kv["mib"]), parts))
            continue
        buffer = _COMPUTE.search(line)
        if buffer:
            compute += float(buffer["mib"])
            continue
        context = re.search(r"llama_context: n_ctx += (\d+)", line)
        if context:
            n_ctx = int(context.group(1))
    return Measurement(caches=caches, compute_mib=compute, n_ctx=n_ctx, log=log)
