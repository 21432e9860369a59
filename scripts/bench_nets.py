"""Benchmark: equivariant actor/critic vs a matched MLP vs a naive e3nn tensor-product network.

Usage: python scripts/bench_nets.py [--out docs/bench_nets.json] [--hidden 64 256] [--quick]

Measures, on a realistic Push spec (ee point + velocity, gripper, gravity, base point, object point
+ frame + linear and angular velocity; goal point), per network: parameter count, forward at batch
1 and 256 (inference mode, as when acting), and forward+backward at batch 256 (as in an update).
All networks are timed in the same run, interleaved round by round (the minimum over rounds is
kept), so load from other processes hits them alike; the table reports ratios to the matched MLP.
With torch.set_num_threads(1) the clock is the thread's CPU time (time.thread_time: unaffected by
other processes preempting us); with ``--threads 1 2`` the 2-thread rows use wall time (only
meaningful on an idle machine).
Prints a table, writes JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch
from e3nn import nn as enn
from e3nn import o3
from torch import nn

from eqrobot.geometry import ArraySpec
from eqrobot.nn import EquivariantNet, SpecEncoder, count_parameters, mlp_matching

OBS = ArraySpec([
    ("ee_position", "point"), ("ee_velocity", "vector"), ("gripper_width", "scalar"),
    ("gravity_direction", "vector"), ("base_position", "point"), ("object_position", "point"),
    ("object_orientation", "frame"), ("object_linear_velocity", "vector"),
    ("object_angular_velocity", "pseudovector"),
])
GOAL = ArraySpec([("goal_position", "point")])
ACTION = ArraySpec([("ee_displacement", "vector"), ("gripper", "scalar")])
ACTOR_IN = ArraySpec.concat({"observation": OBS, "desired_goal": GOAL})
ACTOR_OUT = ArraySpec([("ee_displacement", "vector"), ("gripper", "scalar"), ("log_std", "scalar", 2)])
CRITIC_IN = ArraySpec.concat({"observation": OBS, "desired_goal": GOAL, "action": ACTION})
CRITIC_OUT = ArraySpec([("q", "scalar")])


class NaiveE3nnNet(nn.Module):
    """The textbook e3nn network: FullyConnectedTensorProduct(x, x) + Gate, ``layers`` times, then
    an ``o3.Linear`` to the output irreps. Inputs go through the same :class:`SpecEncoder` (points
    relative to the anchor) and are permuted into e3nn's (y, z, x) basis, so it is equivariant too.
    """

    def __init__(self, in_spec: ArraySpec, out_spec: ArraySpec, mul: int, layers: int = 2):
        super().__init__()
        self.encoder = SpecEncoder(in_spec)
        C, S = self.encoder.n_vectors, self.encoder.n_scalars
        irreps = o3.Irreps(f"{S}x0e + {C}x1o") if S else o3.Irreps(f"{C}x1o")
        tps, gates = [], []
        for _ in range(layers):
            gate = enn.Gate(f"{mul}x0e", [torch.nn.functional.silu], f"{mul}x0e", [torch.sigmoid],
                            f"{mul}x1o")
            tps.append(o3.FullyConnectedTensorProduct(irreps, irreps, gate.irreps_in))
            gates.append(gate)
            irreps = gate.irreps_out
        self.tps, self.gates = nn.ModuleList(tps), nn.ModuleList(gates)
        n_vec = sum(f.multiplicity for f in out_spec.fields if f.kind != "scalar")
        n_sc = sum(f.size for f in out_spec.fields if f.kind == "scalar")
        out = "+".join(p for p in (f"{n_sc}x0e" if n_sc else "", f"{n_vec}x1o" if n_vec else "") if p)
        self.out = o3.Linear(irreps, out)
        self.n_vec, self.n_sc = n_vec, n_sc
        self.register_buffer("to_e3nn", torch.tensor([1, 2, 0]), persistent=False)
        self.register_buffer("from_e3nn", torch.tensor([2, 0, 1]), persistent=False)

    def forward(self, x):
        V, S = self.encoder(x)
        h = torch.cat([S, V[..., self.to_e3nn].reshape(x.shape[0], -1)], dim=-1)
        for tp, gate in zip(self.tps, self.gates, strict=True):
            h = gate(tp(h, h))
        y = self.out(h)
        sc, vec = y[:, :self.n_sc], y[:, self.n_sc:].reshape(x.shape[0], self.n_vec, 3)[..., self.from_e3nn]
        return torch.cat([vec.reshape(x.shape[0], -1), sc], dim=-1)  # specs used here: vectors first


def _naive_params(S: int, C: int, n_out: int, mul: int, layers: int) -> int:
    """Weights of NaiveE3nnNet (FCTP paths 0e0e->0e, 1o1o->0e, 0e1o->1o, 1o0e->1o; o3.Linear out)."""
    n = 0
    for _ in range(layers):
        n += (S * S + C * C) * 2 * mul + 2 * S * C * mul
        S = C = mul
    return n + mul * n_out


def naive_matching(in_spec, out_spec, n_params, layers=2):
    enc = SpecEncoder(in_spec)
    mul = min(range(1, 200), key=lambda m: abs(_naive_params(enc.n_scalars, enc.n_vectors, out_spec.dim // 1,
                                                              m, layers) - n_params))
    return NaiveE3nnNet(in_spec, out_spec, mul, layers)


def _time(fn, n: int, clock) -> float:
    t0 = clock()
    for _ in range(n):
        fn()
    return (clock() - t0) / n * 1e3


def measure(nets: dict[str, nn.Module], in_dim: int, rounds: int, quick: bool, clock) -> dict[str, dict]:
    gen = torch.Generator().manual_seed(0)
    x256 = torch.randn(256, in_dim, generator=gen)
    x1 = x256[:1]
    best: dict[str, dict[str, float]] = {k: {} for k in nets}

    def jobs(net):
        def f1():
            with torch.inference_mode():
                net(x1)

        def f256():
            with torch.inference_mode():
                net(x256)

        def fb256():
            net.zero_grad(set_to_none=True)
            net(x256).square().sum().backward()

        return {"fwd_b1_ms": (f1, 200), "fwd_b256_ms": (f256, 40), "fwd_bwd_b256_ms": (fb256, 20)}

    all_jobs = {k: jobs(v) for k, v in nets.items()}
    for jb in all_jobs.values():  # warm up
        for fn, _ in jb.values():
            for _ in range(5):
                fn()
    for _ in range(rounds):
        for name, jb in all_jobs.items():
            for metric, (fn, n) in jb.items():
                n = max(2, n // 4) if quick and not metric.startswith("fwd_b1") else n
                if name.startswith("e3nn") and metric != "fwd_b1_ms":
                    n = max(2, n // 8)
                t = _time(fn, n, clock)
                best[name][metric] = min(best[name].get(metric, float("inf")), t)
    return best


def build(hidden: int, layers: int):
    torch.manual_seed(0)
    nets = {}
    roles = {"actor": (ACTOR_IN, ACTOR_OUT), "critic": (CRITIC_IN, CRITIC_OUT)}
    for role, (spec_in, spec_out) in roles.items():
        eq = EquivariantNet(spec_in, spec_out, hidden=hidden, layers=layers)
        n = count_parameters(eq)
        nets[role] = {
            "equivariant": eq,
            "mlp": mlp_matching(spec_in, spec_out, n, layers=layers),
            "e3nn_tp": naive_matching(spec_in, spec_out, n, layers=layers),
        }
    return nets


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="docs/bench_nets.json")
    ap.add_argument("--hidden", type=int, nargs="+", default=[64, 256])
    ap.add_argument("--layers", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--threads", type=int, nargs="+", default=[1],
                    help="torch thread counts (n > 1 is wall-clock timed: meaningful on an idle machine)")
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (smoke test)")
    args = ap.parse_args(argv)

    results = {"torch": torch.__version__, "machine": platform.processor() or platform.machine(),
               "layers": args.layers, "clock": {"1": "thread CPU time", "n>1": "wall time"},
               "loadavg_start": os.getloadavg()[0], "configs": []}
    header = (f"{'threads':>7} {'hidden':>6} {'role':<6} {'net':<12} {'params':>7} {'fwd b1 ms':>10} "
              f"{'fwd b256':>9} {'f+b b256':>9} {'x MLP fwd1':>10} {'x MLP fwd256':>12} {'x MLP f+b256':>12}")
    print(header)
    print("-" * len(header))
    for threads in args.threads:
        torch.set_num_threads(threads)
        for hidden in args.hidden:
            nets = build(hidden, args.layers)
            for role, group in nets.items():
                spec_in = ACTOR_IN if role == "actor" else CRITIC_IN
                # one thread: this thread's CPU time (robust to other processes on the machine);
                # two threads: wall time (CPU time would add both threads up)
                clock = time.thread_time if threads == 1 else time.perf_counter
                times = measure(group, spec_in.dim, 2 if args.quick else args.rounds, args.quick, clock)
                base = times["mlp"]
                for name, net in group.items():
                    t = times[name]
                    row = {"threads": threads, "hidden": hidden, "role": role, "net": name,
                           "params": count_parameters(net), **{k: round(v, 4) for k, v in t.items()},
                           "ratio_vs_mlp": {k: round(t[k] / base[k], 3) for k in t}}
                    results["configs"].append(row)
                    r = row["ratio_vs_mlp"]
                    print(f"{threads:>7} {hidden:>6} {role:<6} {name:<12} {row['params']:>7} "
                          f"{t['fwd_b1_ms']:>10.3f} {t['fwd_b256_ms']:>9.3f} {t['fwd_bwd_b256_ms']:>9.3f} "
                          f"{r['fwd_b1_ms']:>10.2f} {r['fwd_b256_ms']:>12.2f} {r['fwd_bwd_b256_ms']:>12.2f}")
    goals = [c for c in results["configs"] if c["net"] == "equivariant" and c["threads"] == 1]
    results["goals"] = {
        "fwd_bwd_b256_le_1.5x_mlp": all(c["ratio_vs_mlp"]["fwd_bwd_b256_ms"] <= 1.5 for c in goals),
        "fwd_b1_lt_0.5ms": all(c["fwd_b1_ms"] < 0.5 for c in goals),
    }
    results["loadavg_end"] = os.getloadavg()[0]
    print("goals (threads=1):", results["goals"], f"(load average {results['loadavg_start']:.1f} -> "
          f"{results['loadavg_end']:.1f} on {os.cpu_count()} cores)")
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1))
        print(f"wrote {out}")
    return results


if __name__ == "__main__":
    main()
