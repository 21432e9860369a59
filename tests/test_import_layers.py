"""The package's dependency direction (DESIGN.md section 1), checked on the source with ``ast``.

Layers, lowest first: geometry; sim, nn; envs, policies, dynamics; rollout; rl, rotation;
experiments; cli. A module may import from its own layer or below, never above (function-level
imports included: a lazy import up the graph is still a back edge). sim never imports torch.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "eqrobot"

LAYERS = {
    "geometry": 0,
    "flags": 0,  # argparse flags from typed dataclasses: imports nothing of eqrobot
    "files": 0,  # atomic file writes
    "sim": 1,
    "nn": 1,
    "testing": 1,  # assert_equivariant and friends: geometry + torch, shipped for users' models
    "envs": 2,
    "policies": 2,
    "dynamics": 2,
    "__init__": 2,  # `import eqrobot` registers the env ids and the policy aliases
    "rollout": 3,
    "rl": 4,
    "rotation": 4,
    "experiments": 5,
    "zoo": 5,  # `python -m eqrobot.zoo`: rl-zoo3 entry points over training and rollout
    "cli": 6,
}
NAMES = {
    0: "geometry",
    1: "sim/nn",
    2: "envs/policies/dynamics",
    3: "rollout",
    4: "rl/rotation",
    5: "experiments",
    6: "cli",
}  # noqa: E501


def _modules(root: Path = ROOT):
    return sorted(p for p in root.rglob("*.py") if "__pycache__" not in p.parts)


def _top(path: Path, root: Path = ROOT) -> str:
    rel = path.relative_to(root)
    return rel.parts[0].removesuffix(".py") if len(rel.parts) > 1 or rel.name != "__init__.py" else "__init__"


def _imported(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import in ``path``, relative ones resolved."""
    package = list(path.relative_to(root.parent).with_suffix("").parts[:-1])
    out = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            out += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append((node.lineno, mod))
            if mod == "eqrobot":  # `from eqrobot import nn`: the names are subpackages
                out += [(node.lineno, f"eqrobot.{a.name}") for a in node.names]
    return out


def _layer_of_import(name: str) -> int | None:
    parts = name.split(".")
    if parts[0] != "eqrobot":
        return None
    return LAYERS.get(parts[1] if len(parts) > 1 else "__init__")


def test_every_module_has_a_layer():
    unknown = sorted({_top(p) for p in _modules()} - set(LAYERS))
    assert not unknown, f"classify these top-level modules in LAYERS (tests/test_import_layers.py): {unknown}"


def _back_edges(root: Path = ROOT) -> list[str]:
    out = []
    for path in _modules(root):
        own = LAYERS.get(_top(path, root))
        if own is None:
            continue
        for line, name in _imported(path, root):
            target = _layer_of_import(name)
            if target is not None and target > own:
                rel = path.relative_to(root.parent)
                out.append(f"{rel}:{line} imports {name} ({NAMES[own]} -> {NAMES[target]})")
    return out


def test_no_import_runs_up_a_layer():
    back_edges = _back_edges()
    assert not back_edges, "imports that run up the dependency graph:\n" + "\n".join(back_edges)


def test_nothing_imports_the_cli():
    users = [
        f"{p.relative_to(ROOT.parent)}:{line}"
        for p in _modules()
        if _top(p) != "cli"
        for line, name in _imported(p)
        if name == "eqrobot.cli"
    ]
    assert not users, f"library modules import the CLI: {users}"


def test_sim_never_imports_torch():
    offenders = [
        f"{p.relative_to(ROOT.parent)}:{line} imports {name}"
        for p in _modules()
        if _top(p) == "sim"
        for line, name in _imported(p)
        if name.split(".")[0] in ("torch", "e3nn", "stable_baselines3")
    ]
    assert not offenders, offenders
    # and not through anything it pulls in (the package root included)
    code = "import sys, eqrobot.sim.simulator, eqrobot.sim.panda; print('torch' in sys.modules)"
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert res.stdout.strip() == "False", "importing eqrobot.sim loads torch"


def test_the_checker_finds_planted_back_edges(tmp_path):
    """The check can fail: in a copy of the layout, lazy and relative imports up the graph are found,
    imports down it are not."""
    root = tmp_path / "eqrobot"
    (root / "dynamics").mkdir(parents=True)
    (root / "rollout").mkdir()
    (root / "dynamics" / "data.py").write_text(
        "from eqrobot.geometry.spec import GeometrySpec\n"
        "def f():\n    from eqrobot.rl.checkpoint import load_model\n"
        "from ..rollout import agents\n"
    )
    (root / "rollout" / "agents.py").write_text("from ..dynamics import data\nimport eqrobot.envs\n")
    edges = _back_edges(root)
    assert len(edges) == 2, edges
    assert any(":3 imports eqrobot.rl.checkpoint" in e for e in edges)
    assert any(":4 imports eqrobot.rollout " in e for e in edges)


def test_dynamics_makes_no_envs_and_runs_no_training():
    """dynamics holds models, their data format and the planner: running them in envs is rollout's."""
    offenders = [
        f"{p.relative_to(ROOT.parent)}:{line} imports {name}"
        for p in _modules()
        if _top(p) == "dynamics"
        for line, name in _imported(p)
        if name.split(".")[:2] in (["eqrobot", "envs"], ["eqrobot", "rl"], ["eqrobot", "rollout"])
        or name == "gymnasium"
    ]
    assert not offenders, offenders
