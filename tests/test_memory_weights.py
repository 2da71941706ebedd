"""Check where `sddtui memory` takes the weight size from, and what it reports when the size is unknown."""

import argparse
import json
import shutil
from pathlib import Path

import pytest

from sddtui.memory.architecture import architecture_from_fields
from sddtui.memory.command import add_memory_parser, run_memory
from sddtui.memory.config import estimate_parameter_count, read_config_architecture
from sddtui.memory.kv import CacheSettings
from sddtui.memory.plan import QUANT_BITS_PER_WEIGHT, plan_memory, resolve_weights
from sddtui.memory.synthetic import TINY_SHAPES, write_tiny_gguf

CONFIGS = Path(__file__).resolve().parent / "memory_configs"
GIB = 1024**3
MIB = 1024**2


def run_memory_command(capsys, lang, *flags):
    """Run `sddtui memory` with `flags` and return stdout, stderr and the exit status."""
    parser = argparse.ArgumentParser()
    add_memory_parser(parser.add_subparsers(dest="command"))
    status = run_memory(parser.parse_args(["memory", *flags]), lang)
    captured = capsys.readouterr()
    return captured.out, captured.err, status


def run_json(capsys, *flags, lang="en"):
    """Run `sddtui memory --json` with `flags` and return the parsed object and the exit status."""
    out, _, status = run_memory_command(capsys, lang, "--json", *flags)
    return json.loads(out), status


def table_row(table: str, label: str) -> str:
    """Return the value column of the table row whose label is `label`."""
    for line in table.splitlines():
        if line.strip().startswith(label + "  "):
            return line.strip()[len(label) :].strip()
    raise AssertionError(f"no row {label!r} in:\n{table}")


def model_folder(tmp_path: Path, config: str, files: dict[str, int]) -> Path:
    """Build a model folder with `config` as config.json and sparse files of the given sizes."""
    folder = tmp_path / "model"
    folder.mkdir()
    shutil.copy(CONFIGS / config, folder / "config.json")
    for name, size in files.items():
        with open(folder / name, "wb") as handle:
            handle.truncate(size)
    return folder


# Parameter totals as these models are commonly quoted. DeepSeek-V2-Lite's 15.7 B counts all experts.
@pytest.mark.parametrize(
    ("config", "published"),
    [
        ("llama-3.1-8b.json", 8.03e9),
        ("qwen2.5-coder-14b.json", 14.7e9),
        ("qwen3-8b.json", 8.2e9),
        ("deepseek-v2-lite.json", 15.7e9),
        ("smollm2-135m.json", 135e6),
        ("mamba-130m.json", 130e6),
    ],
)
def test_parameter_count_near_published(config, published):
    parameters = estimate_parameter_count(json.loads((CONFIGS / config).read_text()))
    assert parameters is not None
    assert abs(parameters - published) / published < 0.02


def test_parameter_count_exact_for_llama():
    # Embeddings and output 2 x 128,256 x 4,096, then 32 layers of 218,112,000 (attention 41,943,040,
    # gated MLP 176,160,768, two norms 8,192), then the final norm 4,096.
    assert estimate_parameter_count(json.loads((CONFIGS / "llama-3.1-8b.json").read_text())) == 8_030_261_248


def test_parameter_count_tied_embeddings_counted_once():
    config = json.loads((CONFIGS / "llama-3.1-8b.json").read_text())
    untied = estimate_parameter_count(config)
    tied = estimate_parameter_count({**config, "tie_word_embeddings": True})
    assert untied - tied == 128_256 * 4096


def test_parameter_count_missing_shapes():
    assert estimate_parameter_count({"model_type": "llama", "num_hidden_layers": 32}) is None
    hybrid = {"model_type": "lfm2", "hidden_size": 1024, "num_hidden_layers": 2, "vocab_size": 100, "layer_types": ["conv", "full_attention"]}
    assert estimate_parameter_count(hybrid) is None


def test_parameter_count_labelled_estimate():
    architecture = read_config_architecture(CONFIGS / "qwen3-8b.json")
    assert architecture.parameter_count == estimate_parameter_count(json.loads((CONFIGS / "qwen3-8b.json").read_text()))
    assert "estimate" in architecture.provenance["parameter_count"]


