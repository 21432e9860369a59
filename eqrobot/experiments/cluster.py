"""Starting or joining Ray: an embedded local instance on loopback only, or an existing cluster.

Ray by default listens on every interface and advertises the machine's network address; an
unauthenticated Ray cluster runs any code sent to it, so the local default here binds to 127.0.0.1
only (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, set before Ray starts) and starts with
``address="local"`` (never joining a stale cluster recorded in Ray's temp folder). Joining a real
cluster is explicit (``address``); docs/cluster.md says how to set one up safely.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

RAY_EXTRA_HINT = 'pip install -e ".[ray]"'


class RayMissingError(RuntimeError):
    """Ray is not installed (it is the ``ray`` extra)."""


def require_ray():
    """Import and return ``ray``; a :class:`RayMissingError` naming the extra when it is missing."""
    try:
        import ray
        import ray.tune  # noqa: F401  (the sweep needs Tune, which the extra brings)
    except ImportError as e:
        raise RayMissingError(
            f"eqrobot sweep needs Ray Tune, which is not installed ({e}); install the ray extra: "
            f"{RAY_EXTRA_HINT}"
        ) from None
    return ray


def loopback_only_env() -> None:
    """Make a Ray started from this process (and its children) listen on 127.0.0.1 only."""
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    # Ray reads the variable once, when it is imported: a Ray imported before this call (by the
    # caller, by a test) must see the setting too, or it advertises the machine's network address
    constants = sys.modules.get("ray._private.ray_constants")
    if constants is not None:
        constants.ENABLE_RAY_CLUSTER = False


def check_loopback(ray) -> None:
    """Raise (after shutting Ray down) if a local Ray node listens on anything but loopback."""
    addresses = {n["NodeManagerAddress"] for n in ray.nodes()}
    if addresses != {"127.0.0.1"}:
        ray.shutdown()
        raise RuntimeError(
            f"the local Ray started on {sorted(addresses)}, not on 127.0.0.1 only; refusing to run. "
            "Set RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 before Ray is imported, or use --address to "
            "join a cluster you set up (docs/cluster.md)"
        )


@contextlib.contextmanager
def ray_session(address: str | None = None, num_cpus: int | None = None) -> Iterator[object]:
    """Ray for the duration of the block.

    ``address=None``: start a private local Ray on loopback with ``num_cpus`` CPUs (default: all),
    shut down on exit. ``address="auto"`` or ``"HOST:PORT"``: join that cluster (left running on
    exit). If Ray is already initialized in this process (tests share one session), use it as is.
    """
    if address is None:
        loopback_only_env()
    ray = require_ray()
    if ray.is_initialized():
        yield ray
        return
    if address is None:
        loopback_only_env()
        ray.init(
            address="local",
            include_dashboard=False,
            num_cpus=num_cpus or os.cpu_count(),
            log_to_driver=False,
            configure_logging=False,
        )
        check_loopback(ray)
    else:
        if num_cpus is not None:
            raise ValueError("num_cpus is the local Ray's size; a cluster's CPUs are set by `ray start`")
        ray.init(address=address, log_to_driver=False, configure_logging=False)
    try:
        yield ray
    finally:
        ray.shutdown()
