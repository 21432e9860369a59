"""``eqrobot`` command line: thin argparse front-end over :mod:`eqrobot.rl` (and friends).

    eqrobot train --env eqrobot/Reach-v0 --algo sac --policy equivariant --steps 6000 --seed 0
    eqrobot train --resume runs/Reach-sac-equivariant-s0-...
    eqrobot evaluate runs/Reach-sac-equivariant-s0-... --episodes 50 --rotation-range 180
    eqrobot demo

Each subcommand is one ``_add_<name>(subparsers)`` function that registers its parser and sets
``func``; the sections marked below are where other parts of the project plug theirs in.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys


class CLIError(Exception):
    """A user-facing error: printed without a traceback, exit status 2."""


# === train =========================================================================================
def _add_train(sub) -> None:
    from eqrobot.flags import add_dataclass_flags
    from eqrobot.rl.config import TrainConfig

    p = sub.add_parser(
        "train",
        help="train a policy (SAC/TD3/PPO/TQC, equivariant or MLP) into a run folder",
        description="Train a policy into a run folder. Unset numbers take the (env, algo, policy) preset; "
        "print one with: python -m eqrobot.rl.presets ENV ALGO POLICY",
    )
    add_dataclass_flags(p, TrainConfig)
    p.set_defaults(func=_cmd_train)


def _cmd_train(args) -> int:
    from eqrobot.flags import dataclass_from_flags
    from eqrobot.rl.config import TrainConfig
    from eqrobot.rl.train import read_eval_csv, train

    run_dir = train(dataclass_from_flags(TrainConfig, args))  # Ctrl-C: main() prints what was saved
    print(f"run folder: {run_dir}")
    csv_path = run_dir / "eval.csv"
    if csv_path.exists():
        rows = read_eval_csv(csv_path)
        if rows:
            last = rows[-1]
            print(f"final evaluation at step {int(last['step'])}: success rate {last['success_rate']:.2f}")
    return 0


# === evaluate ======================================================================================
def _add_evaluate(sub) -> None:
    p = sub.add_parser(
        "evaluate", help="evaluate a run folder (eqrobot or rl-zoo3), SB3 zip, dynamics checkpoint, 'oracle'"
    )
    p.add_argument("run", metavar="RUN_OR_ZIP")
    p.add_argument("--env", default=None, help="env id (default: the one the checkpoint was trained on)")
    p.add_argument("--episodes", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--rotation-range",
        type=float,
        default=None,
        metavar="DEG",
        help="random task rotation +-DEG degrees (default: none)",
    )
    p.add_argument("--stochastic", action="store_true", help="sample actions instead of the mean")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_cmd_evaluate)


def _require(ok: bool, message: str) -> None:
    """Refuse a bad flag before any work starts (exit status 2, no traceback)."""
    if not ok:
        raise CLIError(message)


def _check_env_id(env_id: str) -> None:
    from eqrobot.rollout.evaluation import check_env_id

    try:
        check_env_id(env_id)
    except ValueError as e:
        raise CLIError(f"--env: {e}") from None


def _cmd_evaluate(args) -> int:
    from eqrobot.rollout.agents import default_env_id, resolve_agent
    from eqrobot.rollout.evaluation import evaluate, format_table

    _require(args.episodes >= 1, f"--episodes must be >= 1, got {args.episodes}")
    _require(args.seed >= 0, f"--seed must be >= 0, got {args.seed}")
    _require(
        args.rotation_range is None or 0 <= args.rotation_range <= 180,
        f"--rotation-range must be in [0, 180] degrees, got {args.rotation_range}",
    )
    if args.env is not None:
        _check_env_id(args.env)
    env_id = args.env or default_env_id(args.run)
    if env_id is None:
        raise CLIError(f"{args.run}: the checkpoint does not say which env it was trained on; pass --env")
    model = resolve_agent(args.run, env_id)
    # an rl-zoo3 run's env_kwargs (its config.yml / args.yml) apply to its own env
    meta = getattr(model, "eqrobot_meta", {}) or {}
    zoo_run = meta.get("source") == "rl-zoo3" and meta.get("env_id") == env_id
    env_kwargs = dict(meta.get("env_kwargs") or {}) if zoo_run else {}
    if args.rotation_range:
        env_kwargs["task_rotation_range"] = math.radians(args.rotation_range)
    res = evaluate(model, env_id, args.episodes, args.seed, env_kwargs, deterministic=not args.stochastic)
    res["rotation_range_deg"] = args.rotation_range or 0.0
    if args.json:
        print(json.dumps(res, indent=2))
    else:
        print(
            format_table([res], ["env_id", "episodes", "rotation_range_deg", "success_rate", "mean_return"])
        )
    return 0


# === demo ==========================================================================================
def _add_demo(sub) -> None:
    p = sub.add_parser("demo", help="oracle showcase, then a short equivariant SAC+HER run on Reach")
    p.add_argument("--steps", type=int, default=None, help="training steps (default: the Reach preset's)")
    p.add_argument("--episodes", type=int, default=20, help="evaluation episodes per setting")
    p.add_argument("--out", default="runs")
    p.add_argument("--seed", type=int, default=0)
    p.set_defaults(func=_cmd_demo)


def _cmd_demo(args) -> int:
    from eqrobot.rl.config import TrainConfig
    from eqrobot.rl.train import train
    from eqrobot.rollout.checkpoints import load_model
    from eqrobot.rollout.evaluation import evaluate, format_table
    from eqrobot.rollout.showcase import run_oracle_showcase
    from eqrobot.sim import JOINT1_LIMIT

    _require(args.steps is None or args.steps >= 1, f"--steps must be >= 1, got {args.steps}")
    _require(args.episodes >= 1, f"--episodes must be >= 1, got {args.episodes}")
    _require(args.seed >= 0, f"--seed must be >= 0, got {args.seed}")

    print("== scripted oracles on every task (GIFs under runs/showcase/) ==")
    run_oracle_showcase(out_dir=os.path.join(args.out, "showcase"), episodes=args.episodes)

    env_id = "eqrobot/Reach-v0"
    print(f"\n== training equivariant SAC+HER on {env_id}, canonical scene only ==")
    config = TrainConfig(
        env_id=env_id,
        algo="sac",
        policy="equivariant",
        steps=args.steps,
        seed=args.seed,
        out=args.out,
        eval_episodes=10,
    )
    run_dir = train(config)
    print(f"run folder: {run_dir}")
    model = load_model(run_dir, env_id=env_id)
    # The task group is limited by Panda joint 1's range; the world group is any SE(3) element.
    settings = [
        ("canonical (trained)", {}),
        (f"task rotation +-{math.degrees(JOINT1_LIMIT):.0f} deg", {"task_rotation_range": JOINT1_LIMIT}),
        ("random world SE(3)", {"world_transform": "random"}),
    ]
    rows = []
    for label, kwargs in settings:
        res = evaluate(model, env_id, args.episodes, seed=args.seed + 1000, env_kwargs=kwargs)
        rows.append({"policy": "equivariant SAC+HER", "setting": label, **res})
    print()
    print(format_table(rows, ["policy", "setting", "episodes", "success_rate", "mean_return"]))
    return 0


# === rotation ======================================================================================
def _add_rotation(sub) -> None:
    from eqrobot.rotation.splits import SPLITS

    p = sub.add_parser(
        "rotation", help="success in rotated scenes, per bin with 95%% CIs, several policies side by side"
    )
    p.add_argument(
        "--policy",
        action="append",
        required=True,
        metavar="RUN_OR_ZIP|oracle|NAME=PATH",
        help="a run folder, SB3 zip, dynamics checkpoint or 'oracle'; repeat for several policies",
    )
    p.add_argument("--env", required=True, help="env id, e.g. eqrobot/Push-v0")
    p.add_argument(
        "--split",
        default="so2-sweep",
        help=f"one of {', '.join(SPLITS)}, a comma list or 'all' (default: %(default)s)",
    )
    p.add_argument("--episodes", type=int, default=10, help="episodes per bin (default: %(default)s)")
    p.add_argument("--n-envs", type=int, default=1, help="evaluation envs in parallel (processes)")
    p.add_argument("--seed", type=int, default=0, help="seed block of the split (fixed layouts per seed)")
    p.add_argument("--out", default=None, help="folder for rotation.md/json/csv and the polar plot PNG")
    p.add_argument(
        "--video-angles",
        type=float,
        nargs="*",
        default=None,
        metavar="DEG",
        help="save GIFs at these task rotations",
    )
    p.add_argument(
        "--sim-gap",
        type=int,
        default=0,
        metavar="EPISODES",
        help="also measure the simulator's own equivariance gap",
    )
    p.set_defaults(func=_cmd_rotation)


def _cmd_rotation(args) -> int:
    from eqrobot.rotation.splits import MAX_EPISODES_PER_BIN, resolve_splits
    from eqrobot.rotation.sweep import run_rotation

    _check_env_id(args.env)
    _require(
        1 <= args.episodes <= MAX_EPISODES_PER_BIN,
        f"--episodes must be in [1, {MAX_EPISODES_PER_BIN}] per bin, got {args.episodes}",
    )
    _require(args.n_envs >= 1, f"--n-envs must be >= 1, got {args.n_envs}")
    _require(args.seed >= 0, f"--seed must be >= 0, got {args.seed}")
    _require(args.sim_gap >= 0, f"--sim-gap must be >= 0 episodes, got {args.sim_gap}")
    bad = [a for a in args.video_angles or [] if not -180 <= a <= 180]
    _require(not bad, f"--video-angles must be in [-180, 180] degrees, got {bad}")
    try:
        resolve_splits(args.split)
    except ValueError as e:
        raise CLIError(f"--split: {e}") from None
    result = run_rotation(
        args.policy,
        args.env,
        args.split,
        args.episodes,
        n_envs=args.n_envs,
        seed=args.seed,
        out_dir=args.out,
        video_angles=args.video_angles,
        sim_gap_episodes=args.sim_gap,
    )
    print(result.to_markdown())
    if args.out:
        print(f"\nwrote {args.out}/rotation.md, .json, .csv and rotation_polar.png")
    return 0


# === dynamics ======================================================================================
# Flags, defaults and help come from the config dataclasses (eqrobot.flags): written once.
def _add_dynamics(sub) -> None:
    from eqrobot.dynamics.training import FitConfig
    from eqrobot.flags import add_dataclass_flags
    from eqrobot.rollout.collect import CollectConfig
    from eqrobot.rollout.evaluation import DynamicsEvalConfig

    p = sub.add_parser("dynamics", help="equivariant dynamics models: collect data, fit, evaluate (MPC)")
    dsub = p.add_subparsers(dest="dynamics_command", metavar="ACTION")
    dsub.required = True

    c = dsub.add_parser("collect", help="record transitions from a policy into an .npz file")
    c.add_argument("--out", required=True, help="output .npz")
    add_dataclass_flags(c, CollectConfig)
    c.set_defaults(func=_run_dynamics)

    f = dsub.add_parser("fit", help="train a dynamics model (multi-step rollout loss) into a .pt file")
    f.add_argument("data", help="transitions .npz")
    f.add_argument("--out", required=True, help="output checkpoint .pt")
    add_dataclass_flags(f, FitConfig)
    f.add_argument("-v", "--verbose", action="store_true", help="print the losses while fitting")
    f.set_defaults(func=_run_dynamics)

    e = dsub.add_parser("eval", help="rollout errors on a data file and/or MPC episodes in an env")
    e.add_argument("model", help="checkpoint .pt")
    add_dataclass_flags(e, DynamicsEvalConfig)
    e.add_argument("--out", default=None, help="also write the results as JSON")
    e.set_defaults(func=_run_dynamics)


def _config(cls, args):
    """The config dataclass from its flags; its ValueError (naming a field) names the flag instead."""
    import dataclasses

    from eqrobot.flags import dataclass_from_flags, flag_name

    try:
        return dataclass_from_flags(cls, args)
    except ValueError as e:
        msg = str(e)
        field = msg.split(" ", 1)[0]
        flags = {f.name: flag_name(f) for f in dataclasses.fields(cls)}
        if field in flags:
            msg = flags[field] + msg[len(field) :]
        raise CLIError(msg) from None


def _run_dynamics(args) -> int:
    cmd = args.dynamics_command
    if cmd == "collect":
        from eqrobot.rollout.collect import CollectConfig, collect_to_file

        res = collect_to_file(args.out, _config(CollectConfig, args), progress=True)
    elif cmd == "fit":
        from eqrobot.dynamics.training import FitConfig, fit_to_checkpoint

        res = fit_to_checkpoint(args.data, args.out, _config(FitConfig, args), verbose=args.verbose)
        res.pop("history", None)
    else:
        from eqrobot.rollout.evaluation import DynamicsEvalConfig, evaluate_dynamics

        res = evaluate_dynamics(args.model, _config(DynamicsEvalConfig, args), out=args.out)
    print(json.dumps(res, indent=2, default=float))
    return 0


# === sweep =========================================================================================
def _add_sweep(sub) -> None:
    p = sub.add_parser("sweep", help="experiment grids on Ray: train every trial, evaluate, report")
    ssub = p.add_subparsers(dest="sweep_command", metavar="ACTION")
    ssub.required = True
    r = ssub.add_parser("run", help="run an experiment config (TOML) on Ray: trials, then evaluations")
    r.add_argument("config", help="experiment TOML, e.g. experiments/bench_rl.toml")
    r.add_argument(
        "--address",
        default=None,
        help="join this Ray cluster (HOST:PORT or 'auto'); default: a local one on 127.0.0.1",
    )
    r.add_argument("--max-concurrent", type=int, default=None, help="trials at once (default: one per CPU)")
    r.add_argument("--num-cpus", type=int, default=None, help="CPUs of the local Ray (default: all)")
    r.add_argument("--resume", action="store_true", help="continue the sweep in --out (keeps finished runs)")
    r.add_argument("--out", default=None, help="sweep folder (default: runs/sweeps/<experiment name>)")
    r.set_defaults(func=_cmd_sweep)
    rep = ssub.add_parser("report", help="report.md/json and PNGs of a sweep folder")
    rep.add_argument("dir", help="sweep folder")
    rep.set_defaults(func=_cmd_sweep)


def _cmd_sweep(args) -> int:
    from eqrobot.experiments import cluster

    if args.sweep_command == "report":
        from pathlib import Path

        from eqrobot.experiments.report import build_report

        report = build_report(args.dir)
        print((Path(args.dir) / "report.md").read_text())
        print(f"wrote {args.dir}/report.md, report.json and the PNGs ({len(report['trials'])} trials)")
        return 0
    try:
        cluster.require_ray()
    except cluster.RayMissingError as e:
        raise CLIError(str(e)) from None
    from eqrobot.experiments.config import load_experiment
    from eqrobot.experiments.sweep import run_sweep

    config = load_experiment(args.config)
    out = args.out or os.path.join("runs", "sweeps", config.name)
    ledger = run_sweep(config, out, args.address, args.max_concurrent, args.resume, args.num_cpus)
    for name, entry in ledger["trials"].items():
        print(f"{entry['status']:9s} {name}" + (f": {entry['error']}" if entry["error"] else ""))
    print(f"sweep folder: {out}; report: eqrobot sweep report {out}")
    return 0 if all(e["status"] == "finished" for e in ledger["trials"].values()) else 1


SUBCOMMANDS = [_add_train, _add_evaluate, _add_rotation, _add_dynamics, _add_sweep, _add_demo]
"""Parser builders, in help order."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="eqrobot",
        description="eqrobot: train, evaluate and stress-test equivariant manipulation policies.",
        epilog="EQROBOT_DEBUG=1 shows tracebacks of errors.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for add in SUBCOMMANDS:
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # argparse's own errors (status 2) and --help (0): a status, not an exception
        return int(e.code or 0)
    try:
        return int(args.func(args) or 0)
    # CheckpointError and DynamicsCheckpointError are ValueErrors
    except (CLIError, FileNotFoundError, FileExistsError, ValueError) as e:
        if os.environ.get("EQROBOT_DEBUG"):
            raise
        print(f"eqrobot {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as e:  # Ctrl-C: say so (a TrainingInterrupted says what was saved)
        if os.environ.get("EQROBOT_DEBUG"):
            raise
        print(f"\neqrobot {args.command}: interrupted" + (f": {e}" if str(e) else ""), file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
