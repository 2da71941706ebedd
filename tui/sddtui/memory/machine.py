"""Provide the machine's memory as psutil reports it."""

from __future__ import annotations

from dataclasses import dataclass

import psutil


@dataclass(frozen=True, slots=True)
class MachineMemory:
    """Total and available system memory, in bytes."""

    total_bytes: int
    available_bytes: int

    @property
    def used_fraction(self) -> float:
        """Return the share of memory in use, from 0 to 1."""
        if self.total_bytes <= 0:
            return 0.0
        return 1.0 - self.available_bytes / self.total_bytes


def read_machine_memory() -> MachineMemory:
    """Read total and available memory now."""
    memory = psutil.virtual_memory()
    return MachineMemory(total_bytes=memory.total, available_bytes=memory.available)


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