def test_unknown_weights_table(capsys):
    out, _, status = run_memory_command(capsys, "en", "--config", str(CONFIGS / "qwen2.5-coder-14b.json"), "--ctx", "32768", "--memory", "24G")
    assert table_row(out, "weights") == "unknown"
    assert "0 B" not in out
    assert table_row(out, "total").startswith("unknown")
    assert table_row(out, "fits") == "unknown"
    assert "--weights SIZE" in out
    assert "--quant" in out
    assert "14.77 B" in out
    assert "largest n_ctx per cache type is unknown" in out
    assert status == 0


def test_unknown_weights_table_japanese(capsys):
    out, _, _ = run_memory_command(capsys, "ja", "--config", str(CONFIGS / "qwen2.5-coder-14b.json"), "--ctx", "32768", "--memory", "24G")
    assert table_row(out, "重み") == "不明"
    assert table_row(out, "収まるか") == "不明"
    assert "--weights SIZE" in out
    assert "重みのサイズが不明" in out


def test_unknown_weights_json(capsys):
    document, status = run_json(capsys, "--config", str(CONFIGS / "qwen2.5-coder-14b.json"), "--ctx", "32768", "--memory", "24G")
    assert document["weights_bytes"] is None
    assert document["weights_source"] is None
    assert document["total_bytes"] is None
    assert document["kv_and_compute_bytes"] == document["kv_bytes"] + document["compute_bytes_estimate"]
    assert document["fits"] is None
    assert "--weights" in document["fits_note"]
    assert set(document["max_ctx"].values()) == {None}
    assert "weight size" in document["max_ctx_note"]
    assert document["parameter_count"] == 14_770_033_664
    assert "estimate" in document["parameter_count_source"]
    assert status == 0


def test_unknown_weights_json_japanese(capsys):
    document, _ = run_json(capsys, "--config", str(CONFIGS / "qwen2.5-coder-14b.json"), "--memory", "24G", lang="ja")
    assert "重みのサイズが不明" in document["fits_note"]


def test_weights_flag(capsys):
    document, status = run_json(capsys, "--config", str(CONFIGS / "qwen2.5-coder-14b.json"), "--ctx", "32768", "--memory", "24G", "--weights", "9G")
    assert document["weights_bytes"] == 9 * GIB
    assert document["weights_source"] == "flag"
    assert document["weights_estimated"] is False
    assert document["total_bytes"] == 9 * GIB + document["kv_and_compute_bytes"]
    assert document["fits"] is True
    assert all(isinstance(value, int) for value in document["max_ctx"].values())
    assert document["max_ctx_note"] is None
    assert status == 0


def test_weights_flag_table(capsys):
    out, _, _ = run_memory_command(capsys, "en", "--config", str(CONFIGS / "qwen2.5-coder-14b.json"), "--memory", "24G", "--weights", "9G")
    assert table_row(out, "weights") == "9.0 GiB (from --weights)"
    assert table_row(out, "fits") == "yes"


def test_weights_flag_too_large_does_not_fit(capsys):
    document, status = run_json(capsys, "--config", str(CONFIGS / "qwen2.5-coder-14b.json"), "--memory", "24G", "--weights", "30G")
    assert document["fits"] is False
    assert document["max_ctx"]["f16"] == 0
    assert status == 1


@pytest.mark.parametrize("value", ["nine", "-1G", "0"])
def test_weights_flag_invalid(capsys, value):
    out, err, status = run_memory_command(capsys, "en", "--config", str(CONFIGS / "qwen3-8b.json"), f"--weights={value}")
    assert status == 2
    assert out == ""
    assert value in err
    assert "--weights" in err


@pytest.mark.parametrize("quant", sorted(QUANT_BITS_PER_WEIGHT))
def test_quant_estimate(capsys, quant):
    document, _ = run_json(capsys, "--config", str(CONFIGS / "llama-3.1-8b.json"), "--memory", "64G", "--quant", quant)
    assert document["weights_bytes"] == int(8_030_261_248 * QUANT_BITS_PER_WEIGHT[quant] / 8)
    assert document["weights_source"] == "estimate"
    assert document["weights_estimated"] is True
    assert document["weights_quant"] == quant


