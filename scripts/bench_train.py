"""Benchmark: SAC+HER training throughput (env steps/s including updates), old code vs new.

Usage: python scripts/bench_train.py [--envs Reach Push] [--policies equivariant mlp]
           [--steps 1000] [--warmup 300] [--repeats 3] [--old-rev ca75a27 | --old-src DIR | --no-old]
           [--profile] [--out docs/bench_train.json]

For every (env, policy) it trains with the eqrobot preset (one thread, one env, batch 256, one
gradient step per env step) for ``--warmup`` steps without updates (filling the HER buffer), then
times ``--steps`` more steps with updates. The old code is a copy of ``eqrobot/`` at ``--old-rev``
(``git archive``; default ca75a27, the commit before the training speed-ups of issue 14) or the
package folder's parent given by ``--old-src``; each measurement runs in its own process with
``PYTHONPATH`` pointing at that copy or at this checkout, old and new interleaved round by round
(``--repeats`` rounds, the median kept), so load from other processes hits both alike. Ratios use
the thread's CPU time (``time.thread_time``: PyBullet and torch both run on it; other processes
preempting us do not count); wall-clock steps/s are reported too.

The compute limit (new code only): one raw env step (random actions, no policy) plus one SAC update
on a fixed batch, with no replay sampling: the model's own ``train`` (the arithmetic as this code
does it; its logging is a few ``logger.record`` calls) reading one batch drawn beforehand. The goal
is a training step within 1.5x of it. For reference the JSON also holds ``sb3_order_update_ms``:
the same update written out in SB3's order as bare network calls (two actor passes, stock optimiser
steps and polyak update), which the fewer-ops update now beats.

The matmul floor: the raw env step plus the update's time inside matrix products (torch.profiler's
self time of ``mm``/``addmm``/``bmm``/``baddbmm``, forward and backward). A change that keeps the
networks' maths keeps those products' FLOPs, so ``old step / matmul floor`` bounds the speed-up any
overhead cut can reach; it is printed per row.

``--profile`` adds one more run per code version under cProfile (not used for the rates: profiling
slows Python-heavy code more) and a breakdown of its steps: env step, acting, HER sampling, the
update's parts (nested buckets: acting contains its ``set_training_mode`` etc.).
Prints a table, writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OLD_REV = "ca75a27"
GOALS = {"push_equivariant_speedup": 2.0, "mlp_speedup": 1.5, "step_over_compute_limit": 1.5}

# cProfile buckets: (label, file suffix or suffixes, function name); cumulative time of every match
BUCKETS = [
    ("env step (DummyVecEnv.step_wait)", "dummy_vec_env.py", "step_wait"),
    ("acting (policy.predict)", "common/policies.py", "predict"),
    ("store transition + HER add", "off_policy_algorithm.py", "_store_transition"),
    ("SAC.train (all updates)", ("sac/sac.py", "policies/sac_update.py"), "train"),
    ("  HER sample + relabel", ("her_replay_buffer.py", "rl/her.py"), "sample"),
    ("    compute_reward", "", "compute_reward"),
    ("  actor (action_log_prob)", "", "action_log_prob"),
    ("  backward passes", "torch/_tensor.py", "backward"),
    ("  optimizer steps", "torch/optim/optimizer.py", "wrapper"),
    ("  optimizer zero_grad", "torch/optim/optimizer.py", "zero_grad"),
    ("  polyak (target update)", "common/utils.py", "polyak_update"),
    ("  logger.record", "logger.py", "record"),
    ("set_training_mode (all)", "", "set_training_mode"),
    ("obs_to_tensor (acting)", "common/policies.py", "obs_to_tensor"),
    ("callbacks (on_step)", "common/callbacks.py", "on_step"),
]


# --- worker (runs inside the process whose PYTHONPATH selects the code version) ----------------
def _build(env: str, policy: str, steps: int, warmup: int):
    import torch

    from eqrobot.rl.config import TrainConfig
    from eqrobot.rl.train import build_model, make_vec_env, resolve_config

    torch.set_num_threads(1)
    c = resolve_config(
        TrainConfig(env_id=f"eqrobot/{env}-v0", policy=policy, steps=warmup + steps,
                    hyperparams={"learning_starts": warmup}, progress_bar=False)
    )  # fmt: skip
    return build_model(c, make_vec_env(c), None)


def _bucket_times(stats) -> dict[str, float]:
    out = {}
    for label, file_suffix, func in BUCKETS:
        file_suffix = (file_suffix,) if isinstance(file_suffix, str) and file_suffix else file_suffix
        total = 0.0
        for (file, _line, name), (_cc, _nc, _tt, ct, _callers) in stats.stats.items():
            if name == func and file.replace("\\", "/").endswith(file_suffix or (file,)):
                total += ct
        out[label] = total
    return out


def measure_training(env: str, policy: str, steps: int, warmup: int, profile: bool = False) -> dict:
    """Steps/s of ``steps`` env steps with updates after ``warmup`` steps without (this process's code)."""
    model = _build(env, policy, steps, warmup)
    model.learn(warmup, progress_bar=False)
    result: dict = {}
    prof = None
    if profile:
        import cProfile

        prof = cProfile.Profile()
        prof.enable()
    wall, cpu = time.perf_counter(), time.thread_time()
    model.learn(steps, reset_num_timesteps=False, progress_bar=False)
    cpu, wall = time.thread_time() - cpu, time.perf_counter() - wall
    if prof is not None:
        import pstats

        prof.disable()
        stats = pstats.Stats(prof)
        result["profile_s"] = _bucket_times(stats)
        result["profile_total_s"] = stats.total_tt
    import eqrobot

    result.update(
        eqrobot_path=str(Path(eqrobot.__file__).parent),
        steps=steps,
        updates=int(model._n_updates),
        cpu_s=cpu,
        wall_s=wall,
        steps_per_s_cpu=steps / cpu,
        steps_per_s_wall=steps / wall,
    )
    return result


def measure_compute_limit(env: str, policy: str, warmup: int, updates: int, env_steps: int) -> dict:
    """Raw env step + one bare SAC update on a fixed batch (this process's code), CPU ms each."""
    import gymnasium as gym
    import numpy as np
    import torch
    import torch.nn.functional as F
    from stable_baselines3.common.utils import polyak_update

    model = _build(env, policy, 10, warmup)
    model.learn(warmup, progress_bar=False)
    raw = gym.make(f"eqrobot/{env}-v0")
    raw.reset(seed=0)
    rng = np.random.default_rng(0)
    acts = rng.uniform(-1, 1, (env_steps,) + raw.action_space.shape).astype(np.float32)
    t = time.thread_time()
    for a in acts:
        _, _, term, trunc, _ = raw.step(a)
        if term or trunc:
            raw.reset()
    env_ms = (time.thread_time() - t) / env_steps * 1e3
    raw.close()

    data = model.replay_buffer.sample(model.batch_size, env=None)
    actor, critic, target = model.actor, model.critic, model.critic_target
    log_alpha, alpha_opt = model.log_ent_coef, model.ent_coef_optimizer
    gamma, tau, target_entropy = model.gamma, model.tau, float(model.target_entropy)
    critic_params, target_params = list(critic.parameters()), list(target.parameters())

    def update():
        actions_pi, log_prob = actor.action_log_prob(data.observations)
        log_prob = log_prob.reshape(-1, 1)
        alpha = torch.exp(log_alpha.detach())
        alpha_loss = -(log_alpha * (log_prob + target_entropy).detach()).mean()
        alpha_opt.zero_grad()
        alpha_loss.backward()
        alpha_opt.step()
        with torch.no_grad():
            next_a, next_lp = actor.action_log_prob(data.next_observations)
            next_q = torch.min(torch.cat(target(data.next_observations, next_a), dim=1), dim=1, keepdim=True)[
                0
            ]
            y = data.rewards + (1 - data.dones) * gamma * (next_q - alpha * next_lp.reshape(-1, 1))
        q = critic(data.observations, data.actions)
        critic_loss = 0.5 * sum(F.mse_loss(qi, y) for qi in q)
        critic.optimizer.zero_grad()
        critic_loss.backward()
        critic.optimizer.step()
        q_pi = torch.min(torch.cat(critic(data.observations, actions_pi), dim=1), dim=1, keepdim=True)[0]
        actor_loss = (alpha * log_prob - q_pi).mean()
        actor.optimizer.zero_grad()
        actor_loss.backward()
        actor.optimizer.step()
        polyak_update(critic_params, target_params, tau)

    def timed(fn) -> float:
        for _ in range(5):
            fn()
        t = time.thread_time()
        for _ in range(updates):
            fn()
        return (time.thread_time() - t) / updates * 1e3

    sb3_order_ms = timed(update)
    model.replay_buffer.sample = lambda *args, **kwargs: data  # the model's train, sampling excluded
    update_ms = timed(lambda: model.train(1, model.batch_size))
    matmul_ms = update_ms * _matmul_share(lambda: model.train(1, model.batch_size), max(20, updates // 4))
    return {
        "env_step_ms": env_ms,
        "update_ms": update_ms,
        "sb3_order_update_ms": sb3_order_ms,
        "limit_ms": env_ms + update_ms,
        "matmul_ms": matmul_ms,
        "matmul_floor_ms": env_ms + matmul_ms,
    }


MATMUL_OPS = ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")


def _matmul_share(fn, calls: int) -> float:
    """The share of ``fn``'s time spent inside matrix products (forward and backward): torch.profiler's
    self time of the BLAS ops over the profiled calls' wall time. Both are wall clock, so load from
    other processes scales them alike; the profiler's own overhead counts in the denominator only,
    so the share errs low (the floor it gives is, if anything, too optimistic)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        t = time.perf_counter()
        for _ in range(calls):
            fn()
        wall_us = (time.perf_counter() - t) * 1e6
    matmul_us = sum(e.self_cpu_time_total for e in prof.key_averages() if e.key in MATMUL_OPS)
    return matmul_us / wall_us


def _worker_result(args: argparse.Namespace) -> dict:
    if args.worker == "train":
        return measure_training(args.env, args.policy, args.steps, args.warmup, args.profile)
    return measure_compute_limit(args.env, args.policy, args.warmup, args.limit_updates, args.limit_env_steps)


def worker_main(args: argparse.Namespace) -> None:
    print("BENCH_JSON " + json.dumps(_worker_result(args)))


# --- driver ---------------------------------------------------------------------------------------
def export_old(rev: str, dest: Path) -> Path:
    """``eqrobot/`` at git revision ``rev`` into ``dest`` (returns the folder to put on PYTHONPATH)."""
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", rev, "eqrobot"], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest


def run_worker(src: Path, argv: list[str], in_process: bool = False) -> dict:
    if in_process:  # this process's eqrobot (tests; no old-vs-new comparison)
        return _worker_result(parse_args(argv))
    env = {**os.environ, "PYTHONPATH": str(src), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    cmd = [sys.executable, "-P", str(Path(__file__).resolve()), *argv]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith("BENCH_JSON "):
            return json.loads(line[len("BENCH_JSON ") :])
    raise RuntimeError(
        f"worker {argv} with PYTHONPATH={src} failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}"
    )


def _median_run(runs: list[dict]) -> dict:
    out = dict(min(runs, key=lambda r: abs(r["cpu_s"] - statistics.median(x["cpu_s"] for x in runs))))
    out["steps_per_s_cpu_all"] = [r["steps_per_s_cpu"] for r in runs]
    out["steps_per_s_wall_all"] = [r["steps_per_s_wall"] for r in runs]
    return out


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--envs", nargs="+", default=["Reach", "Push"])
    p.add_argument("--policies", nargs="+", default=["equivariant", "mlp"])
    p.add_argument("--steps", type=int, default=1000, help="timed env steps (one update each)")
    p.add_argument("--warmup", type=int, default=300, help="env steps without updates before timing")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--old-rev", default=DEFAULT_OLD_REV)
    p.add_argument("--old-src", default=None, help="folder holding an old eqrobot/ (instead of --old-rev)")
    p.add_argument("--no-old", action="store_true", help="only the new code (no old-vs-new ratios)")
    p.add_argument("--in-process", action="store_true", help="with --no-old: measure in this process")
    p.add_argument("--limit-updates", type=int, default=200)
    p.add_argument("--limit-env-steps", type=int, default=500)
    p.add_argument("--profile", action="store_true")
    p.add_argument("--out", default="docs/bench_train.json")
    p.add_argument("--worker", choices=["train", "limit"], help=argparse.SUPPRESS)
    p.add_argument("--env", help=argparse.SUPPRESS)
    p.add_argument("--policy", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.warmup < 100:
        p.error("--warmup must be >= 100: HER samples whole 50-step episodes")
    if args.in_process and not args.no_old:
        p.error("--in-process measures this process's code only: add --no-old")
    return args


def measure_row(args: argparse.Namespace, versions: dict[str, Path], env: str, policy: str) -> dict:
    """Old and new throughput (median of the rounds) and the compute limit for one (env, policy)."""
    common = ["--env", env, "--policy", policy, "--warmup", str(args.warmup)]
    train = ["--worker", "train", "--steps", str(args.steps), *common]
    limit = ["--worker", "limit", "--limit-updates", str(args.limit_updates)]
    limit += ["--limit-env-steps", str(args.limit_env_steps), *common]
    runs: dict[str, list[dict]] = {v: [] for v in versions}
    for _ in range(args.repeats):  # interleaved: old, new, old, new, ...
        for v, src in sorted(versions.items(), reverse=True):
            runs[v].append(run_worker(src, train, args.in_process))
    row = {"env": env, "policy": policy, "limit": run_worker(ROOT, limit, args.in_process)}
    row.update({v: _median_run(r) for v, r in runs.items()})
    if args.profile:  # separate runs: cProfile slows Python-heavy code more, so it never sets the rates
        for v, src in versions.items():
            prof = run_worker(src, [*train, "--profile"], args.in_process)
            row[v].update(profile_s=prof["profile_s"], profile_total_s=prof["profile_total_s"])
    row["new_step_ms_cpu"] = 1e3 / row["new"]["steps_per_s_cpu"]
    row["step_over_limit"] = row["new_step_ms_cpu"] / row["limit"]["limit_ms"]
    if "old" in row:
        row["speedup_cpu"] = row["new"]["steps_per_s_cpu"] / row["old"]["steps_per_s_cpu"]
        row["speedup_wall"] = row["new"]["steps_per_s_wall"] / row["old"]["steps_per_s_wall"]
        # the speed-up if a step cost only its raw env step and its matrix products: an upper bound
        # for any change that keeps the networks' maths (the products' FLOPs stay)
        row["max_speedup_at_matmul_floor"] = (
            1e3 / row["old"]["steps_per_s_cpu"] / row["limit"]["matmul_floor_ms"]
        )
    return row


def goals_of(rows: list[dict]) -> dict[str, dict]:
    goals = {}
    for r in rows:
        if "speedup_cpu" in r and (r["env"], r["policy"]) == ("Push", "equivariant"):
            goals["push_equivariant_speedup"] = {
                "goal": GOALS["push_equivariant_speedup"],
                "got": r["speedup_cpu"],
            }
        if "speedup_cpu" in r and r["policy"] == "mlp":
            goals[f"mlp_speedup_{r['env']}"] = {"goal": GOALS["mlp_speedup"], "got": r["speedup_cpu"]}
        goals[f"step_over_limit_{r['env']}_{r['policy']}"] = {
            "goal": GOALS["step_over_compute_limit"],
            "got": r["step_over_limit"],
            "lower_is_better": True,
        }
    for g in goals.values():
        g["met"] = bool(g["got"] <= g["goal"] if g.get("lower_is_better") else g["got"] >= g["goal"])
    return goals


def print_report(rows: list[dict], goals: dict[str, dict], steps: int) -> None:
    head = ["env", "policy", "old st/s", "new st/s", "speedup", "step ms", "limit ms", "step/limit"]
    print("  ".join(f"{h:>10s}" for h in head) + "   (thread CPU time)")
    for r in rows:
        cells = [r["env"], r["policy"]]
        cells.append(f"{r['old']['steps_per_s_cpu']:.1f}" if "old" in r else "-")
        cells.append(f"{r['new']['steps_per_s_cpu']:.1f}")
        cells.append(f"{r['speedup_cpu']:.2f}" if "old" in r else "-")
        cells += [
            f"{r['new_step_ms_cpu']:.2f}",
            f"{r['limit']['limit_ms']:.2f}",
            f"{r['step_over_limit']:.2f}",
        ]
        print("  ".join(f"{c:>10s}" for c in cells))
    for r in rows:
        lim = r["limit"]
        line = (
            f"matmul floor {r['env']} {r['policy']}: {lim['matmul_floor_ms']:.2f} ms "
            f"(raw env step {lim['env_step_ms']:.2f} + matrix products {lim['matmul_ms']:.2f} of the "
            f"{lim['update_ms']:.2f} ms update)"
        )
        if "max_speedup_at_matmul_floor" in r:
            line += f"; at most {r['max_speedup_at_matmul_floor']:.2f}x the old code if nothing else cost"
        print(line)
    for name, g in goals.items():
        op = "<=" if g.get("lower_is_better") else ">="
        print(f"goal {name}: {g['got']:.2f} (goal {op} {g['goal']}) {'met' if g['met'] else 'NOT met'}")
    for r in rows:
        for v in ("old", "new"):
            if "profile_s" in r.get(v, {}):
                print(
                    f"\nprofile {r['env']} {r['policy']} {v}: {r[v]['profile_total_s']:.2f} s, {steps} steps"
                )
                for label, sec in r[v]["profile_s"].items():
                    print(f"  {label:36s} {sec:7.2f} s")


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.worker:
        worker_main(args)
        return {}
    with tempfile.TemporaryDirectory(prefix="bench_train_old_") as tmp:
        versions = {"new": ROOT}
        if not args.no_old:
            versions["old"] = Path(args.old_src) if args.old_src else export_old(args.old_rev, Path(tmp))
        rows = [measure_row(args, versions, env, policy) for env in args.envs for policy in args.policies]
    goals = goals_of(rows)
    print_report(rows, goals, args.steps)
    result = {
        "config": {k: v for k, v in vars(args).items() if k not in ("worker", "env", "policy")},
        "machine": {
            "platform": platform.platform(),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_avg": os.getloadavg(),
        },
        "rows": rows,
        "goals": goals,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
