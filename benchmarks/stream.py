"""Time a 20,000-token answer through each layer: raw httpx, the chat client, the session, the workbench.

Run from the repository root with the project's virtual environment:

    .venv/bin/python benchmarks/stream.py [--tokens 20000] [--repeat 5]

The answer comes from a loopback server in a child process (so that it runs on its own core) that
replays llama-cpp-python 0.3's framing with the test suite's LoopbackServer and LlamaCppPythonStream:
one `data:` event per HTTP chunk, each chunk written and drained on its own. The answer is one
fenced Kotlin file headed by the task's path, so the session parses a real proposal from it.
Each figure of the first table is the median of the repeats, with ratios against (a) measured in the
same run. A second, single run streams 300 deltas at a model's pace and prints the CPU share of the
session and of the workbench. Nothing is asserted on time.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT / "tests"))

HABIT_SPEC = REPO_ROOT / "specs" / "habit.md"
HABIT_PATH = "app/src/main/java/com/example/habittracker/Habit.kt"
# The last content line of the Kotlin file; the workbench run waits until it is shown.
LAST_LINE_MARKER = "// last line of the benchmark answer"
# Seconds one workbench run may take before the benchmark gives up on it.
WORKBENCH_LIMIT = 120.0
POLL_SECONDS = 0.01
# The paced run: deltas and the server's pause before each, about 50 tokens/s like a small local model.
PACED_TOKENS = 300
PACED_DELAY = 0.02

# Process CPU seconds of the last run of each layer, from run_task's call to the proposal.
CPU_SECONDS: dict[str, float] = {}


def answer_tokens(count: int) -> list[str]:
    """Return exactly `count` deltas that together form the path line and one fenced Kotlin file."""
    head = [HABIT_PATH, "\n", "```", "kotlin", "\n", "package", " com", ".example", ".habittracker", "\n", "\n",
            "object", " Streak", "Limits", " {", "\n"]
    tail = ["}", "\n", LAST_LINE_MARKER, "\n", "```", "\n"]
    body: list[str] = []
    number = 0
    while len(head) + len(body) + len(tail) < count:
        number += 1
        line = ["    ", "const", " val", " LIMIT", f"_{number:05d}", " =", f" {number}", "L", "\n"]
        body.extend(line[: count - len(head) - len(body) - len(tail)])
    # A line cut short by the count is closed so that the file stays one line per constant.
    if body and body[-1] != "\n":
        body[-1] += "\n"
    return head + body + tail


def kotlin_content(tokens: list[str]) -> str:
    """Return the file content inside the fence: what the proposal must contain."""
    text = "".join(tokens)
    start = text.index("```kotlin\n") + len("```kotlin\n")
    end = text.rindex("```")
    return text[start:end]


# Server side (child process)


def serve(token_count: int, delay: float) -> None:
    """Serve the scripted model on a free loopback port, print the port, and run until killed.

    `delay` is the pause in seconds before each event of the answer.
    """
    from loopback import LoopbackServer
    from scripted_model import ScriptedModel, habit_plan, stream_of

    async def main() -> None:
        server = LoopbackServer()
        await server.start()
        ScriptedModel(plan=habit_plan(HABIT_PATH), answers=[stream_of(answer_tokens(token_count), delay=delay)]).install(server)
        print(server.port, flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())


# Client side


@dataclass
class Layer:
    """One measured layer: its label, the seconds of each repeat, and what it counted."""

    label: str
    seconds: list[float] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def median(self) -> float:
        """The median of the repeats, in seconds."""
        return statistics.median(self.seconds)


def chat_body(token_count: int) -> dict:
    """Return the request body a plain OpenAI client would send for the answer."""
    return {
        "model": "smollm2",
        "messages": [{"role": "user", "content": f"Write {HABIT_PATH}."}],
        "max_tokens": token_count + 100,
        "stream": True,
    }


async def time_raw_httpx(url: str, tokens: list[str]) -> tuple[float, str]:
    """Read the whole response body with httpx's aiter_bytes; return the seconds and a note."""
    import httpx

    received = 0
    last = b""
    async with httpx.AsyncClient(base_url=url, timeout=60.0) as http:
        started = time.perf_counter()
        async with http.stream("POST", "/v1/chat/completions", json=chat_body(len(tokens))) as response:
            async for piece in response.aiter_bytes():
                received += len(piece)
                last = (last + piece)[-32:]
        elapsed = time.perf_counter() - started
    if not last.endswith(b"data: [DONE]\n\n"):
        raise RuntimeError(f"the raw body did not end with [DONE]: {last!r}")
    return elapsed, f"{received / 1e6:.1f} MB of SSE"


