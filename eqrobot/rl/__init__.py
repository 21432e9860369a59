"""eqrobot.rl."""
