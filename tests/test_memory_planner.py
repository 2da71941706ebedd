"""Check the KV cache planner against written oracles from published model configs, and its sizing rules."""

import argparse
import json
from pathlib import Path

import pytest

from sddtui.errors import SddtuiError
from sddtui.memory.architecture import LayerCache, ModelArchitecture
from sddtui.memory.command import add_memory_parser, run_memory
from sddtui.memory.config import read_config_architecture
from sddtui.memory.kv import CacheSettings, max_n_ctx_within, mlx_kv_bytes, padded_n_ctx, plan_kv, row_bytes

CONFIGS = Path(__file__).resolve().parent / "memory_configs"
MIB = 1024 * 1024


def run_table(capsys, *flags, lang="en"):
    """Run `sddtui memory` with `flags` and return the text table and the exit status."""
    parser = argparse.ArgumentParser()
    add_memory_parser(parser.add_subparsers(dest="command"))
    status = run_memory(parser.parse_args(["memory", *flags]), lang)
    return capsys.readouterr().out, status


def table_row(table: str, label: str) -> str:
    """Return the value column of the table row whose label is `label`."""
    for line in table.splitlines():
        if line.strip().startswith(label + "  "):
            return line.strip()[len(label) :].strip()
    raise AssertionError(f"no row {label!r} in:\n{table}")


def run_json(capsys, *flags):
    """Run `sddtui memory --json` with `flags` and return the parsed object and the exit status."""
    parser = argparse.ArgumentParser()
    add_memory_parser(parser.add_subparsers(dest="command"))
    status = run_memory(parser.parse_args(["memory", "--json", *flags]), "en")
    return json.loads(capsys.readouterr().out), status


@pytest.mark.parametrize(
    ("config", "bytes_per_token"),
    [
        ("qwen2.5-coder-14b.json", 196_608),
        ("qwen3-8b.json", 147_456),
        ("llama-3.1-8b.json", 131_072),
        ("smollm2-135m.json", 23_040),
        # MLA: one latent row of kv_lora_rank 512 + RoPE 64 per layer, K only: 27 x 576 x 2.
        ("deepseek-v2-lite.json", 31_104),
    ],
)
def test_oracle_bytes_per_token(capsys, config, bytes_per_token):
    assert read_config_architecture(CONFIGS / config).kv_bytes_per_token == bytes_per_token
    document, _ = run_json(capsys, "--config", str(CONFIGS / config), "--ctx", "4096", "--memory", "1T")
    assert document["kv_bytes_per_token"] == bytes_per_token
    assert document["kv_bytes"] == bytes_per_token * 4096


def test_smollm2_at_8192_is_180_mib(capsys):
    document, status = run_json(
        capsys, "--config", str(CONFIGS / "smollm2-135m.json"), "--ctx", "8192", "--memory", "64G", "--weights", "270M"
    )
    assert document["n_ctx"] == 8192
    assert document["kv_bytes"] == 180 * MIB
    assert document["fits"] is True
    assert status == 0


def test_gemma3_12b_sliding_window_total(capsys):
    document, _ = run_json(
        capsys, "--config", str(CONFIGS / "gemma-3-12b.json"), "--ctx", "32768", "--parallel", "1", "--ubatch", "512"
    )
    # 8 global layers x 32,768 cells + 40 local layers x (1,024 + 512) cells, 8 heads x 256 x (K + V) x 2 bytes.
    assert document["kv_bytes"] == 2_528 * MIB


def test_gemma3_full_swa_cache_is_larger():
    architecture = read_config_architecture(CONFIGS / "gemma-3-12b.json")
    window_plan = plan_kv(architecture, CacheSettings(n_ctx=32_768))
    full_plan = plan_kv(architecture, CacheSettings(n_ctx=32_768, swa_full=True))
    assert window_plan.cells_sliding == 1_536
    assert full_plan.cells_sliding == 32_768
    assert full_plan.kv_bytes == 48 * 8 * 256 * 2 * 2 * 32_768


def test_deepseek_mla_keeps_no_v_cache():
    plan = plan_kv(read_config_architecture(CONFIGS / "deepseek-v2-lite.json"), CacheSettings(n_ctx=4096))
    assert plan.v_bytes == 0
    assert plan.k_bytes == 27 * 576 * 2 * 4096


def test_n_ctx_padding_and_slots():
    assert padded_n_ctx(1000) == (1024, 1024)
    assert padded_n_ctx(3000, n_parallel=3) == (3072, 1024)
    assert padded_n_ctx(3000, n_parallel=5) == (3840, 768)
    assert padded_n_ctx(3000, n_parallel=4, kv_unified=True) == (3072, 3072)
    with pytest.raises(SddtuiError):
        padded_n_ctx(0)


@pytest.mark.parametrize(
    ("cache_type", "bytes_for_128"),
    [("f32", 512), ("f16", 256), ("bf16", 256), ("q8_0", 136), ("q4_0", 72), ("q4_1", 80), ("q5_0", 88), ("q5_1", 96), ("iq4_nl", 72)],
)
def test_cache_type_block_sizes(cache_type, bytes_for_128):
    assert row_bytes(cache_type, 128) == bytes_for_128


