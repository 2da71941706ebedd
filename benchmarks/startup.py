"""Time `sddtui --version` and the workbench's first frame against bare-interpreter and Textual baselines.

Run from the repository root with the project's virtual environment:

    .venv/bin/python benchmarks/startup.py [--runs 10]

Every figure is the median wall time of `--runs` fresh processes, from just before the process is
spawned to the moment measured. Ratios are against a baseline measured in the same run. The
first-frame child builds the workbench on specs/habit.md with a `connect` that never completes, so
no model server is needed, and runs it headless under `App.run_test`. Nothing is asserted on time.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
HABIT_SPEC = REPO_ROOT / "specs" / "habit.md"
VENV_BIN = Path(sys.executable).parent
SDDTUI = VENV_BIN / "sddtui"

# The environment variable that carries the parent's CLOCK_MONOTONIC reading, in nanoseconds,
# taken just before the child is spawned. CLOCK_MONOTONIC is system-wide on Linux and macOS.
START_VARIABLE = "SDDTUI_BENCH_SPAWNED_NS"
# Modules that `sddtui --version` has no use for; importing one of them is reported.
HEAVY_MODULES = ("numpy", "gguf", "httpx", "pydantic", "textual", "rich", "psutil", "pygments", "llama_cpp")


def monotonic_ns() -> int:
    """Return the system-wide monotonic clock in nanoseconds."""
    return time.clock_gettime_ns(time.CLOCK_MONOTONIC)


def seconds_since_spawn() -> float:
    """Return the seconds since the parent spawned this process."""
    return (monotonic_ns() - int(os.environ[START_VARIABLE])) / 1e9


# Children: each prints one line "name=seconds" per mark.


def first_frame(bare: bool) -> None:
    """Build the workbench (or a bare Textual app) and print the seconds to each startup mark."""
    marks: dict[str, float] = {"interpreter": seconds_since_spawn()}
    from textual.app import App
    from textual.widgets import Static, Tree

    if not bare:
        from sddtui.app.app import create_app
        from sddtui.project import resolve_project
        from sddtui.spec.parse import load_spec, require_plannable
    marks["imports"] = seconds_since_spawn()

    def spec_tree_filled(app: App) -> bool:
        """Return whether the screen shows a tree with the spec's sections in it."""
        trees = list(app.screen.query(Tree)) if app.screen.is_mounted else []
        return any(len(tree.root.children) > 0 for tree in trees) or bare

    original_display = App._display

    def display(self: App, screen, renderable) -> None:
        if renderable is not None and "first_frame" not in marks and spec_tree_filled(self):
            marks["first_frame"] = seconds_since_spawn()
        original_display(self, screen, renderable)

    # Headless apps skip writing frames inside _display, but still call it once per frame.
    App._display = display

    async def never_connect() -> None:
        await asyncio.Event().wait()

    async def run() -> None:
        with tempfile.TemporaryDirectory(prefix="sddtui-bench-") as directory:
            if bare:
                app = App()
                app.compose = lambda: iter([Static("ready")])
            else:
                spec = load_spec(HABIT_SPEC)
                require_plannable(spec)
                project = resolve_project(spec, Path(directory), Path(directory))
                app = create_app(spec, project, connect=never_connect, lang="en", theme=None)
            marks["app_built"] = seconds_since_spawn()
            async with app.run_test(size=(120, 40)) as pilot:
                marks["ready"] = seconds_since_spawn()
                deadline = time.monotonic() + 30
                while "first_frame" not in marks and time.monotonic() < deadline:
                    await pilot.pause(0.001)
                if not bare:
                    marks["spec_sections"] = float(len(app.workbench.spec_tree.root.children))

    asyncio.run(run())
    for name, value in marks.items():
        print(f"{name}={value}")


# Parent


def child_environment(cache_directory: str) -> dict[str, str]:
    """Return the environment for the measured processes, with bytecode cached in `cache_directory`.

    An editable install keeps sddtui's sources in the repository, where PYTHONDONTWRITEBYTECODE (set
    in some sandboxes and containers) would make every run compile them again. Caching all bytecode
    in a fresh folder, filled by one warm-up run, measures what an installed package costs.
    """
    environment = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    environment["PYTHONPYCACHEPREFIX"] = cache_directory
    return environment


def spawn(command: list[str], environment: dict[str, str]) -> tuple[float, dict[str, float]]:
    """Run `command` to its end; return its wall time and the marks it printed."""
    environment = dict(environment)
    started = monotonic_ns()
    environment[START_VARIABLE] = str(started)
    completed = subprocess.run(command, env=environment, capture_output=True, text=True, check=False)
    elapsed = (monotonic_ns() - started) / 1e9
    if completed.returncode != 0:
        raise RuntimeError(f"{command} exited with {completed.returncode}: {completed.stderr.strip()[-2000:]}")
    marks = {}
    for line in completed.stdout.splitlines():
        name, separator, value = line.partition("=")
        if separator and re.fullmatch(r"[a-z_]+", name):
            marks[name] = float(value)
    return elapsed, marks


