"""Where a result came from: code version, packages, hardware, command line, time."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import torch

import mtbench

PACKAGES = ("torch", "stable-baselines3", "metaworld", "gymnasium", "mujoco", "numpy", "rliable")


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args],
            cwd=Path(mtbench.__file__).parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def _package_version(name: str) -> str | None:
    try:
        return version(name)
    except PackageNotFoundError:
        return None


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


SPEED_FLAGS = ("avx512_bf16", "amx_bf16", "amx_tile")
"""CPU flags that change training speed and bf16 numerics, recorded where present."""
SEGMENT_KEYS = ("hostname", "cpu", "cpu_flags", "gpu", "git_commit", "git_dirty", "mtbench_version")
"""The machine and code fields a resume records again (a resume is a new training segment)."""


def _cpu_flags() -> list[str]:
    """The `SPEED_FLAGS` this CPU has (from ``/proc/cpuinfo``; empty where it cannot be read)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags"):
                present = set(line.split(":", 1)[1].split())
                return [f for f in SPEED_FLAGS if f in present]
    except OSError:
        pass
    return []


def segment(run_provenance: dict[str, Any]) -> dict[str, Any]:
    """The machine and code fields of ``run_provenance`` (from `collect`) that a resume
    record repeats, so that each training segment names its own machine and commit."""
    return {k: run_provenance.get(k) for k in SEGMENT_KEYS}


def collect(device: str) -> dict[str, Any]:
    """Provenance of a run started now on ``device`` (the torch device actually used)."""
    commit = _git("rev-parse", "HEAD")
    status = _git("status", "--porcelain") if commit else None
    return {
        "mtbench_version": mtbench.__version__,
        "git_commit": commit,
        "git_dirty": bool(status) if status is not None else None,
        "python": sys.version.split()[0],
        "packages": {name: _package_version(name) for name in PACKAGES},
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "cpu": _cpu_model(),
        "cpu_flags": _cpu_flags(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": device,
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "command": sys.argv,
        "start_time": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
