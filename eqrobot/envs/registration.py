"""Gymnasium registration of every eqrobot env id (filled in by the environments work)."""

ENV_IDS: tuple[str, ...] = ()


def register_envs() -> None:
    """Register every id in :data:`ENV_IDS` with Gymnasium; safe to call many times."""
