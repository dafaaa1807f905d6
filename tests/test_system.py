"""Cores and memory a grid may use: the host's figures, capped by the cgroup's limits."""

from __future__ import annotations

from mtbench.settings import system


def test_container_limits_cap_memory_and_cores(tmp_path, monkeypatch):
    monkeypatch.setattr(system, "CGROUP", tmp_path)
    assert system.available_memory() > 2**30  # no cgroup files: the host's figures
    (tmp_path / "memory.max").write_text(f"{3 * 2**30}\n")
    (tmp_path / "memory.current").write_text(f"{2**30}\n")
    (tmp_path / "cpu.max").write_text("150000 100000\n")  # 1.5 CPUs
    assert system.available_memory() == 2 * 2**30
    assert system.usable_cores() == 1
    (tmp_path / "memory.max").write_text("max\n")
    (tmp_path / "cpu.max").write_text("max 100000\n")
    assert system.available_memory() > 2**30 and system.usable_cores() >= 1
