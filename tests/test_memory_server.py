"""Check reading a server's model from llama.cpp, Ollama, LM Studio and vLLM endpoints, and the machine readings."""

import socket

from loopback import json_response, loopback_server  # noqa: F401
from sddtui.memory.machine import parse_nvidia_smi, parse_size, server_rss
from sddtui.memory.server import read_server_model
from sddtui.memory.synthetic import TINY_SHAPES, write_tiny_gguf


async def test_llama_cpp_props_with_local_gguf(loopback_server, tmp_path):  # noqa: F811
    path = write_tiny_gguf(tmp_path / "gqa.gguf", TINY_SHAPES[0], header_only=True)
    props = {"default_generation_settings": {"n_ctx": 4096}, "total_slots": 2, "model_path": str(path)}
    loopback_server.route("GET", "/props", json_response(200, props))
    found = await read_server_model(loopback_server.url + "/v1")
    assert found.server == "llama.cpp"
    assert found.n_ctx == 4096
    assert found.n_parallel == 2
    assert found.architecture.kv_bytes_per_token == 4 * 2 * 32 * 2 * 2
    assert "model_path" in found.provenance["architecture"]


async def test_ollama_model_info(loopback_server):  # noqa: F811
    loopback_server.route("GET", "/api/ps", json_response(200, {"models": [{"name": "llama3.1:8b", "size": 6_000_000_000, "context_length": 8192}]}))
    info = {
        "general.architecture": "llama",
        "llama.block_count": 32,
        "llama.embedding_length": 4096,
        "llama.attention.head_count": 32,
        "llama.attention.head_count_kv": 8,
    }
    loopback_server.route("POST", "/api/show", json_response(200, {"model_info": info}))
    found = await read_server_model(loopback_server.url)
    assert found.server == "Ollama"
    assert found.n_ctx == 8192
    assert found.resident_bytes == 6_000_000_000
    assert found.architecture.kv_bytes_per_token == 131_072


async def test_lm_studio_v0_loaded_context(loopback_server):  # noqa: F811
    listing = {"data": [{"id": "qwen3-8b", "state": "loaded", "arch": "qwen3", "loaded_context_length": 16384, "max_context_length": 40960}]}
    loopback_server.route("GET", "/api/v0/models", json_response(200, listing))
    found = await read_server_model(loopback_server.url)
    assert found.server == "LM Studio"
    assert found.n_ctx == 16384


async def test_vllm_max_model_len(loopback_server):  # noqa: F811
    loopback_server.route("GET", "/v1/models", json_response(200, {"data": [{"id": "m", "max_model_len": 32768}]}))
    found = await read_server_model(loopback_server.url)
    assert (found.server, found.n_ctx) == ("vLLM", 32768)


def test_nvidia_smi_output():
    gpus = parse_nvidia_smi("NVIDIA GeForce RTX 4090, 24564, 1024\nbroken line\n")
    assert len(gpus) == 1
    assert gpus[0].total_bytes == 24564 * 1024 * 1024


def test_parse_size():
    assert parse_size("24G") == 24 * 1024**3
    assert parse_size("512MiB") == 512 * 1024**2
    assert parse_size("1000") == 1000


def test_server_rss_by_listening_port():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        rss = server_rss(listener.getsockname()[1])
    assert rss is not None
    assert rss > 10 * 1024 * 1024
