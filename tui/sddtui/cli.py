"""Provide the `sddtui` command line: the workbench, `run`, and `plan`."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any

from sddtui import __version__
from sddtui.errors import SddtuiError
from sddtui.i18n import detect_language, join_sentences, translate

SUBCOMMANDS = ("run", "plan")
TOOLS = ("doctor", "memory")
# Settings fields and the flags that set them, so a settings error names what the user typed.
FLAG_NAMES = {
    "base_url": "--base-url",
    "model": "--model",
    "embedded": "--embedded",
    "n_ctx": "--n-ctx",
    "max_answer_tokens": "--max-answer-tokens",
    "lang": "--lang",
    "theme": "--theme",
}


def _common_flags() -> argparse.ArgumentParser:
    """Build the flags every command shares."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("spec", type=Path, help="the spec file (Markdown), e.g. specs/habit.md")
    common.add_argument("--project", type=Path, help="where files are written (default: the spec's save location, else the current directory)")
    common.add_argument("--base-url", help="OpenAI-compatible server, e.g. http://127.0.0.1:1234/v1 (default: $OPENAI_BASE_URL, else probe local ports, else the embedded engine)")
    common.add_argument("--model", help="model id to request (default: the first one the server lists)")
    common.add_argument("--embedded", action="store_true", default=None, help="skip probing and start the embedded engine")
    common.add_argument("--n-ctx", dest="n_ctx", type=int, metavar="N", help="n_ctx in tokens, 512 or more: the embedded engine starts with it (default 4096); for another server, the context it was loaded with, used when the server does not report it")
    common.add_argument("--max-answer-tokens", type=int, metavar="N", help="upper bound on max_tokens for one answer, at least 64 (default 2048)")
    common.add_argument("--lang", choices=("en", "ja"), help="language of screens and messages (default: from the locale)")
    return common


def build_parser() -> argparse.ArgumentParser:
    """Build the parser for `sddtui run` and `sddtui plan`."""
    common = _common_flags()
    parser = argparse.ArgumentParser(prog="sddtui", description="Spec-driven development with a local model.")
    parser.add_argument("--version", action="version", version=f"sddtui {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser(
        "run",
        parents=[common],
        help="run every task without the workbench, printing JSON lines",
        description="Plan the spec and run every pending task without the workbench, printing one JSON event per line.",
    )
    run.add_argument("--approve", choices=("none", "clean", "all"), required=True, help="which proposals to apply: none, clean (no findings) or all (not blocked)")

    plan = commands.add_parser(
        "plan",
        parents=[common],
        help="print the task list",
        description="Print the plan saved for this spec, or ask the model for one and print it.",
    )
    plan.add_argument("--json", action="store_true", help="print the plan as JSON")
    return parser


