"""A tiny, exactly SE(3)-equivariant pushing world in torch, for tests and smoke runs.

It mimics the layout of the eqrobot Push/Stack observations (end effector, gripper, gravity, base,
and per object position, orientation frame, linear and angular velocity) with hand-written
dynamics built only from dot and cross products, so it is exactly equivariant under world
rotations and translations. Nothing here is physics-accurate; it exists so that the dynamics
models and the MPC planner can be tested without PyBullet.
"""

from __future__ import annotations

import numpy as np
import torch

from eqrobot.geometry.so3 import exp_so3
from eqrobot.geometry.spec import ArraySpec, GeometrySpec, object_field_name

DT = 0.04
STEP = 0.05
RADIUS = 0.06


def toy_spec(n_objects: int = 1) -> GeometrySpec:
    """A Push-like (``n_objects=1``) or Stack-like (2) geometry spec."""
    names = ["object"] if n_objects == 1 else [f"object{i + 1}" for i in range(n_objects)]
    obs = [
        ("ee_position", "point", 3, "robot"),
        ("ee_velocity", "vector", 3, "robot"),
        ("gripper_width", "scalar", 1, "robot"),
        ("gravity_direction", "vector", 3, "static"),
        ("base_position", "point", 3, "static"),
    ]
    per_object = [
        ("position", "point", 3),
        ("orientation", "frame", 9),
        ("linear_velocity", "vector", 3),
        ("angular_velocity", "pseudovector", 3),
    ]
    for n in names:
        obs += [(object_field_name(n, a), kind, size, "object", n) for a, kind, size in per_object]
    goal = [(object_field_name(n, "position"), "point", 3, "object", n) for n in names]
    return GeometrySpec(
        observation=ArraySpec(obs),
        achieved_goal=ArraySpec(goal),
        desired_goal=ArraySpec(goal),
        action=ArraySpec([("ee_displacement", "vector", 3, "robot"), ("gripper", "scalar", 1, "robot")]),
    )