def median_run(command: list[str], runs: int, environment: dict[str, str]) -> tuple[float, dict[str, float]]:
    """Run `command` once to warm the caches, then `runs` times; return the median wall time and marks."""
    spawn(command, environment)
    walls: list[float] = []
    all_marks: dict[str, list[float]] = {}
    for _ in range(runs):
        wall, marks = spawn(command, environment)
        walls.append(wall)
        for name, value in marks.items():
            all_marks.setdefault(name, []).append(value)
    return statistics.median(walls), {name: statistics.median(values) for name, values in all_marks.items()}


def version_imports(runs: int, environment: dict[str, str]) -> tuple[list[str], list[tuple[float, str]]]:
    """Return the heavy packages `sddtui --version` imports and the median cost of each import of sddtui.cli.

    The costs are cumulative microseconds from `python -X importtime`, medians of `runs` processes.
    """
    code = "import sys; sys.argv = ['sddtui', '--version']; from sddtui.cli import main; main()"
    heavy: set[str] = set()
    costs: dict[str, list[int]] = {}
    for _ in range(runs):
        completed = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", code],
            env=environment,
            capture_output=True,
            text=True,
            check=False,
        )
        # importtime prints a module after the modules it imported, indented two spaces deeper,
        # so the lines at depth 3 just before "sddtui.cli" at depth 1 are what cli.py imports.
        children: list[tuple[int, str]] = []
        for line in completed.stderr.splitlines():
            match = re.match(r"import time:\s+\d+ \|\s+(\d+) \|( +)(\S+)", line)
            if match is None:
                continue
            cumulative, depth, name = int(match.group(1)), len(match.group(2)), match.group(3)
            if name.split(".")[0] in HEAVY_MODULES:
                heavy.add(name.split(".")[0])
            if depth == 3:
                children.append((cumulative, name))
            elif depth == 1:
                if name == "sddtui.cli":
                    for child_cost, child in children + [(cumulative, name)]:
                        costs.setdefault(child, []).append(child_cost)
                children = []
    medians = sorted(((statistics.median(values), name) for name, values in costs.items()), reverse=True)
    return sorted(heavy), medians


def main() -> int:
    """Parse the arguments, then run a first-frame child or the whole measurement."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10, help="fresh processes per command; the median is reported (default 10)")
    parser.add_argument("--first-frame", choices=("workbench", "bare"), help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.first_frame:
        first_frame(bare=arguments.first_frame == "bare")
        return 0
    if not SDDTUI.exists():
        print(f"the console script {SDDTUI} was not found; run this with the project's .venv/bin/python", file=sys.stderr)
        return 2

    with tempfile.TemporaryDirectory(prefix="sddtui-bench-pycache-") as cache_directory:
        report(arguments.runs, child_environment(cache_directory))
    return 0


def report(runs: int, environment: dict[str, str]) -> None:
    """Measure every command in `environment` and print the medians and ratios."""
    python = sys.executable
    this = str(Path(__file__).resolve())
    python_pass, _ = median_run([python, "-c", "pass"], runs, environment)
    version, _ = median_run([str(SDDTUI), "--version"], runs, environment)
    import_textual, _ = median_run([python, "-c", "import textual.app"], runs, environment)
    _, bare = median_run([python, this, "--first-frame", "bare"], runs, environment)
    _, workbench = median_run([python, this, "--first-frame", "workbench"], runs, environment)

    print(f"medians of {runs} fresh processes; seconds from spawn")
    print(f"{'command':<58} {'seconds':>8} {'ratio':>7}  baseline")
    rows = [
        ("python -c pass", python_pass, python_pass, "python -c pass"),
        ("sddtui --version", version, python_pass, "python -c pass"),
        ('python -c "import textual.app"', import_textual, import_textual, "import textual.app"),
        ("bare Textual app, first frame (headless)", bare["first_frame"], import_textual, "import textual.app"),
        ("workbench on habit.md, first frame with spec tree", workbench["first_frame"], import_textual, "import textual.app"),
        ("workbench on habit.md, first frame with spec tree", workbench["first_frame"], bare["first_frame"], "bare Textual app"),
    ]
    for label, seconds, baseline, baseline_label in rows:
        print(f"{label:<58} {seconds:>8.3f} {seconds / baseline:>7.2f}  {baseline_label}")

    print()
    print("workbench startup marks (median seconds from spawn):")
    for name in ("interpreter", "imports", "app_built", "first_frame", "ready"):
        print(f"  {name:<12} {workbench[name]:.3f}   bare Textual app: {bare.get(name, float('nan')):.3f}")
    print(f"  spec tree sections at first frame: {workbench['spec_sections']:.0f}")

    heavy, costs = version_imports(runs, environment)
    print()
    print(f"sddtui --version imports of heavy packages ({', '.join(HEAVY_MODULES)}): {', '.join(heavy) or 'none'}")
    print("sddtui.cli and what it imports, cumulative median ms (python -X importtime):")
    for microseconds, name in costs:
        if microseconds >= 1000:
            print(f"  {microseconds / 1000:7.1f} ms  {name}")


if __name__ == "__main__":
    raise SystemExit(main())
