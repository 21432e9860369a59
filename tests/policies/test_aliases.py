"""`"EquivariantPolicy"` resolves in SB3 after `import eqrobot` (either first); eqrobot is torch-free."""

import subprocess
import sys

import pytest

CHECK = """
import sys
{first}
assert "torch" not in sys.modules or "stable_baselines3" in sys.modules, "import eqrobot loaded torch"
{second}
from stable_baselines3 import A2C, PPO, SAC, TD3
from eqrobot.policies.ppo import EquivariantActorCriticPolicy
from eqrobot.policies.sac import EquivariantSACPolicy
from eqrobot.policies.td3 import EquivariantTD3Policy
ppo = EquivariantActorCriticPolicy
for algo, cls in [(SAC, EquivariantSACPolicy), (TD3, EquivariantTD3Policy), (PPO, ppo), (A2C, ppo)]:
    assert "EquivariantPolicy" in algo.policy_aliases, algo
    assert algo.policy_aliases["EquivariantPolicy"] is cls, algo
    assert algo.policy_aliases["MlpPolicy"] is not None
try:
    SAC.policy_aliases["NoSuchPolicy"]
except KeyError:
    pass
else:
    raise AssertionError("unknown alias resolved")
print("ok")
"""


@pytest.mark.parametrize("order", ["eqrobot-first", "sb3-first"])
def test_alias_whichever_is_imported_first(order):
    first, second = "import eqrobot", "import stable_baselines3"
    if order == "sb3-first":
        first, second = second, first
    code = CHECK.format(first=first, second=second)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_import_eqrobot_is_torch_free():
    code = "import sys, eqrobot, gymnasium; gymnasium.make('eqrobot/Reach-v0'); print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "False", out.stderr[-2000:]
