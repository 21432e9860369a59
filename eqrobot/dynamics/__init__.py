"""eqrobot.dynamics."""
