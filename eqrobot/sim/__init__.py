"""eqrobot.sim."""
