"""eqrobot.policies."""
