"""SE(3)/SO(3) math, the observation/action geometry spec, and group actions on env arrays."""

from eqrobot.geometry.so3 import (
    Pose,
    compose_poses,
    exp_so3,
    invert_pose,
    log_so3,
    matrix_to_quat_xyzw,
    project_to_so3,
    quat_xyzw_to_matrix,
    random_pose,
    random_rotation,
    rot_x,
    rot_z,
    rotation_about_axis,
    rotation_angle,
    skew,
    vee,
)
from eqrobot.geometry.spec import ArraySpec, Field, GeometrySpec

__all__ = [
    "ArraySpec",
    "Field",
    "GeometrySpec",
    "Pose",
    "compose_poses",
    "exp_so3",
    "invert_pose",
    "log_so3",
    "matrix_to_quat_xyzw",
    "project_to_so3",
    "quat_xyzw_to_matrix",
    "random_pose",
    "random_rotation",
    "rot_x",
    "rot_z",
    "rotation_about_axis",
    "rotation_angle",
    "skew",
    "vee",
]