def test_quantized_v_needs_flash_attention():
    architecture = read_config_architecture(CONFIGS / "llama-3.1-8b.json")
    with pytest.raises(SddtuiError) as raised:
        plan_kv(architecture, CacheSettings(n_ctx=4096, type_v="q8_0"))
    assert "--flash-attn" in raised.value.render("en")
    assert "q8_0" in raised.value.render("ja")
    plan = plan_kv(architecture, CacheSettings(n_ctx=4096, type_k="q8_0", type_v="q8_0", flash_attn=True))
    assert plan.kv_bytes == 32 * 1024 * 34 // 32 * 2 * 4096


def test_command_rejects_quantized_v_without_flash_attention(capsys):
    parser = argparse.ArgumentParser()
    add_memory_parser(parser.add_subparsers(dest="command"))
    arguments = parser.parse_args(["memory", "--config", str(CONFIGS / "qwen3-8b.json"), "--cache-type-v", "q4_0"])
    assert run_memory(arguments, "en") == 2
    assert "flash attention" in capsys.readouterr().err


def test_unpadded_v_rows_without_flash_attention():
    layers = (LayerCache("full", 128, 128), LayerCache("full", 256, 256))
    architecture = ModelArchitecture("test", layers)
    without = plan_kv(architecture, CacheSettings(n_ctx=256))
    with_flash = plan_kv(architecture, CacheSettings(n_ctx=256, flash_attn=True))
    assert without.v_bytes == 2 * 256 * 2 * 256
    assert with_flash.v_bytes == (128 + 256) * 2 * 256


def test_recurrent_state_does_not_grow():
    architecture = read_config_architecture(CONFIGS / "mamba-130m.json")
    small = plan_kv(architecture, CacheSettings(n_ctx=1024))
    large = plan_kv(architecture, CacheSettings(n_ctx=65_536))
    # Mamba-1: conv (4 - 1) x 1536 and SSM 16 x 1536 f32 elements per layer, one sequence.
    assert small.kv_bytes == large.kv_bytes == 24 * (3 * 1536 + 16 * 1536) * 4
    assert plan_kv(architecture, CacheSettings(n_ctx=1024, n_parallel=2)).state_bytes == 2 * small.state_bytes


def test_max_ctx_fits_the_budget():
    architecture = read_config_architecture(CONFIGS / "llama-3.1-8b.json")
    settings = CacheSettings(n_ctx=1)
    budget = 1_000 * MIB
    best = max_n_ctx_within(architecture, settings, budget)
    assert best % 256 == 0
    assert plan_kv(architecture, CacheSettings(n_ctx=best)).kv_bytes <= budget
    assert plan_kv(architecture, CacheSettings(n_ctx=best + 256)).kv_bytes > budget


def test_json_max_ctx_map(capsys):
    document, status = run_json(
        capsys, "--config", str(CONFIGS / "llama-3.1-8b.json"), "--ctx", "131072", "--memory", "8G", "--quant", "q4_k_m"
    )
    assert set(document["max_ctx"]) >= {"f16", "q8_0", "q4_0"}
    assert document["max_ctx"]["q4_0"] > document["max_ctx"]["q8_0"] > document["max_ctx"]["f16"]
    assert document["fits"] is False
    assert status == 1


def test_mlx_cache_grows_in_steps():
    architecture = read_config_architecture(CONFIGS / "llama-3.1-8b.json")
    one_step = mlx_kv_bytes(architecture, 1)
    assert one_step == 256 * 131_072
    assert mlx_kv_bytes(architecture, 256) == one_step
    assert mlx_kv_bytes(architecture, 257) == 2 * one_step
    # 4-bit, group 64: 128 elements pack into 64 bytes, plus 2 groups x (scale + bias) x 2 bytes.
    assert mlx_kv_bytes(architecture, 256, kv_bits=4) == 256 * 32 * 2 * 8 * (64 + 8)


def test_mlx_sliding_layers_stop_at_window():
    architecture = read_config_architecture(CONFIGS / "gemma-3-12b.json")
    assert mlx_kv_bytes(architecture, 4096) - mlx_kv_bytes(architecture, 2048) == 8 * 2048 * 8 * 256 * 2 * 2


@pytest.mark.parametrize(
    ("flag", "value", "minimum"),
    [("--ctx", "0", 1), ("--ctx", "-5", 1), ("--parallel", "0", 1), ("--parallel", "-2", 1), ("--ubatch", "0", 1), ("--ctx", "4k", 1)],
)
def test_flag_out_of_range_is_rejected(capsys, monkeypatch, flag, value, minimum):
    monkeypatch.setenv("LC_ALL", "en_US.UTF-8")
    parser = argparse.ArgumentParser()
    add_memory_parser(parser.add_subparsers(dest="command"))
    with pytest.raises(SystemExit) as stopped:
        parser.parse_args(["memory", "--config", str(CONFIGS / "smollm2-135m.json"), f"{flag}={value}"])
    assert stopped.value.code == 2
    err = capsys.readouterr().err
    assert f"{flag} {value} is out of range" in err
    assert f"{minimum} or more" in err