def test_quant_table_says_estimate(capsys):
    out, _, _ = run_memory_command(capsys, "en", "--config", str(CONFIGS / "qwen3-8b.json"), "--memory", "64G", "--quant", "q8_0")
    weights = table_row(out, "weights")
    assert "estimate" in weights
    assert "8.19 B parameters" in weights
    assert "q8_0" in weights
    assert "8.5 bits" in weights


def test_quant_table_japanese(capsys):
    out, _, _ = run_memory_command(capsys, "ja", "--config", str(CONFIGS / "qwen3-8b.json"), "--memory", "64G", "--quant", "q8_0")
    assert "推定値" in table_row(out, "重み")


def test_quant_without_parameter_count(capsys, tmp_path):
    config = tmp_path / "config.json"
    config.write_text(json.dumps({"model_type": "mamba2", "hidden_size": 768, "num_hidden_layers": 24, "vocab_size": 50280}))
    _, err, status = run_memory_command(capsys, "en", "--config", str(config), "--quant", "q4_k_m")
    assert status == 2
    assert "parameter count" in err
    assert "--weights SIZE" in err


def test_weights_from_safetensors_folder(capsys, tmp_path):
    folder = model_folder(
        tmp_path,
        "qwen3-8b.json",
        {"model-00001-of-00002.safetensors": 5 * GIB, "model-00002-of-00002.safetensors": 3 * GIB, "pytorch_model.bin": 16 * GIB},
    )
    document, _ = run_json(capsys, "--config", str(folder), "--memory", "64G")
    # The .bin copy of the same weights is not added to the safetensors.
    assert document["weights_bytes"] == 8 * GIB
    assert document["weights_source"] == "file"
    assert "*.safetensors" in document["provenance"]["weights_bytes"]
    assert document["fits"] is True


@pytest.mark.parametrize("name", ["pytorch_model.bin", "weights.npz", "model-q4_k_m.gguf"])
def test_weights_from_other_files(tmp_path, name):
    folder = model_folder(tmp_path, "qwen3-8b.json", {name: 4 * GIB})
    assert read_config_architecture(folder).weights_bytes == 4 * GIB
    assert read_config_architecture(folder / "config.json").weights_bytes == 4 * GIB


def test_loose_config_ignores_neighbours(tmp_path):
    shutil.copy(CONFIGS / "qwen3-8b.json", tmp_path / "qwen3-8b.json")
    with open(tmp_path / "other.safetensors", "wb") as handle:
        handle.truncate(GIB)
    assert read_config_architecture(tmp_path / "qwen3-8b.json").weights_bytes is None


def test_weights_flag_overrides_files(capsys, tmp_path):
    folder = model_folder(tmp_path, "qwen3-8b.json", {"model.safetensors": 16 * GIB})
    document, _ = run_json(capsys, "--config", str(folder), "--memory", "64G", "--weights", "5G")
    assert document["weights_bytes"] == 5 * GIB
    assert document["weights_source"] == "flag"


def test_gguf_weights_exact(capsys, tmp_path):
    path = write_tiny_gguf(tmp_path / "gqa.gguf", TINY_SHAPES[0])
    out, _, status = run_memory_command(capsys, "en", "--gguf", str(path), "--ctx", "1024", "--memory", "8G")
    weights = table_row(out, "weights")
    assert "estimate" not in weights
    assert "unknown" not in weights
    assert table_row(out, "fits") == "yes"
    assert status == 0


def test_gguf_with_quant_rejected(capsys, tmp_path):
    path = write_tiny_gguf(tmp_path / "gqa.gguf", TINY_SHAPES[0], header_only=True)
    _, err, status = run_memory_command(capsys, "en", "--gguf", str(path), "--quant", "q4_k_m")
    assert status == 2
    assert "parameter count" not in err
    assert "--quant q4_k_m is not needed with --gguf" in err
    assert "exact weight size" in err


