"""Shared fixtures: small Meta-World suites (MT10 is built once per session; MT50 only in slow tests)."""

from __future__ import annotations

import os

os.environ.setdefault("MUJOCO_GL", "egl")  # headless rendering (mtbench eval --video), before MuJoCo loads

import pytest

from mtbench.envs.vector import make_vector_env
from mtbench.settings.suites import Suite, parse_suite
from tests.helpers import THREE_TASKS, TWO_TASKS


@pytest.fixture
def two_task_suite() -> Suite:
    return parse_suite(TWO_TASKS)


@pytest.fixture
def three_task_suite() -> Suite:
    return parse_suite(THREE_TASKS)


@pytest.fixture(scope="session")
def mt10_envs():
    envs = make_vector_env(parse_suite("mt10"), seed=0)
    yield envs
    envs.close()
