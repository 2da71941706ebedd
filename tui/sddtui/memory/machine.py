"""Provide the machine's memory: psutil, the macOS GPU working-set limit, NVIDIA memory and a server's RSS."""

from __future__ import annotations

import platform
import shutil
import subprocess
from dataclasses import dataclass

import psutil

# macOS lets the GPU wire about this share of RAM when iogpu.wired_limit_mb is 0 (unset). The share
# is an estimate from Apple silicon reports: roughly 2/3 up to 36 GiB and 3/4 above.
MACOS_DEFAULT_SHARE_SMALL = 2 / 3
MACOS_DEFAULT_SHARE_LARGE = 3 / 4
MACOS_LARGE_RAM_BYTES = 36 * 1024**3


@dataclass(frozen=True, slots=True)
class MachineMemory:
    """Total and available system memory, in bytes, and the GPU limit where one is known."""

    total_bytes: int
    available_bytes: int
    gpu_limit_bytes: int | None = None
    gpu_limit_source: str = ""
    """Where the GPU limit came from; "estimate" appears in it when it was not read from the system."""

    @property
    def used_fraction(self) -> float:
        """Return the share of memory in use, from 0 to 1."""
        if self.total_bytes <= 0:
            return 0.0
        return 1.0 - self.available_bytes / self.total_bytes


@dataclass(frozen=True, slots=True)
class GpuMemory:
    """One NVIDIA GPU's memory as nvidia-smi reports it, in bytes."""

    name: str
    total_bytes: int
    used_bytes: int


def read_machine_memory() -> MachineMemory:
    """Read total and available memory now, with the macOS GPU limit on a Mac."""
    memory = psutil.virtual_memory()
    limit, source = (None, "")
    if platform.system() == "Darwin":
        limit, source = read_macos_gpu_limit(memory.total)
    return MachineMemory(memory.total, memory.available, limit, source)


def read_macos_gpu_limit(total_bytes: int) -> tuple[int, str]:
    """Return the GPU working-set limit from `iogpu.wired_limit_mb`, or the default share as an estimate."""
    try:
        output = subprocess.run(
            ["sysctl", "-n", "iogpu.wired_limit_mb"], capture_output=True, text=True, timeout=2, check=False
        ).stdout.strip()
        limit_mb = int(output) if output else 0
    except (OSError, ValueError, subprocess.TimeoutExpired):
        limit_mb = 0
    if limit_mb > 0:
        return limit_mb * 1024 * 1024, "sysctl iogpu.wired_limit_mb"
    share = MACOS_DEFAULT_SHARE_LARGE if total_bytes > MACOS_LARGE_RAM_BYTES else MACOS_DEFAULT_SHARE_SMALL
    return int(total_bytes * share), f"estimate: {share:.0%} of RAM (iogpu.wired_limit_mb unset)"


def read_nvidia_memory(runner=subprocess.run) -> list[GpuMemory]:
    """Return each NVIDIA GPU's memory from nvidia-smi, or an empty list when nvidia-smi is absent or fails."""
    if shutil.which("nvidia-smi") is None and runner is subprocess.run:
        return []
    try:
        completed = runner(
            ["nvidia-smi", "--query-gpu=name,memory.total,memory.used", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return []
    return parse_nvidia_smi(completed.stdout) if completed.returncode == 0 else []


def parse_nvidia_smi(output: str) -> list[GpuMemory]:
    """Parse `name, total MiB, used MiB` lines of nvidia-smi's CSV output."""
    gpus = []
    for line in output.splitlines():
        parts = [part.strip() for part in line.rsplit(",", 2)]
        if len(parts) != 3:
            continue
        try:
            gpus.append(GpuMemory(parts[0], int(parts[1]) * 1024 * 1024, int(parts[2]) * 1024 * 1024))
        except ValueError:
            continue
    return gpus


def find_listening_process(port: int) -> psutil.Process | None:
    """Return the process that listens on TCP `port` on this machine, or None when none is visible."""
    for process in psutil.process_iter():
        try:
            connections = process.net_connections(kind="tcp")
        except (psutil.AccessDenied, psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        for connection in connections:
            if connection.status == psutil.CONN_LISTEN and connection.laddr and connection.laddr.port == port:
                return process
    return None


def process_tree_rss(process: psutil.Process) -> int:
    """Return the resident bytes of a process and all its children."""
    total = 0
    for member in [process, *process.children(recursive=True)]:
        try:
            total += member.memory_info().rss
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return total


def server_rss(port: int) -> int | None:
    """Return the resident bytes of the process tree listening on `port`, or None when it is not found."""
    process = find_listening_process(port)
    if process is None:
        return None
    try:
        return process_tree_rss(process)
    except psutil.NoSuchProcess:
        return None


def format_bytes(count: int | float | None) -> str:
    """Format a byte count with binary units, e.g. 180.0 MiB."""
    if count is None:
        return "?"
    value = float(count)
    if abs(value) < 1024:
        return f"{value:.0f} B"
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if abs(value) < 1024 or unit == "GiB":
            break
    return f"{value:.1f} {unit}"


def parse_size(text: str) -> int:
    """Parse a size such as 24G, 24GiB, 512M or 1073741824 into bytes (K, M, G, T are binary)."""
    cleaned = text.strip().upper().removesuffix("B").removesuffix("I")
    multipliers = {"K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
    if cleaned and cleaned[-1] in multipliers:
        return int(float(cleaned[:-1]) * multipliers[cleaned[-1]])
    return int(float(cleaned))
