"""eqrobot.nn."""