class ToyPushModel(torch.nn.Module):
    """Exact dynamics of the toy world, with the ``step(obs, action)`` interface of the learned models."""

    def __init__(self, spec: GeometrySpec):
        super().__init__()
        self.spec = spec
        # object name -> {attribute ("position", "orientation", ...): field name}
        self.objects = {
            n: {f.attribute: f.name for f in fields} for n, fields in spec.observation.objects().items()
        }

    def step(self, obs: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        o = self.spec.observation
        x = o.split(obs)
        d = action[..., 0:3]
        d = d / torch.clamp(d.norm(dim=-1, keepdim=True), min=1.0)
        grip = torch.clamp(action[..., 3:4], -1, 1)
        g = x["gravity_direction"]
        ee = x["ee_position"]
        disp = STEP * d
        ee_new = ee + disp
        out = obs.clone()
        out[..., o["ee_position"].slice] = ee_new
        out[..., o["ee_velocity"].slice] = disp / DT
        out[..., o["gripper_width"].slice] = torch.clamp(x["gripper_width"] + 0.01 * grip, 0.0, 0.08)
        for name in self.objects.values():
            p = x[name["position"]]
            R_cols = x[name["orientation"]].reshape(*p.shape[:-1], 3, 3)  # rows = columns of R
            w = x[name["angular_velocity"]]
            rel = p - ee_new
            dist = rel.norm(dim=-1, keepdim=True)
            u = rel / (dist + 1e-9)
            contact = torch.clamp((RADIUS - dist) / RADIUS, min=0.0)
            push = contact * torch.clamp((disp * u).sum(-1, keepdim=True), min=0.0) * u
            push = push + 0.5 * contact * STEP * u  # soft repulsion
            push = push - (push * g).sum(-1, keepdim=True) * g  # slides on the table plane
            v_old = x[name["linear_velocity"]]
            move = push + 0.3 * DT * v_old
            move = move - (move * g).sum(-1, keepdim=True) * g
            spin = (torch.linalg.cross(disp, u) * g).sum(-1, keepdim=True) * g * contact * 20.0
            w_new = 0.7 * w + spin
            E = exp_so3(w_new * DT)
            R_new = R_cols @ E.transpose(-1, -2)
            out[..., o[name["position"]].slice] = p + move
            out[..., o[name["orientation"]].slice] = R_new.reshape(*p.shape[:-1], 9)
            out[..., o[name["linear_velocity"]].slice] = move / DT
            out[..., o[name["angular_velocity"]].slice] = w_new
        return out


def toy_reset(spec: GeometrySpec, rng: np.random.Generator, batch: int = 1, world=None) -> dict:
    """Random initial observations (float64 dict) of the toy world, moved by ``world=(R, t)`` if given."""
    o = spec.observation
    x = np.zeros((batch, o.dim))
    x[:, o["ee_position"].slice] = np.array([0.0, 0.0, 0.1]) + rng.uniform(-0.1, 0.1, (batch, 3)) * [
        1,
        1,
        0.5,
    ]
    x[:, o["gripper_width"].slice] = 0.04
    x[:, o["gravity_direction"].slice] = [0.0, 0.0, -1.0]
    x[:, o["base_position"].slice] = [-0.6, 0.0, 0.0]
    model = ToyPushModel(spec)
    goals = []
    for name in model.objects.values():
        p = np.concatenate([rng.uniform(-0.15, 0.15, (batch, 2)), np.full((batch, 1), 0.02)], axis=1)
        x[:, o[name["position"]].slice] = p
        ang = rng.uniform(-np.pi, np.pi, batch)
        R = np.zeros((batch, 3, 3))
        R[:, 0, 0], R[:, 0, 1], R[:, 1, 0], R[:, 1, 1], R[:, 2, 2] = (
            np.cos(ang),
            -np.sin(ang),
            np.sin(ang),
            np.cos(ang),
            1,
        )
        x[:, o[name["orientation"]].slice] = np.swapaxes(R, -1, -2).reshape(batch, 9)
        goals.append(
            np.concatenate([rng.uniform(-0.15, 0.15, (batch, 2)), np.full((batch, 1), 0.02)], axis=1)
        )
    goal = np.concatenate(goals, axis=1)
    obs = {"observation": x, "achieved_goal": _achieved(spec, x), "desired_goal": goal}
    if world is not None:
        obs = spec.transform_obs(obs, *world)
    return obs


def _achieved(spec: GeometrySpec, x: np.ndarray) -> np.ndarray:
    return np.concatenate(
        [x[..., spec.observation[f.name].slice] for f in spec.achieved_goal.fields], axis=-1
    )


def toy_transitions(
    spec: GeometrySpec, n_episodes: int, length: int = 20, seed: int = 0, world=None, policy=None
):
    """A :class:`~eqrobot.dynamics.data.Transitions` data set from the toy world.

    Actions: noisy pushes towards the object (so contacts happen) unless ``policy`` is given.
    """
    from eqrobot.dynamics.data import Transitions
    from eqrobot.policies.distributions import limit_action

    rng = np.random.default_rng(seed)
    model = ToyPushModel(spec).double()
    obs = toy_reset(spec, rng, n_episodes)
    o = spec.observation
    cols = {
        k: []
        for k in (
            "observation",
            "achieved_goal",
            "desired_goal",
            "action",
            "next_observation",
            "next_achieved_goal",
        )
    }
    for _ in range(length):
        x = obs["observation"]
        if policy is None:
            obj = x[:, o[next(iter(model.objects.values()))["position"]].slice]
            d = (obj - x[:, o["ee_position"].slice]) / STEP + rng.normal(scale=0.7, size=(n_episodes, 3))
            d = (
                d
                - np.sum(d * x[:, o["gravity_direction"].slice], -1, keepdims=True)
                * x[:, o["gravity_direction"].slice]
                * 0.8
            )
            a = np.concatenate([d, rng.uniform(-1, 1, (n_episodes, 1))], axis=1)
        else:
            a, _ = policy.predict(obs)
        a = limit_action(np.asarray(a, dtype=np.float64), spec.action)
        nxt = model.step(torch.as_tensor(x), torch.as_tensor(a)).numpy()
        cols["observation"].append(x)
        cols["achieved_goal"].append(obs["achieved_goal"])
        cols["desired_goal"].append(obs["desired_goal"])
        cols["action"].append(a)
        cols["next_observation"].append(nxt)
        cols["next_achieved_goal"].append(_achieved(spec, nxt))
        obs = {"observation": nxt, "achieved_goal": _achieved(spec, nxt), "desired_goal": obs["desired_goal"]}
    # (T, E, d) -> episode-major rows
    arrays = {k: np.stack(v, 1).reshape(n_episodes * length, -1).astype(np.float32) for k, v in cols.items()}
    episode = np.repeat(np.arange(n_episodes), length)
    step = np.tile(np.arange(length), n_episodes)
    return Transitions(spec, **arrays, episode=episode, step=step, meta={"source": "toy", "seed": seed})
