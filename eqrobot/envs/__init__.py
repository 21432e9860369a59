"""eqrobot.envs."""