async def time_chat_client(url: str, tokens: list[str]) -> tuple[float, str]:
    """Consume every event of ChatClient.stream_chat; return the seconds and a note."""
    from sddtui.llm.client import ChatClient
    from sddtui.llm.events import AnswerDelta, StreamFinished

    parts: list[str] = []
    finished = None
    async with ChatClient(url) as client:
        started = time.perf_counter()
        async for event in client.stream_chat(chat_body(len(tokens))["messages"], model="smollm2", max_tokens=len(tokens) + 100):
            if isinstance(event, AnswerDelta):
                parts.append(event.text)
            elif isinstance(event, StreamFinished):
                finished = event
        elapsed = time.perf_counter() - started
    if "".join(parts) != "".join(tokens) or finished is None:
        raise RuntimeError(f"stream_chat delivered {len(parts)} deltas and finish {finished!r}, not the answer")
    return elapsed, f"{len(parts)} AnswerDelta events"


async def connected_session(url: str, directory: Path):
    """Connect a Session on the habit spec to the loopback server and make its plan."""
    from sddtui.connect import connect_session
    from sddtui.events import PlanReady
    from sddtui.project import resolve_project
    from sddtui.settings import Settings
    from sddtui.spec.parse import load_spec

    spec = load_spec(HABIT_SPEC)
    project = resolve_project(spec, directory, directory)
    session = await connect_session(spec, project, Settings(base_url=url))
    events = [event async for event in session.make_plan()]
    if not isinstance(events[-1], PlanReady):
        await session.aclose()
        raise RuntimeError(f"planning ended with {events[-1]!r}")
    return session


async def time_session(url: str, tokens: list[str]) -> tuple[float, str]:
    """Time Session.run_task from its call to ProposalReady (connect and plan not counted)."""
    from sddtui.events import ErrorOccurred, ProposalReady, TextReceived

    with tempfile.TemporaryDirectory(prefix="sddtui-bench-") as directory:
        session = await connected_session(url, Path(directory))
        try:
            task = session.next_pending()
            texts = 0
            proposal = None
            started = time.perf_counter()
            cpu_started = time.process_time()
            async for event in session.run_task(task):
                if isinstance(event, TextReceived):
                    texts += 1
                elif isinstance(event, ProposalReady):
                    proposal = event.proposal
                elif isinstance(event, ErrorOccurred):
                    raise RuntimeError(f"run_task failed: {event.error}")
            elapsed = time.perf_counter() - started
            cpu = time.process_time() - cpu_started
        finally:
            await session.aclose()
    if proposal is None or proposal.new_content != kotlin_content(tokens) or proposal.blocked:
        raise RuntimeError("run_task did not propose the streamed Kotlin file unblocked")
    CPU_SECONDS["session"] = cpu
    return elapsed, f"{texts} TextReceived, proposal of {len(proposal.new_content) // 1000} kB"


