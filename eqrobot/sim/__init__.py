"""PyBullet layer: a client-owning :class:`Simulator`, scene primitives and the :class:`Panda` robot.

Never imports torch.
"""

from eqrobot.sim.quiet import c_stdout_silenced

with c_stdout_silenced():
    import pybullet  # noqa: F401  (prints its build time to C stdout on first import)

from eqrobot.sim.panda import JOINT1_LIMIT, Panda  # noqa: E402
from eqrobot.sim.simulator import GRAVITY, Simulator  # noqa: E402

__all__ = ["GRAVITY", "JOINT1_LIMIT", "Panda", "Simulator"]