def test_flag_out_of_range_in_japanese_locale(capsys, monkeypatch):
    monkeypatch.setenv("LC_ALL", "ja_JP.UTF-8")
    parser = argparse.ArgumentParser()
    add_memory_parser(parser.add_subparsers(dest="command"))
    with pytest.raises(SystemExit):
        parser.parse_args(["memory", "--parallel", "0"])
    assert "--parallel 0 は範囲外です" in capsys.readouterr().err


@pytest.mark.parametrize("value", ["0", "0G", "lots"])
def test_memory_zero_is_rejected(capsys, monkeypatch, value):
    monkeypatch.setenv("LC_ALL", "en_US.UTF-8")
    parser = argparse.ArgumentParser()
    add_memory_parser(parser.add_subparsers(dest="command"))
    with pytest.raises(SystemExit) as stopped:
        parser.parse_args(["memory", "--config", str(CONFIGS / "smollm2-135m.json"), "--memory", value])
    assert stopped.value.code == 2
    assert f"argument --memory: Invalid memory size {value}" in capsys.readouterr().err


def test_ctx_above_model_maximum_warns(capsys):
    flags = ("--config", str(CONFIGS / "smollm2-135m.json"), "--ctx", "100000", "--memory", "64G", "--weights", "300M")
    out, status = run_table(capsys, *flags)
    assert table_row(out, "fits") == "yes"
    assert "Warning: n_ctx 100096 per sequence is above the 8192 tokens this model was trained for, and" in out
    assert status == 0
    document, _ = run_json(capsys, *flags)
    assert document["exceeds_model_context"] is True
    assert "8192" in document["model_context_note"]


def test_ctx_within_maximum_no_warning(capsys):
    flags = ("--config", str(CONFIGS / "smollm2-135m.json"), "--ctx", "8192", "--memory", "64G", "--weights", "300M")
    out, _ = run_table(capsys, *flags)
    assert "Warning" not in out
    document, _ = run_json(capsys, *flags)
    assert document["exceeds_model_context"] is False
    assert document["model_context_note"] is None


def test_split_slots_compare_slot_context(capsys):
    document, _ = run_json(
        capsys, "--config", str(CONFIGS / "smollm2-135m.json"), "--ctx", "32768", "--parallel", "4", "--memory", "64G", "--weights", "300M"
    )
    assert document["n_ctx_seq"] == 8192
    assert document["exceeds_model_context"] is False


def test_ctx_over_maximum_warns_japanese(capsys):
    out, _ = run_table(
        capsys, "--config", str(CONFIGS / "smollm2-135m.json"), "--ctx", "100000", "--memory", "64G", "--weights", "300M", lang="ja"
    )
    assert "学習したコンテキスト長 8192 トークンを超えています" in out


def test_table_shows_slot_rows(capsys):
    out, _ = run_table(capsys, "--config", str(CONFIGS / "smollm2-135m.json"), "--ctx", "16384", "--parallel", "4", "--memory", "64G")
    assert table_row(out, "parallel slots") == "4"
    assert table_row(out, "n_ctx per slot (n_ctx_seq)") == "4096"


def test_table_shows_unified_slot_context(capsys):
    out, _ = run_table(
        capsys, "--config", str(CONFIGS / "smollm2-135m.json"), "--ctx", "16384", "--parallel", "4", "--kv-unified", "--memory", "64G"
    )
    assert table_row(out, "n_ctx per slot (n_ctx_seq)").startswith("16384 (one unified KV buffer")


def test_fits_no_names_safety_margin(capsys):
    flags = ("--config", str(CONFIGS / "smollm2-135m.json"), "--ctx", "8192", "--weights", "100M")
    document, _ = run_json(capsys, *flags, "--memory", "64G")
    budget = document["total_bytes"] + MIB
    out, status = run_table(capsys, *flags, "--memory", str(budget))
    fits = table_row(out, "fits")
    assert fits.startswith("no: ")
    assert "plus a 512.0 MiB safety margin exceeds" in fits
    assert status == 1


def test_fits_no_over_budget_stays_plain(capsys):
    out, status = run_table(capsys, "--config", str(CONFIGS / "smollm2-135m.json"), "--weights", "2G", "--memory", "1G")
    assert table_row(out, "fits") == "no"
    assert status == 1


def test_budget_is_nvidia_memory_when_present(capsys, monkeypatch):
    from sddtui.memory import command
    from sddtui.memory.machine import GpuMemory, parse_nvidia_smi

    gpus = parse_nvidia_smi("NVIDIA GeForce RTX 4090, 24564, 1024\n")
    assert gpus == [GpuMemory(name="NVIDIA GeForce RTX 4090", total_bytes=24564 * 1024 * 1024, used_bytes=1024 * 1024 * 1024)]
    monkeypatch.setattr(command, "read_nvidia_memory", lambda: gpus)
    document, status = run_json(capsys, "--config", str(CONFIGS / "llama-3.1-8b.json"), "--ctx", "8192", "--weights", "5G")
    assert status == 0
    assert document["budget_bytes"] == 24564 * 1024 * 1024