class FrameCounter:
    """Count the workbench's text batches, full-screen layouts and frames while it streams."""

    def __init__(self) -> None:
        from textual.app import App
        from textual.screen import Screen

        from sddtui.app.widgets.task_view import TaskView

        self.frames = 0
        self.layouts = 0
        self.batches = 0
        # Seconds spent inside each wrapped method, by counter name.
        self.seconds: dict[str, float] = {}
        self._patches: list[tuple[type, str, Callable]] = []
        # Headless apps skip writing frames inside App._display, but still call it once per frame.
        self._wrap(App, "_display", "frames")
        self._wrap(Screen, "_refresh_layout", "layouts")
        self._wrap(TaskView, "append_text", "batches")

    def _wrap(self, owner: type, name: str, counter: str) -> None:
        """Replace owner.name with a wrapper that increments `counter`."""
        original = getattr(owner, name)

        def counted(*args, **kwargs):
            setattr(self, counter, getattr(self, counter) + 1)
            started = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.seconds[counter] = self.seconds.get(counter, 0.0) + time.perf_counter() - started

        setattr(owner, name, counted)
        self._patches.append((owner, name, original))

    def restore(self) -> None:
        """Put the original methods back."""
        for owner, name, original in self._patches:
            setattr(owner, name, original)


async def time_workbench(url: str, tokens: list[str]) -> tuple[float, float, str]:
    """Run the workbench under the Textual pilot; time run_task's call to the last line shown and to the review."""
    from textual.widgets import Log

    from sddtui.app.app import create_app
    from sddtui.connect import connect_session
    from sddtui.project import resolve_project
    from sddtui.settings import Settings
    from sddtui.spec.parse import load_spec

    marks: dict[str, float] = {}
    counter = FrameCounter()
    counts_at_start: dict[str, int] = {}

    async def connect():
        session = await connect_session(spec, project, Settings(base_url=url))
        run_task = session.run_task

        def timed_run_task(task, note=""):
            marks.setdefault("started", time.perf_counter())
            marks.setdefault("cpu_started", time.process_time())
            counts_at_start.update(frames=counter.frames, layouts=counter.layouts, batches=counter.batches)
            counter.seconds.clear()
            return run_task(task, note)

        session.run_task = timed_run_task
        return session

    try:
        with tempfile.TemporaryDirectory(prefix="sddtui-bench-") as directory:
            spec = load_spec(HABIT_SPEC)
            project = resolve_project(spec, Path(directory), Path(directory))
            app = create_app(spec, project, connect=connect, lang="en", theme=None)
            async with app.run_test(size=(120, 40)) as pilot:
                log = app.workbench.query_one("#answer-log", Log)
                deadline = time.perf_counter() + WORKBENCH_LIMIT
                while "reviewed" not in marks and time.perf_counter() < deadline:
                    await asyncio.sleep(POLL_SECONDS)
                    if "shown" not in marks and LAST_LINE_MARKER in "\n".join(log.lines[-4:]):
                        marks["shown"] = time.perf_counter()
                    if app.workbench.task_view.has_class("-reviewing"):
                        marks["reviewed"] = time.perf_counter()
                        marks["cpu_reviewed"] = time.process_time()
                counts = {name: getattr(counter, name) - counts_at_start.get(name, 0) for name in ("batches", "layouts", "frames")}
                await pilot.press("q")
    finally:
        counter.restore()
    if not {"started", "shown", "reviewed"} <= marks.keys():
        raise RuntimeError(f"the workbench did not show the answer within {WORKBENCH_LIMIT:.0f} s: marks {sorted(marks)}")
    layout_seconds = counter.seconds.get("layouts", 0.0)
    CPU_SECONDS["workbench"] = marks["cpu_reviewed"] - marks["cpu_started"]
    note = (f"{counts['batches']} text batches, {counts['frames']} frames, "
            f"{counts['layouts']} full layouts taking {layout_seconds:.2f} s")
    return marks["shown"] - marks["started"], marks["reviewed"] - marks["started"], note


