"""Provide `sddtui doctor`: which server responds, its model, n_ctx, slots and telemetry, and advice for SDD."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from dataclasses import asdict
from typing import TextIO

from sddtui.i18n import detect_language, translate
from sddtui.llm.detect import DEFAULT_PORTS, Dialect, ServerReport, detect_local_servers, detect_server

# A context below this many tokens leaves too little room for a spec excerpt, a file and its answer.
SMALL_CONTEXT_TOKENS = 8192


def _timeout_seconds(text: str) -> float:
    """Return --timeout as seconds above zero, or raise an argparse error that names the flag and the value."""
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not seconds > 0 or seconds == float("inf"):
        raise argparse.ArgumentTypeError(translate("doctor.timeout_invalid", detect_language(), value=text))
    return seconds


def add_doctor_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the `doctor` command and its flags to the command line's subparsers."""
    doctor = subparsers.add_parser(
        "doctor", help="show which model server responds, its model, n_ctx, slots and telemetry"
    )
    doctor.add_argument(
        "--base-url",
        help="server to check, e.g. http://127.0.0.1:8080/v1 (default: $OPENAI_BASE_URL, else every default local port)",
    )
    doctor.add_argument("--timeout", type=_timeout_seconds, default=3.0, help="seconds each probe may take (default 3)")
    doctor.add_argument("--json", action="store_true", help="print the reports as JSON")
    doctor.add_argument("--lang", choices=("en", "ja"), help="language of the report (default: from the locale)")
    return doctor


def run_doctor(arguments: argparse.Namespace, lang: str, output: TextIO | None = None) -> int:
    """Probe the configured server, or every default local port, print the reports and return 0 when one responded."""
    from sddtui.settings import load_settings

    output = output or sys.stdout
    settings = load_settings({"base_url": getattr(arguments, "base_url", None)})
    timeout = getattr(arguments, "timeout", 3.0)
    if settings.base_url:
        reports = [asyncio.run(detect_server(settings.base_url, api_key=settings.api_key, timeout=timeout))]
    else:
        reports = asyncio.run(detect_local_servers(timeout=min(timeout, 1.0)))

    if getattr(arguments, "json", False):
        print(json.dumps([_as_json(report, lang) for report in reports], ensure_ascii=False, indent=2), file=output)
    elif not any(report.reachable for report in reports):
        if settings.base_url:
            reason = reports[0].failure if reports and reports[0].failure else "-"
            print(translate("doctor.none_reachable", lang, where=settings.base_url, reason=reason), file=output)
        else:
            ports = ", ".join(f"127.0.0.1:{port}" for port in DEFAULT_PORTS)
            print(translate("doctor.none_local", lang, where=ports), file=output)
    else:
        for report in reports:
            print(format_report(report, lang), file=output)
    return 0 if any(report.reachable for report in reports) else 1


def _as_json(report: ServerReport, lang: str) -> dict:
    """Return a report as JSON-ready data with its display name and each recommendation's key and text in `lang`."""
    data = asdict(report)
    data["dialect"] = report.dialect.value if report.dialect else None
    data["name"] = report.name
    data["chat_template"] = None
    data["recommendations"] = [
        {"key": key, "text": translate(key, lang, **params)} for key, params in recommendations(report)
    ]
    return data


def format_report(report: ServerReport, lang: str) -> str:
    """Return the report of one server as indented lines of text."""
    if not report.reachable:
        return translate("doctor.unreachable", lang, url=report.base_url, reason=report.failure or "-")
    unknown = translate("doctor.unknown", lang)
    lines = [translate("doctor.header", lang, url=report.base_url, name=report.name, version=report.version or unknown)]
    lines.append("  " + translate("doctor.model", lang, model=report.loaded_model or translate("doctor.no_model", lang)))
    if report.n_ctx is not None:
        lines.append("  " + translate("doctor.n_ctx", lang, n_ctx=report.n_ctx, source=report.n_ctx_source or unknown))
    else:
        lines.append("  " + translate("doctor.n_ctx_unknown", lang))
    if report.max_context is not None:
        lines.append("  " + translate("doctor.max_context", lang, max_context=report.max_context))
    lines.append("  " + translate("doctor.slots", lang, slots=report.slots if report.slots is not None else unknown))
    if report.memory_bytes is not None:
        lines.append(
            "  " + translate(
                "doctor.memory", lang, memory=_gib(report.memory_bytes), vram=_gib(report.vram_bytes or 0)
            )
        )
    telemetry = ", ".join(report.telemetry) if report.telemetry else translate("doctor.none", lang)
    lines.append("  " + translate("doctor.telemetry", lang, telemetry=telemetry))
    for key, params in recommendations(report):
        lines.append("  - " + translate(key, lang, **params))
    return "\n".join(lines)


def _gib(size: int) -> str:
    """Return a byte count in GiB with one decimal."""
    return f"{size / 2**30:.1f}"


def recommendations(report: ServerReport) -> list[tuple[str, dict]]:
    """Return the message keys and values of the settings advice for SDD work on this server."""
    advice: list[tuple[str, dict]] = []
    if report.dialect is None:
        return advice
    if report.loaded_model is None and report.dialect in (Dialect.LM_STUDIO, Dialect.OLLAMA):
        advice.append(("doctor.advice.load_model", {}))
    if report.slots is not None and report.slots > 1 and report.n_ctx is not None:
        advice.append(("doctor.advice.one_slot", {"slots": report.slots, "n_ctx": report.n_ctx}))
    if report.n_ctx is not None and report.n_ctx < SMALL_CONTEXT_TOKENS:
        advice.append(("doctor.advice.small_context", {"n_ctx": report.n_ctx, "minimum": SMALL_CONTEXT_TOKENS}))

    match report.dialect:
        case Dialect.LLAMA_CPP:
            advice.append(("doctor.advice.llama_cpp", {}))
        case Dialect.OLLAMA:
            advice.append(("doctor.advice.ollama_num_ctx", {}))
        case Dialect.LM_STUDIO:
            if report.n_ctx is None:
                advice.append(("doctor.advice.lm_studio_context", {}))
        case Dialect.VLLM:
            advice.append(("doctor.advice.vllm", {}))
        case Dialect.MLX_LM:
            advice.append(("doctor.advice.mlx_lm", {}))
        case Dialect.LLAMA_CPP_PYTHON:
            advice.append(("doctor.advice.llama_cpp_python", {}))
        case Dialect.OPENAI_COMPATIBLE:
            advice.append(("doctor.advice.unknown_server", {}))
    return advice
