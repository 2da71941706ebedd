"""Read a running server's model architecture and n_ctx: llama.cpp, LM Studio, Ollama and vLLM."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from sddtui.memory.architecture import ModelArchitecture, architecture_from_fields, read_gguf_architecture

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class ServerModel:
    """A server's description of its model, each fact with the endpoint it came from."""

    server: str
    model: str | None = None
    n_ctx: int | None = None
    n_parallel: int | None = None
    architecture: ModelArchitecture | None = None
    resident_bytes: int | None = None
    """Bytes the loaded model takes, as the server reports them (Ollama /api/ps size)."""
    weights_bytes: int | None = None
    provenance: dict[str, str] = field(default_factory=dict)


async def read_server_model(base_url: str, model: str | None = None, timeout: float = 3.0) -> ServerModel | None:
    """Ask each known endpoint of the server at `base_url` in turn; return the first that describes a model."""
    root = base_url.strip().rstrip("/").removesuffix("/v1")
    async with httpx.AsyncClient(timeout=timeout, trust_env=False) as http:
        for reader in (_read_llama_cpp, _read_ollama, _read_lm_studio, _read_vllm):
            try:
                found = await reader(http, root, model)
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as error:
                logger.info("%s did not describe the model at %s: %r", reader.__name__, root, error)
                continue
            if found is not None:
                return found
    return None


async def _get_json(http: httpx.AsyncClient, url: str, payload: dict | None = None):
    """Return the JSON body of a GET (or POST with `payload`), or None on a non-2xx status."""
    response = await (http.post(url, json=payload) if payload is not None else http.get(url))
    return response.json() if response.is_success else None


async def _read_llama_cpp(http, root: str, model):
    """Read llama.cpp's /props, and the GGUF at model_path when that file is on this machine."""
    props = await _get_json(http, f"{root}/props")
    if not isinstance(props, dict) or "default_generation_settings" not in props:
        return None
    settings = props.get("default_generation_settings") or {}
    found = ServerModel("llama.cpp", provenance={"n_ctx": "llama.cpp /props default_generation_settings.n_ctx"})
    found.n_ctx = settings.get("n_ctx")
    found.n_parallel = props.get("total_slots")
    model_path = props.get("model_path")
    if isinstance(model_path, str):
        found.model = Path(model_path).name
        if Path(model_path).is_file():
            found.architecture = read_gguf_architecture(Path(model_path))
            found.weights_bytes = found.architecture.weights_bytes
            found.provenance["architecture"] = f"GGUF header of /props model_path {model_path}"
    return found


async def _read_ollama(http, root: str, model):
    """Read Ollama's /api/ps (loaded size and context) and /api/show model_info (GGUF keys)."""
    running = await _get_json(http, f"{root}/api/ps")
    if not isinstance(running, dict) or "models" not in running:
        return None
    found = ServerModel("Ollama")
    entries = [entry for entry in running["models"] if model is None or entry.get("name") == model or entry.get("model") == model]
    if entries:
        entry = entries[0]
        found.model = entry.get("name")
        found.resident_bytes = entry.get("size")
        found.n_ctx = entry.get("context_length")
        found.provenance.update({"resident_bytes": "Ollama /api/ps size", "n_ctx": "Ollama /api/ps context_length"})
    name = model or found.model
    if name:
        shown = await _get_json(http, f"{root}/api/show", {"model": name})
        info = shown.get("model_info") if isinstance(shown, dict) else None
        if isinstance(info, dict):
            found.model = name
            found.architecture = architecture_from_fields(info, source=f"Ollama /api/show {name}", origin="Ollama model_info")
            found.provenance["architecture"] = "Ollama /api/show model_info"
    return found


async def _read_lm_studio(http, root: str, model):
    """Read LM Studio's /api/v1/models (loaded instances) or /api/v0/models (loaded context length)."""
    listing = await _get_json(http, f"{root}/api/v1/models")
    if isinstance(listing, dict) and isinstance(listing.get("models"), list):
        for entry in listing["models"]:
            instances = entry.get("loaded_instances") or []
            if (model and entry.get("key") != model) or (not model and not instances):
                continue
            found = ServerModel("LM Studio", model=entry.get("key"), weights_bytes=entry.get("size_bytes"))
            config = instances[0].get("config", {}) if instances else {}
            found.n_ctx = config.get("context_length") or entry.get("max_context_length")
            found.provenance = {"n_ctx": "LM Studio /api/v1/models loaded_instances[0].config.context_length"}
            return found
    listing = await _get_json(http, f"{root}/api/v0/models")
    if isinstance(listing, dict) and isinstance(listing.get("data"), list):
        for entry in listing["data"]:
            if (model and entry.get("id") != model) or (not model and entry.get("state") != "loaded"):
                continue
            found = ServerModel("LM Studio", model=entry.get("id"))
            found.n_ctx = entry.get("loaded_context_length") or entry.get("max_context_length")
            found.provenance = {"n_ctx": "LM Studio /api/v0/models loaded_context_length", "arch": str(entry.get("arch"))}
            return found
    return None


async def _read_vllm(http, root: str, model):
    """Read vLLM's /v1/models max_model_len."""
    listing = await _get_json(http, f"{root}/v1/models")
    if not isinstance(listing, dict):
        return None
    for entry in listing.get("data", []):
        if "max_model_len" in entry and (model is None or entry.get("id") == model):
            found = ServerModel("vLLM", model=entry.get("id"), n_ctx=entry["max_model_len"])
            found.provenance = {"n_ctx": "vLLM /v1/models max_model_len"}
            return found
    return None
