"""Create/close cycles leave no PyBullet client or memory behind."""

import gc

import gymnasium as gym
import numpy as np
import pybullet as p
import pytest

import eqrobot  # noqa: F401
from eqrobot.sim import Simulator


def _rss_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def _cycles(n):
    ids = set()
    for i in range(n):
        env = gym.make("eqrobot/Stack-v0")
        env.reset(seed=i)
        env.step(np.zeros(4, np.float32))
        ids.add(env.unwrapped.sim.client._client)
        env.close()
        env.close()
        assert not env.unwrapped.sim.is_connected
    gc.collect()
    return ids


def _check(n):
    _cycles(5)  # warm-up: allocator and caches
    rss0 = _rss_mb()
    ids = _cycles(n)
    growth = _rss_mb() - rss0
    print(f"\n{n} create/close cycles: client ids used {sorted(ids)}, RSS growth {growth:.1f} MB")
    assert len(ids) <= 2, "client ids keep growing: a physics server is not released"
    assert growth < 20 + 0.1 * n


def test_create_close_cycles_fast():
    _check(20)


@pytest.mark.slow
def test_create_close_cycles_200():
    _check(200)


def test_simulator_close_is_idempotent_and_disconnects():
    sim = Simulator()
    cid = sim.client._client
    assert p.isConnected(physicsClientId=cid)
    sim.close()
    sim.close()
    assert not p.isConnected(physicsClientId=cid)
