import subprocess
import sys


def test_creating_and_stepping_an_env_prints_nothing():
    """PyBullet's C-level chatter (build time, ``argv[0]=``) must not reach users' terminals."""
    code = (
        "import gymnasium as gym, eqrobot\n"
        "env = gym.make('eqrobot/Push-v0')\n"
        "env.reset(seed=0)\n"
        "env.step(env.action_space.sample())\n"
        "env.close()\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout == "" and out.stderr == "", (out.stdout, out.stderr)
