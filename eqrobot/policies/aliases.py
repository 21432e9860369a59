"""Make ``SAC("EquivariantPolicy", env)``, ``TD3(...)``, ``PPO(...)`` and sb3-contrib's ``TQC(...)``
resolve after ``import eqrobot``.

SB3 resolves a policy string through the algorithm's ``policy_aliases`` class dict. We add an
``"EquivariantPolicy"`` entry to SAC's, TD3's, PPO's, A2C's and TQC's dicts, lazily: the entry imports
:mod:`eqrobot.policies` (torch, e3nn) only when it is looked up. ``import eqrobot`` itself must stay
light (envs do not need torch), so when SB3 / sb3-contrib is not imported yet an import hook waits
for it (and removes itself once both are patched).

This module imports neither torch nor SB3.
"""

from __future__ import annotations

import importlib
import importlib.abc
import sys

ALIAS = "EquivariantPolicy"
TARGETS = {
    "stable_baselines3": {
        "SAC": "eqrobot.policies.sac:EquivariantSACPolicy",
        "TD3": "eqrobot.policies.td3:EquivariantTD3Policy",
        "PPO": "eqrobot.policies.ppo:EquivariantActorCriticPolicy",
        "A2C": "eqrobot.policies.ppo:EquivariantActorCriticPolicy",
    },
    "sb3_contrib": {"TQC": "eqrobot.policies.tqc:EquivariantTQCPolicy"},
}
"""Package -> {algorithm class name -> "module:policy class"} that gets the ``"EquivariantPolicy"`` alias."""


def _load(target: str):
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


class LazyAliases(dict):
    """A ``policy_aliases`` dict whose extra entries are imported on first lookup."""

    def __init__(self, base: dict, lazy: dict[str, str]):
        super().__init__(base)
        self._lazy = dict(lazy)

    def _resolve(self, key):
        if key in self._lazy and not dict.__contains__(self, key):
            dict.__setitem__(self, key, _load(self._lazy[key]))

    def __contains__(self, key) -> bool:
        return dict.__contains__(self, key) or key in self._lazy

    def __getitem__(self, key):
        self._resolve(key)
        return dict.__getitem__(self, key)

    def get(self, key, default=None):
        self._resolve(key)
        return dict.get(self, key, default)

    def keys(self):
        for key in list(self._lazy):
            self._resolve(key)
        return dict.keys(self)

    def __iter__(self):
        return iter(self.keys())

    def items(self):
        self.keys()
        return dict.items(self)

    def values(self):
        self.keys()
        return dict.values(self)


def _patch(sb3_module) -> None:
    for algo, target in TARGETS[sb3_module.__name__].items():
        cls = getattr(sb3_module, algo, None)
        if cls is None:
            continue
        aliases = cls.__dict__.get("policy_aliases", cls.policy_aliases)
        if isinstance(aliases, LazyAliases) or ALIAS in dict.keys(aliases):
            continue
        cls.policy_aliases = LazyAliases(aliases, {ALIAS: target})


class _SB3ImportHook(importlib.abc.MetaPathFinder):
    """Runs :func:`_patch` right after each package of :data:`TARGETS` finishes importing; removes
    itself when none is left to wait for."""

    def __init__(self, pending: set[str]):
        self.pending = set(pending)

    def find_spec(self, fullname, path, target=None):
        if fullname not in self.pending:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(fullname, path, target)
            if spec is not None:
                break
        else:
            return None
        loader = spec.loader
        original = getattr(loader, "exec_module", None)
        if original is None:
            return spec
        hook = self

        def exec_module(module):
            original(module)
            hook.pending.discard(fullname)
            if not hook.pending and hook in sys.meta_path:
                sys.meta_path.remove(hook)
            _patch(module)

        loader.exec_module = exec_module
        return spec


def register_sb3_aliases() -> None:
    """Add ``"EquivariantPolicy"`` to SB3's SAC/TD3/PPO/A2C and sb3-contrib's TQC aliases, now for a
    package already imported, else when it gets imported."""
    pending = set()
    for package, algos in TARGETS.items():
        module = sys.modules.get(package)
        if module is not None and all(hasattr(module, a) for a in algos):
            _patch(module)
        else:
            pending.add(package)
    if pending and not any(isinstance(f, _SB3ImportHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _SB3ImportHook(pending))
