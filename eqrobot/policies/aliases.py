"""Make ``SAC("EquivariantPolicy", env)`` (TD3, PPO, A2C; sb3-contrib's too) resolve after ``import eqrobot``.

SB3 looks a policy string up in the algorithm's ``policy_aliases`` class dict, whose values must be
classes. Plain registration (``SAC.policy_aliases["EquivariantPolicy"] = EquivariantSACPolicy``)
would need torch and e3nn at ``import eqrobot``, which must stay light (envs need neither), and SB3
may be imported only after eqrobot. Hence the two small pieces here, and nothing more:

- the entry is lazy: ``policy_aliases`` becomes a dict whose ``"EquivariantPolicy"`` value is
  imported from :mod:`eqrobot.policies` on first lookup (``__contains__`` + ``__missing__``);
- if the SB3 / sb3-contrib module is not imported yet, an import hook adds the entry right after it is.

To add an algorithm, add a line to :data:`TARGETS`. This module imports neither torch nor SB3.
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys

ALIAS = "EquivariantPolicy"
TARGETS: dict[str, dict[str, str]] = {
    "stable_baselines3": {
        "SAC": "eqrobot.policies.sac:EquivariantSACPolicy",
        "TD3": "eqrobot.policies.td3:EquivariantTD3Policy",
        "PPO": "eqrobot.policies.ppo:EquivariantActorCriticPolicy",
        "A2C": "eqrobot.policies.ppo:EquivariantActorCriticPolicy",
    },
    "sb3_contrib": {"TQC": "eqrobot.policies.tqc:EquivariantTQCPolicy"},
}
"""SB3 module -> algorithm class name -> ``module:Class`` of its equivariant policy."""


class LazyAliases(dict):
    """A ``policy_aliases`` dict whose extra entries are imported on first lookup."""

    def __init__(self, base: dict, lazy: dict[str, str]):
        super().__init__(base)
        self.lazy = dict(lazy)

    def __contains__(self, key) -> bool:
        return dict.__contains__(self, key) or key in self.lazy

    def __missing__(self, key):
        if key not in self.lazy:
            raise KeyError(key)
        module, name = self.lazy[key].split(":")
        self[key] = value = getattr(importlib.import_module(module), name)
        return value


def _patch(module) -> None:
    for algo, target in TARGETS.get(module.__name__, {}).items():
        cls = getattr(module, algo, None)
        if cls is None or isinstance(cls.__dict__.get("policy_aliases"), LazyAliases):
            continue
        cls.policy_aliases = LazyAliases(cls.policy_aliases, {ALIAS: target})


class _PostImportHook(importlib.abc.MetaPathFinder):
    """Calls :func:`_patch` right after a module of :data:`TARGETS` finishes importing."""

    def find_spec(self, fullname, path, target=None):
        if fullname not in TARGETS:
            return None
        for finder in sys.meta_path:
            if finder is not self and hasattr(finder, "find_spec"):
                spec = finder.find_spec(fullname, path, target)
                if spec is not None:
                    break
        else:
            return None
        exec_module = getattr(spec.loader, "exec_module", None)
        if exec_module is not None:

            def exec_and_patch(module):
                exec_module(module)
                _patch(module)

            spec.loader.exec_module = exec_and_patch
        return spec


def register_sb3_aliases() -> None:
    """Add ``"EquivariantPolicy"`` to the algorithms of :data:`TARGETS`, now or when imported."""
    for name in TARGETS:
        if name in sys.modules:
            _patch(sys.modules[name])
    if not any(isinstance(f, _PostImportHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _PostImportHook())