def build_workbench_parser() -> argparse.ArgumentParser:
    """Build the parser for `sddtui SPEC`, the workbench."""
    parser = argparse.ArgumentParser(
        prog="sddtui",
        parents=[_common_flags()],
        description="Open the workbench on SPEC. Other commands: sddtui run SPEC --approve MODE, sddtui plan SPEC, sddtui doctor, sddtui memory.",
    )
    parser.add_argument("--version", action="version", version=f"sddtui {__version__}")
    parser.add_argument("--theme", help="workbench theme: dark or light (sddtui-dark, sddtui-light), or any Textual theme name")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line and return the exit status."""
    try:
        return _main(sys.argv[1:] if argv is None else argv)
    except BrokenPipeError:
        # The reader of stdout went away (`sddtui memory ... | head`): stop quietly, as cat does.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1


def _main(argv: list[str]) -> int:
    """Dispatch to the workbench, a headless command or a tool."""
    if argv and argv[0] in TOOLS:
        return _run_tool(argv)
    if argv and argv[0] in SUBCOMMANDS:
        arguments = build_parser().parse_args(argv)
    else:
        arguments = build_workbench_parser().parse_args(argv)
        arguments.command = "workbench"

    lang = arguments.lang or detect_language()
    try:
        return _dispatch(arguments, lang)
    except SddtuiError as error:
        print(translate("cli_error", lang, message=error.render(lang)), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(translate("cli_interrupted", lang), file=sys.stderr)
        return 130
    except _Terminated:
        print(translate("cli_interrupted", lang), file=sys.stderr)
        return 143


def _run_tool(argv: list[str]) -> int:
    """Run `sddtui doctor` or `sddtui memory`, the commands that take no spec."""
    if argv[0] == "doctor":
        from sddtui.llm.doctor import add_doctor_parser as add_parser
        from sddtui.llm.doctor import run_doctor as run
    else:
        from sddtui.memory.command import add_memory_parser as add_parser
        from sddtui.memory.command import run_memory as run

    parser = argparse.ArgumentParser(prog="sddtui")
    add_parser(parser.add_subparsers(dest="command", required=True))
    arguments = parser.parse_args(argv)
    lang = getattr(arguments, "lang", None) or detect_language()
    try:
        return run(arguments, lang)
    except SddtuiError as error:
        print(translate("cli_error", lang, message=error.render(lang)), file=sys.stderr)
        return 1


def _dispatch(arguments: argparse.Namespace, lang: str) -> int:
    """Load the settings, the spec and the project, then run the chosen command."""
    from sddtui.project import resolve_project
    from sddtui.settings import load_settings
    from sddtui.spec.parse import load_spec, require_plannable

    if arguments.embedded and arguments.base_url:
        raise SddtuiError("embedded_and_base_url", url=arguments.base_url)
    settings = load_settings(_flag_values(arguments), flag_names=FLAG_NAMES)
    lang = arguments.lang or settings.lang or lang
    settings = settings.model_copy(update={"lang": lang})
    spec = load_spec(arguments.spec)
    require_plannable(spec)
    project = resolve_project(spec, arguments.project, Path.cwd())

    if arguments.command == "workbench":
        return _run_workbench(spec, project, settings, lang, arguments.theme)
    import asyncio  # imported here: `sddtui --version` and the workbench do not need it at start-up

    print(translate("cli_project", lang, path=project.directory, origin=translate(f"project_origin.{project.origin}", lang)), file=sys.stderr)
    if arguments.command == "run":
        try:
            return asyncio.run(_run(spec, project, settings, lang, arguments.approve))
        except asyncio.CancelledError:
            raise _Terminated from None
    return asyncio.run(_plan(spec, project, settings, lang, arguments.json))


def _flag_values(arguments: argparse.Namespace) -> dict[str, Any]:
    """Return the flags that map onto settings."""
    names = ("base_url", "model", "embedded", "n_ctx", "max_answer_tokens", "lang", "theme")
    return {name: getattr(arguments, name, None) for name in names}


def _run_workbench(spec, project, settings, lang: str, theme: str | None) -> int:
    """Open the workbench; it connects to the model server in the background."""
    from sddtui.app.app import create_app
    from sddtui.connect import connect_session

    app = create_app(
        spec,
        project,
        connect=lambda: connect_session(spec, project, settings),
        lang=lang,
        theme=theme or settings.theme,
    )
    app.run()
    return app.return_code or 0


class _Terminated(Exception):
    """SIGTERM arrived during a headless command."""


async def _run(spec, project, settings, lang: str, approve: str) -> int:
    """Run every task headless and print one JSON event per line."""
    _cancel_on_sigterm()
    from sddtui.connect import connect_session
    from sddtui.events import ErrorOccurred, SessionDone
    from sddtui.headless import ApproveMode, JsonLinesWriter, run_headless

    emit = JsonLinesWriter(sys.stdout, lang)
    try:
        session = await connect_session(spec, project, settings)
    except SddtuiError as error:
        emit(ErrorOccurred(error))
        emit(SessionDone(applied=0, rejected=0, failed=0))
        return 1
    try:
        return await run_headless(session, ApproveMode(approve), emit)
    finally:
        await session.aclose()


async def _plan(spec, project, settings, lang: str, as_json: bool) -> int:
    """Make (or load) the plan and print its tasks."""
    from sddtui.connect import connect_session
    from sddtui.events import ErrorOccurred, PlanReady, PlanRejected
    from sddtui.session import load_saved_plan

    saved = load_saved_plan(spec, project.directory)
    if saved is not None:
        # A plan made from this very spec text needs no model server to be printed.
        _print_plan(saved, as_json)
        return 0
    session = await connect_session(spec, project, settings)
    try:
        async for event in session.make_plan():
            if isinstance(event, PlanRejected):
                print(translate("cli_plan_rejected", lang, attempt=event.attempt, reasons=join_sentences(event.reasons)), file=sys.stderr)
            elif isinstance(event, ErrorOccurred):
                raise event.error
            elif isinstance(event, PlanReady):
                _print_plan(event.plan, as_json)
    finally:
        await session.aclose()
    return 0


def _cancel_on_sigterm() -> None:
    """Make SIGTERM cancel the running command, so the session stops, journals and closes first."""
    import asyncio
    import signal

    task = asyncio.current_task()
    if task is not None and sys.platform != "win32":
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)


def _print_plan(plan, as_json: bool) -> None:
    """Print the plan as JSON or as one line per task."""
    if as_json:
        print(json.dumps(plan.model_dump(mode="json"), ensure_ascii=False, indent=2))
        return
    for task in plan.tasks:
        print(f"{task.id}  {task.action.value:<6}  {task.path}  [{', '.join(task.requirement_ids)}]")
        print(f"    {task.instruction}")
