"""``python -m eqrobot.zoo train|enjoy|record_video ...``: rl-zoo3's scripts with eqrobot's ids registered.

rl-zoo3's ``train`` and ``enjoy`` take ``--gym-packages eqrobot``, but ``record_video`` has no such flag and
fails on ``eqrobot/...`` ids ("not found in gym registry"). This shim registers the eqrobot env ids and
the ``"EquivariantPolicy"`` SB3 alias, then hands the remaining arguments to rl-zoo3's own entry point
unchanged, so every rl-zoo3 flag works as documented there. Recipe: docs/rl_zoo3.md.
"""

from __future__ import annotations

import runpy
import sys

#: script name -> rl-zoo3 module run as ``__main__`` (record_video has its code under ``__main__``)
SCRIPTS = {"train": "rl_zoo3.train", "enjoy": "rl_zoo3.enjoy", "record_video": "rl_zoo3.record_video"}

USAGE = (
    "usage: python -m eqrobot.zoo {" + ",".join(SCRIPTS) + "} [rl-zoo3 arguments ...]\n"
    "e.g.   python -m eqrobot.zoo record_video --algo tqc --env eqrobot/Push-v0 -f logs -n 500\n"
    "(see docs/rl_zoo3.md; each script's own flags: python -m eqrobot.zoo <script> --help)"
)


def rl_zoo3_argv(argv: list[str]) -> tuple[str, list[str]]:
    """``[script, *args]`` -> ``(rl-zoo3 module, the sys.argv that module must see)``."""
    if not argv or argv[0] in ("-h", "--help"):
        raise SystemExit(USAGE)
    script, rest = argv[0], list(argv[1:])
    if script not in SCRIPTS:
        raise SystemExit(f"unknown script {script!r}; choose one of {list(SCRIPTS)}\n{USAGE}")
    module = SCRIPTS[script]
    return module, [module, *rest]


def main(argv: list[str] | None = None) -> None:
    module, zoo_argv = rl_zoo3_argv(sys.argv[1:] if argv is None else list(argv))
    from eqrobot.envs.registration import register_envs
    from eqrobot.policies.aliases import register_sb3_aliases

    register_envs()
    register_sb3_aliases()
    saved = sys.argv
    sys.argv = zoo_argv
    try:
        runpy.run_module(module, run_name="__main__", alter_sys=False)
    finally:
        sys.argv = saved


if __name__ == "__main__":
    main()
