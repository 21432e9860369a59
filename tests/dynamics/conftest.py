import numpy as np
import pytest

from eqrobot.dynamics.toy import toy_spec, toy_transitions


@pytest.fixture(scope="session")
def push_spec():
    return toy_spec(1)


@pytest.fixture(scope="session")
def stack_spec():
    return toy_spec(2)


@pytest.fixture(scope="session")
def push_data(push_spec):
    return toy_transitions(push_spec, n_episodes=40, length=25, seed=0)


@pytest.fixture(scope="session")
def stack_data(stack_spec):
    return toy_transitions(stack_spec, n_episodes=10, length=20, seed=1)


@pytest.fixture
def rng():
    return np.random.default_rng(0)
