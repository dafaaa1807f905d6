"""Suites and the gymnasium -> SB3 adapter: shapes, order, one-hot, autoreset, truncation, seeding."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.vector.async_vector_env import AsyncState
from metaworld.env_dict import ALL_V3_ENVIRONMENTS
from stable_baselines3.common.buffers import ReplayBuffer

from mtbench.envs.evaluation import evaluate
from mtbench.envs.sb3 import MetaWorldVecEnv
from mtbench.envs.sharded import ShardedVectorEnv
from mtbench.envs.vector import make_vector_env, save_env_rng
from mtbench.settings.config import PRESETS
from mtbench.settings.errors import UsageError
from mtbench.settings.suites import EPISODE_STEPS, STATE_DIM, parse_suite
from tests.helpers import scripted_policy

CLASS_TO_TASK = {cls.__name__: name for name, cls in ALL_V3_ENVIRONMENTS.items()}


def test_parse_suite_names():
    mt10 = parse_suite("MT10")
    assert mt10.name == "mt10" and mt10.num_tasks == 10
    assert mt10.tasks[:3] == ("reach-v3", "push-v3", "pick-place-v3")
    assert parse_suite("mt50").num_tasks == 50
    assert parse_suite("mt1:reach-v3").tasks == ("reach-v3",)
    custom = parse_suite(" reach-v3, drawer-close-v3 ")
    assert custom.tasks == ("reach-v3", "drawer-close-v3")
    assert custom.name == "reach-v3,drawer-close-v3"
    assert custom.dirname == "reach-v3+drawer-close-v3"
    assert parse_suite("mt1:reach-v3").dirname == "mt1_reach-v3"
    fixed = parse_suite("Fixed:mt10")
    assert fixed.name == "fixed:mt10" and fixed.fixed_goals and fixed.tasks == mt10.tasks
    assert fixed.base_name == "mt10" and fixed.dirname == "fixed_mt10" and not mt10.fixed_goals
    many = parse_suite(",".join(parse_suite("mt50").tasks[:40]))  # 40 names: 500 bytes with commas
    others = [parse_suite(f"fixed:{many.name}"), parse_suite(",".join(parse_suite("mt50").tasks[1:41]))]
    names = [s.dirname for s in (many, *others)]
    assert names[0].startswith("40-tasks-") and names[1].startswith("fixed_40-tasks-")
    assert len(set(names)) == 3 and all(len(n) <= 255 and "," not in n and ":" not in n for n in names)
    assert PRESETS["paper"].train_config(parse_suite("fixed:mt50")).steps_per_task == 1_000_000


@pytest.mark.parametrize(
    "name, fragment",
    [
        ("mt11", "unknown suite 'mt11'"),
        ("mt1:reach-v9", "unknown Meta-World task 'reach-v9'"),
        ("reach-v3,nope-v3", "unknown Meta-World task 'nope-v3'"),
        ("reach-v3,reach-v3", "names a task twice"),
        ("", "empty suite name"),
        ("fixed:fixed:mt10", "repeats the prefix"),
        ("fixed:mt11", "unknown suite 'mt11'"),
    ],
)
def test_parse_suite_errors_name_the_value(name, fragment):
    with pytest.raises(UsageError, match=fragment) as info:
        parse_suite(name)
    if "unknown" in fragment:
        assert "assembly-v3" in str(info.value)  # the valid choices are listed


def test_mt10_order_and_one_hot(mt10_envs):
    suite = parse_suite("mt10")
    names = [CLASS_TO_TASK[c] for c in mt10_envs.get_attr("task_name")]
    assert tuple(names) == suite.tasks
    obs, _ = mt10_envs.reset()
    assert obs.shape == (10, STATE_DIM + 10)
    np.testing.assert_array_equal(obs[:, STATE_DIM:], np.eye(10))


def test_adapter_shapes_and_info(two_task_suite):
    venv = MetaWorldVecEnv(make_vector_env(two_task_suite, seed=1))
    try:
        obs = venv.reset()
        assert obs.shape == (2, STATE_DIM + 2) and obs.dtype == np.float32
        assert venv.observation_space.shape == (STATE_DIM + 2,)
        assert venv.action_space.shape == (4,)
        np.testing.assert_array_equal(obs[:, STATE_DIM:], np.eye(2))
        obs, rewards, dones, infos = venv.step(np.zeros((2, 4), dtype=np.float32))
        assert obs.shape == (2, STATE_DIM + 2) and rewards.shape == (2,) and dones.shape == (2,)
        assert not dones.any()
        assert all("is_success" in info and "success" in info for info in infos)
    finally:
        venv.close()


@pytest.mark.parametrize("length", [500, 150])  # Meta-World v3's default; v1's (the paper's)
def test_truncation_autoreset_and_bootstrap(two_task_suite, length):
    """At the last step: done, the true last obs in terminal_observation, a timeout (never terminal)."""
    venv = MetaWorldVecEnv(make_vector_env(two_task_suite, seed=1, episode_steps=length))
    buffer = ReplayBuffer(1000, venv.observation_space, venv.action_space, n_envs=2)
    last_step = length - 1
    try:
        obs = venv.reset()
        rng = np.random.default_rng(0)
        for step in range(length):
            actions = rng.uniform(-1, 1, (2, 4)).astype(np.float32)
            new_obs, rewards, dones, infos = venv.step(actions)
            if step < last_step:
                assert not dones.any()
                last = new_obs
            buffer.add(obs, new_obs, actions, rewards, dones, infos)
            obs = new_obs
        assert dones.all()
        for i, info in enumerate(infos):
            assert info["TimeLimit.truncated"] is True
            terminal = info["terminal_observation"]
            assert terminal.shape == (STATE_DIM + 2,) and terminal[STATE_DIM + i] == 1.0
            # the terminal obs continues the trajectory; the returned obs is the next episode's first
            assert np.abs(terminal[:3] - last[i, :3]).max() < 0.1
            assert not np.allclose(terminal, new_obs[i])
            assert set(info["episode"]) == {"r", "l", "t"} and info["episode"]["l"] == length
        # the replay buffer sees a timeout, so the learner bootstraps through it
        assert buffer.dones[last_step].tolist() == [1.0, 1.0]
        assert buffer.timeouts[last_step].tolist() == [1.0, 1.0]
        assert (buffer.dones[last_step] * (1 - buffer.timeouts[last_step])).sum() == 0
    finally:
        venv.close()


def _rollout(suite, seed, steps=520):
    """Observations of a fixed action sequence that crosses an episode boundary (new goal)."""
    venv = MetaWorldVecEnv(make_vector_env(suite, seed=seed))
    try:
        venv.seed(seed)
        trace = [venv.reset()]
        rng = np.random.default_rng(123)
        for _ in range(steps):
            trace.append(venv.step(rng.uniform(-1, 1, (venv.num_envs, 4)).astype(np.float32))[0])
        return np.stack(trace)
    finally:
        venv.close()


def test_same_seed_same_goals_including_seed_zero(two_task_suite):
    a, b = _rollout(two_task_suite, 0), _rollout(two_task_suite, 0)
    np.testing.assert_array_equal(a, b)
    c = _rollout(two_task_suite, 1)
    assert not np.allclose(a[0], c[0])  # seed 0 is a real seed, not "unseeded"


def test_async_strategy_matches_sync(three_task_suite):
    sync = make_vector_env(three_task_suite, seed=4, strategy="sync", episode_steps=60)
    asyn = make_vector_env(three_task_suite, seed=4, strategy="async", episode_steps=60)
    try:
        _assert_alike(sync, asyn, three_task_suite, 60)
    finally:
        sync.close()
        asyn.close()


def test_the_sb3_adapter_steps_async_envs_as_sync_ones(three_task_suite):
    """Over an async vector env the adapter's ``step_async`` starts the step in the env processes
    (``overlap_collection`` updates meanwhile) and ``step_wait`` collects it: the same transitions,
    through an autoreset, as over a sync one."""
    venvs = [
        MetaWorldVecEnv(make_vector_env(three_task_suite, seed=4, strategy=strategy, episode_steps=30))
        for strategy in ("sync", "async")
    ]
    try:
        np.testing.assert_array_equal(*(venv.reset() for venv in venvs))
        ended = 0
        for action in np.random.default_rng(0).uniform(-1, 1, (31, 3, 4)):
            for venv in venvs:
                venv.step_async(action)
            assert venvs[1].envs._state == AsyncState.WAITING_STEP  # the processes are stepping
            (obs, rewards, dones, infos), got = (venv.step_wait() for venv in venvs)
            for a, b in zip((obs, rewards, dones), got[:3], strict=True):
                np.testing.assert_array_equal(a, b)
            for a, b in zip(infos, got[3], strict=True):
                assert a["is_success"] == b["is_success"]
                if "terminal_observation" in a:
                    np.testing.assert_array_equal(a["terminal_observation"], b["terminal_observation"])
            ended += int(dones.sum())
        assert ended == 3  # the 30th step ended every episode
    finally:
        for venv in venvs:
            venv.close()


@pytest.mark.slow
def test_mt50_order_and_one_hot():
    suite = parse_suite("mt50")
    envs = make_vector_env(suite, seed=0)
    try:
        assert tuple(CLASS_TO_TASK[c] for c in envs.get_attr("task_name")) == suite.tasks
        obs, _ = envs.reset()
        np.testing.assert_array_equal(obs[:, STATE_DIM:], np.eye(50))
    finally:
        envs.close()


def test_fixed_goals_stay_fixed_and_follow_the_seed():
    goal = slice(STATE_DIM - 3, STATE_DIM)  # Meta-World's goal position, the state's last 3 entries
    fixed = make_vector_env(parse_suite("fixed:reach-v3,drawer-close-v3"), seed=3)
    goals = [fixed.reset()[0][:, goal] for _ in range(3)]
    for _ in range(EPISODE_STEPS):  # the last step ends the episode and autoresets
        obs, _, _, truncated, _ = fixed.step(np.zeros((2, 4)))
    assert truncated.all()
    goals.append(obs[:, goal])  # the next episode's first observation
    np.testing.assert_array_equal(goals[0], goals[3])
    np.testing.assert_array_equal(goals[0], goals[1])
    np.testing.assert_array_equal(goals[0], goals[2])
    again = make_vector_env(parse_suite("fixed:reach-v3,drawer-close-v3"), seed=3)
    np.testing.assert_array_equal(again.reset()[0][:, goal], goals[0])
    varying = make_vector_env(parse_suite("reach-v3,drawer-close-v3"), seed=3)
    reach_goals = {tuple(varying.reset()[0][0, goal]) for _ in range(3)}
    assert len(reach_goals) == 3  # without the prefix every episode draws a new goal
    for envs in (fixed, again, varying):
        envs.close()


def _assert_alike(sync, other, suite, episode_steps: int) -> None:
    """``other`` gives what ``sync`` gives: step for step through an autoreset, and in evaluation."""
    actions = np.random.default_rng(0).uniform(-1, 1, (episode_steps + 20, suite.num_tasks, 4))
    assert other.observation_space == sync.observation_space
    np.testing.assert_array_equal(sync.reset(seed=4)[0], other.reset(seed=4)[0])
    for step, action in enumerate(actions):
        expected, got = sync.step(action), other.step(action)
        for a, b in zip(expected[:4], got[:4], strict=True):
            np.testing.assert_array_equal(a, b)
        assert expected[4].keys() == got[4].keys()
        if "success" in expected[4]:
            np.testing.assert_array_equal(expected[4]["success"], got[4]["success"])
        if step == episode_steps - 1:  # every episode truncates here, autoresets the same step
            assert got[3].all()
            np.testing.assert_array_equal(
                expected[4]["final_info"]["success"], got[4]["final_info"]["success"]
            )
            np.testing.assert_array_equal(np.stack(expected[4]["final_obs"]), np.stack(got[4]["final_obs"]))
    policy = scripted_policy(suite, {"reach-v3", "button-press-topdown-v3"})
    results = [evaluate(policy, envs, suite.tasks, 2, save_env_rng(envs)) for envs in (sync, other)]
    assert results[0] == results[1]
    assert results[1].success_rate["reach-v3"] > 0


def test_sharded_env_matches_sync_step_for_step_and_in_evaluation(three_task_suite):
    sync = make_vector_env(three_task_suite, seed=4)
    sharded = make_vector_env(three_task_suite, seed=4, processes=2)
    assert isinstance(sharded, ShardedVectorEnv) and len(sharded._processes) == 2
    try:
        _assert_alike(sync, sharded, three_task_suite, EPISODE_STEPS)
    finally:
        sync.close()
        sharded.close()
    assert not any(p.is_alive() for p in sharded._processes)


def test_sharded_env_reports_a_worker_that_dies():
    def broken() -> gym.Env:
        raise OSError("no display")

    with pytest.raises(RuntimeError, match="env worker process died"):
        ShardedVectorEnv([broken, broken], processes=2)
