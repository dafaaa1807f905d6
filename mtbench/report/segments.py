"""Training segments of a run, read from its ``provenance.json``: the first start and every resume,
each with the step it started at, its machine, code and precision.

A run records its first segment in the top-level fields and each resume in ``resumes`` (with the
same machine and code fields since they were added; older resume records lack them and read as
not recorded). The report lists resumed runs and every run whose machine or code changed mid-way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


def machine(record: dict[str, Any]) -> str | None:
    """``AMD EPYC (avx512_bf16; no AMX), GPU NVIDIA H100`` from a provenance record, or None."""
    if not record.get("cpu"):
        return None
    flags = record.get("cpu_flags")
    text = record["cpu"]
    if flags is None:
        text += " (flags not recorded)"
    else:
        bf16 = "avx512_bf16" if "avx512_bf16" in flags else "no avx512_bf16"
        amx = "AMX" if any(f.startswith("amx") for f in flags) else "no AMX"
        text += f" ({bf16}; {amx})"
    return text + (f", GPU {record['gpu']}" if record.get("gpu") else "")


def code(record: dict[str, Any]) -> str | None:
    """``b052ca057d`` or ``b052ca057d (dirty)`` from a provenance record, or None."""
    commit = record.get("git_commit")
    if not commit:
        return None
    return f"{commit[:10]}{' (dirty)' if record.get('git_dirty') else ''}"


@dataclass(frozen=True)
class Segment:
    """One stretch of training in one process, as its provenance record says."""

    start_env_steps: int
    """Env steps (all tasks) done before it started."""
    record: dict[str, Any]
    """The record: the run's top-level provenance for the first segment, a resume record after."""

    @property
    def machine(self) -> str | None:
        return machine(self.record)

    @property
    def code(self) -> str | None:
        return code(self.record)

    def compared(self, name: str) -> Any:
        """What ``name`` (machine, code, precision) must equal across segments; None: not recorded."""
        r = self.record
        if name == "machine":
            return r.get("cpu") and (r.get("cpu"), r.get("gpu"))
        if name == "flags":
            return None if r.get("cpu_flags") is None else tuple(r["cpu_flags"])
        return self.code if name == "code" else r.get("precision")


def segments(provenance: dict[str, Any]) -> list[Segment]:
    """The run's segments in order: the first start, then each resume."""
    resumes = [r for r in provenance.get("resumes", []) if isinstance(r, dict)]
    return [Segment(0, provenance), *(Segment(int(r.get("env_steps", 0)), r) for r in resumes)]


def changes(parts: list[Segment]) -> list[str]:
    """What changed between segments: ``machine`` (CPU model or GPU), ``CPU flags``, ``code``,
    ``precision``; a value a record does not have is not counted as a change."""
    names = {"machine": "machine", "flags": "CPU flags", "code": "code", "precision": "precision"}
    return [
        label
        for name, label in names.items()
        if len({p.compared(name) for p in parts if p.compared(name) is not None}) > 1
    ]


def describe(parts: list[Segment], tasks: int) -> str:
    """One line per segment, ``from 18,150 steps per task (2026-12-05, host vm): ...``."""
    lines = []
    for p in parts:
        at, host = (
            p.record.get("start_time", p.record.get("at")),
            p.record.get("hostname", p.record.get("host")),
        )
        when = ", ".join(v for v in (at and str(at)[:10], host and f"host {host}") if v)
        what = "; ".join(
            [
                p.machine or "machine not recorded",
                f"code {p.code}" if p.code else "code not recorded",
                p.record.get("precision") or "precision not recorded",
            ]
        )
        lines.append(f"from {p.start_env_steps // tasks:,} steps per task ({when}): {what}")
    return "; ".join(lines)
