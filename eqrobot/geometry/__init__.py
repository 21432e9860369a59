"""SE(3)/SO(3) math, the observation/action geometry spec, and group actions on env arrays."""

from eqrobot.geometry.spec import ArraySpec, Field, GeometrySpec, xyz_to_e3nn

__all__ = ["ArraySpec", "Field", "GeometrySpec", "xyz_to_e3nn"]