async def measure(url: str, tokens: list[str], repeat: int) -> list[Layer]:
    """Run every layer `repeat` times, interleaved so that drift in machine load hits each alike."""
    layers = {
        "raw": Layer("(a) httpx aiter_bytes, whole body"),
        "client": Layer("(b) ChatClient.stream_chat, every event"),
        "session": Layer("(b) Session.run_task, call to ProposalReady"),
        "shown": Layer("(c) workbench, run_task call to last line shown"),
        "reviewed": Layer("(c) workbench, run_task call to review shown"),
    }
    runners: list[tuple[str, Callable[[str, list[str]], Awaitable[tuple]]]] = [
        ("raw", time_raw_httpx),
        ("client", time_chat_client),
        ("session", time_session),
    ]
    for _ in range(repeat):
        for key, runner in runners:
            seconds, note = await runner(url, tokens)
            layers[key].seconds.append(seconds)
            layers[key].notes.append(note)
        shown, reviewed, note = await time_workbench(url, tokens)
        layers["shown"].seconds.append(shown)
        layers["reviewed"].seconds.append(reviewed)
        layers["shown"].notes.append(note)
    return list(layers.values())


def print_report(layers: list[Layer], token_count: int) -> None:
    """Print the median time, tokens/s and ratio to (a) of each layer."""
    baseline = layers[0].median
    print(f"{token_count} tokens, {len(layers[0].seconds)} runs each, medians; ratio is to (a)")
    print(f"{'layer':<50} {'seconds':>8} {'tokens/s':>10} {'ratio':>7}  runs / counts")
    for layer in layers:
        runs = " ".join(f"{seconds:.2f}" for seconds in layer.seconds)
        note = layer.notes[-1] if layer.notes else ""
        print(f"{layer.label:<50} {layer.median:>8.2f} {token_count / layer.median:>10,.0f} "
              f"{layer.median / baseline:>7.2f}  [{runs}] {note}")


def main() -> int:
    """Start the fast and the paced server processes, measure every layer and print the reports."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=20_000, help="deltas in the answer (default 20000)")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each layer; the median is reported (default 5)")
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--delay", type=float, default=0.0, help=argparse.SUPPRESS)
    arguments = parser.parse_args()
    if arguments.serve:
        serve(arguments.tokens, arguments.delay)
        return 0

    servers = [start_server(arguments.tokens, 0.0), start_server(PACED_TOKENS, PACED_DELAY)]
    try:
        ports = [int(server.stdout.readline()) for server in servers]
        tokens = answer_tokens(arguments.tokens)
        layers = asyncio.run(measure(f"http://127.0.0.1:{ports[0]}", tokens, arguments.repeat))
        print_report(layers, arguments.tokens)
        asyncio.run(measure_paced(f"http://127.0.0.1:{ports[1]}"))
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=10)
    return 0


def start_server(token_count: int, delay: float) -> subprocess.Popen:
    """Start a server process that prints its port on its first line."""
    command = [sys.executable, __file__, "--serve", "--tokens", str(token_count), "--delay", str(delay)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True)


async def measure_paced(url: str) -> None:
    """Print the CPU share of the session and of the workbench while an answer streams at a model's pace."""
    tokens = answer_tokens(PACED_TOKENS)
    session_wall, _ = await time_session(url, tokens)
    session_cpu = CPU_SECONDS["session"]
    _, workbench_wall, note = await time_workbench(url, tokens)
    workbench_cpu = CPU_SECONDS["workbench"]
    rate = PACED_TOKENS / session_wall
    print()
    print(f"paced: {PACED_TOKENS} tokens, {PACED_DELAY * 1000:.0f} ms before each (about {rate:.0f} tokens/s); "
          "CPU of this process from run_task's call to the proposal")
    print(f"{'layer':<50} {'wall s':>8} {'CPU s':>8} {'CPU share':>10}")
    print(f"{'(b) Session.run_task':<50} {session_wall:>8.2f} {session_cpu:>8.2f} {session_cpu / session_wall:>10.0%}")
    print(f"{'(c) workbench':<50} {workbench_wall:>8.2f} {workbench_cpu:>8.2f} {workbench_cpu / workbench_wall:>10.0%}  {note}")


if __name__ == "__main__":
    raise SystemExit(main())
