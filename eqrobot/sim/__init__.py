"""PyBullet layer: a client-owning :class:`Simulator`, scene primitives and the :class:`Panda` robot.

Never imports torch.
"""

from eqrobot.sim.panda import JOINT1_LIMIT, Panda
from eqrobot.sim.simulator import GRAVITY, Simulator

__all__ = ["GRAVITY", "JOINT1_LIMIT", "Panda", "Simulator"]