def test_weights_and_quant_conflict(capsys):
    _, err, status = run_memory_command(
        capsys, "en", "--config", str(CONFIGS / "llama-3.1-8b.json"), "--weights", "5G", "--quant", "q4_k_m"
    )
    assert status == 2
    assert "--weights 5G and --quant q4_k_m conflict" in err


def test_weights_and_quant_conflict_japanese(capsys):
    _, err, status = run_memory_command(
        capsys, "ja", "--config", str(CONFIGS / "llama-3.1-8b.json"), "--weights", "5G", "--quant", "q4_k_m"
    )
    assert status == 2
    assert "--weights 5G と --quant q4_k_m は両立しません" in err


@pytest.mark.parametrize("keep", [4, 30, 200])
def test_truncated_gguf_names_end_byte(capsys, tmp_path, keep):
    path = write_tiny_gguf(tmp_path / "gqa.gguf", TINY_SHAPES[0], header_only=True)
    with open(path, "r+b") as handle:
        handle.truncate(keep)
    _, err, status = run_memory_command(capsys, "en", "--gguf", str(path))
    assert status == 2
    assert f"ends inside its header (at byte {keep})" in err
    assert "truncated or not a GGUF file" in err
    assert "unpack_from" not in err
    assert "buffer" not in err


def test_gguf_parameter_count_from_metadata():
    fields = {"general.architecture": "llama", "llama.block_count": 2, "llama.embedding_length": 64, "llama.attention.head_count": 4}
    assert architecture_from_fields(fields, source="test", origin="GGUF").parameter_count is None
    counted = architecture_from_fields({**fields, "general.parameter_count": 8_030_261_248}, source="test", origin="GGUF")
    assert counted.parameter_count == 8_030_261_248
    assert counted.provenance["parameter_count"] == "GGUF general.parameter_count"


def test_max_ctx_model_maximum_table(capsys):
    out, _, _ = run_memory_command(capsys, "en", "--config", str(CONFIGS / "qwen2.5-coder-14b.json"), "--memory", "1T", "--weights", "9G")
    assert "  f16      32768 (model maximum)" in out
    assert "  q8_0     32768 (model maximum, needs --flash-attn)" in out


def test_max_ctx_model_maximum_japanese(capsys):
    out, _, _ = run_memory_command(capsys, "ja", "--config", str(CONFIGS / "qwen2.5-coder-14b.json"), "--memory", "1T", "--weights", "9G")
    assert "  f16      32768 (モデルの最大値)" in out


def test_max_ctx_model_maximum_json(capsys):
    document, _ = run_json(capsys, "--config", str(CONFIGS / "qwen2.5-coder-14b.json"), "--memory", "1T", "--weights", "9G")
    assert document["max_ctx"]["f16"] == 32_768
    assert document["max_ctx_limited_by_model"] is True
    assert "f16" in document["max_ctx_at_model_limit"]
    assert document["model_context_length"] == 32_768


def test_max_ctx_budget_bound_not_marked(capsys):
    document, _ = run_json(capsys, "--config", str(CONFIGS / "llama-3.1-8b.json"), "--memory", "8G", "--quant", "q4_k_m")
    assert 0 < document["max_ctx"]["f16"] < 131_072
    assert document["max_ctx_limited_by_model"] is False
    assert document["max_ctx_at_model_limit"] == []
    out, _, _ = run_memory_command(capsys, "en", "--config", str(CONFIGS / "llama-3.1-8b.json"), "--memory", "8G", "--quant", "q4_k_m")
    assert "model maximum" not in out


def test_plan_memory_defaults_to_file_weights():
    architecture = read_config_architecture(CONFIGS / "smollm2-135m.json")
    unknown = plan_memory(architecture, CacheSettings(n_ctx=4096), 8 * GIB)
    assert unknown.weights_bytes is None
    assert unknown.total_bytes is None
    assert unknown.fits is None
    from dataclasses import replace

    with_file = plan_memory(replace(architecture, weights_bytes=270 * MIB), CacheSettings(n_ctx=4096), 8 * GIB)
    assert with_file.weights.source == "file"
    assert with_file.total_bytes == 270 * MIB + with_file.kv_and_compute_bytes
    assert with_file.fits is True
