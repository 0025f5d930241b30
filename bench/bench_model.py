"""Fast-model speed against snnTorch, a plain float32 numpy LIF loop and a plain torch conv loop, as a record
(issues #11, #20, #23).

    python -m bench.bench_model [--quick] [--rounds 20] [--seed 1] [--sections ...] [--publish]

Everything is measured in this one run, on one thread (BLAS, OpenMP, torch and numba limited to 1; the record
keeps the thread pools as threadpoolctl saw them, the CPU model and whether it has AVX-512 VNNI), on the same
integer weights (``sim.sample.random_weights``, weight seed 0) and the same inputs (``random_spikes``, input
seed ``--input-seed``). Rounds are **interleaved**: round r times A, B, C, then round r+1 times A, B, C again,
so that the load of the shared machine falls on every contestant alike; each timed call follows an untimed
warm-up call on the same input. A round's time is CPU seconds of this process (``time.process_time``; the
wall time is kept too). Ratios are **paired**: in each round, the peer's time over the fast model's; the
record keeps every round, and the docs show the median and the min-max of the paired ratios and each
contestant's best (min) and median time.

Sections (record ``model_speed``, ``summary``):

* ``peers``: network (256, 256, 128, 16), batch 1 / 32 / 256 x input density 0.01 / 0.1 / 0.5, 25 steps,
  and the width sweep (W, W, W/2, 16), W = 1024 / 4096 at batch 32, density 0.01 / 0.1;
* ``conv``: the SCNN of ``bench/bench_conv.py`` (1x28x28, conv 16 k3, pool 2, conv 32 k3, pool 2, fc 10) at
  batch 64 against a plain float32 torch loop (``F.conv2d`` per step);
* ``activity``: the fast model alone, interleaved over input density 0.01 / 0.1 / 0.5 on the same network
  and batch (does cost fall with activity?), with one fixed set of weights (hidden activity follows the
  input's) and with weights scaled to each density (hidden activity about the same);
* ``paths``: width 1024, batch 32: the automatic product choice against the int8, float and sparse products
  forced everywhere (where does the sparse product pay off?);
* ``conditions``: the batch-32 row in child processes with the thread pools pinned (as here), not pinned, and
  with oneDNN limited to AVX2 (no VNNI, as on an older CPU): what moves the fast ÷ numpy ratio, in CPU and in
  wall seconds.
"""
from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

if __package__ in (None, ""):                   # run as a file (python bench/x.py): the repository on the path
    _sys.path.insert(0, str(_Path(__file__).resolve().parents[1]))

import argparse
import os
import statistics
import sys
import time

import numpy as np

from bench.records import Recorder, add_record_args

WEIGHT_SEED = 0
BETA, THRESHOLD = 0.9, 64


def plain_loop(ws, beta, thr):
    """The float32 numpy LIF loop a user would write (not exact: float leak, no saturation)."""
    def run(x):
        B, T, _ = x.shape
        xf = x.astype(np.float32)
        mem = [np.zeros((B, w.shape[1]), np.float32) for w in ws]
        out = np.empty((B, T, ws[-1].shape[1]), np.float32)
        for t in range(T):
            h = xf[:, t]
            for l, w in enumerate(ws):
                mem[l] = beta * mem[l] + h @ w
                h = (mem[l] > thr).astype(np.float32)
                mem[l] -= h * thr
            out[:, t] = h
        return out
    return run


def snntorch_net(ws, beta, thr):
    import snntorch as snn
    import torch
    wt = [torch.from_numpy(w) for w in ws]
    lifs = [snn.Leaky(beta=beta, threshold=float(thr), reset_mechanism="subtract") for _ in ws]

    @torch.no_grad()
    def run(x):
        xt = torch.from_numpy(x.astype(np.float32))
        mem = [lif.init_leaky() for lif in lifs]
        out = []
        for t in range(xt.shape[1]):
            h = xt[:, t]
            for l, lif in enumerate(lifs):
                h, mem[l] = lif(h @ wt[l], mem[l])
            out.append(h)
        return torch.stack(out, 1)
    return run


def plain_torch_conv(cfg, ws, beta, thr):
    """The float32 torch loop a user would write for a conv net (``F.conv2d`` per step, sum pooling as
    ``avg_pool2d`` times the window, float leak, subtract reset; not exact), on the chip's weights: conv
    ``(C_in, kh, kw, C_out)`` -> ``(C_out, C_in, kh, kw)``, fc rows in the chip's HWC address order."""
    import torch
    import torch.nn.functional as F
    layers = []
    for l, w in enumerate(ws):
        conv = cfg.layer_kind(l) == "conv"
        wt = torch.from_numpy(np.ascontiguousarray(w.transpose(3, 0, 1, 2) if conv else w).astype(np.float32))
        layers.append((conv, wt, cfg.pool_window(l), cfg.stride(l), cfg.padding(l), cfg.raw_in_shape(l)))

    @torch.no_grad()
    def run(x):
        B, T, _ = x.shape
        C, H, W = cfg.raw_in_shape(0)
        xt = torch.from_numpy(x.reshape(B, T, H, W, C).astype(np.float32)).permute(0, 1, 4, 2, 3)
        mem = [None] * len(layers)
        out = []
        for t in range(T):
            h = xt[:, t]
            for l, (conv, wt, pool, stride, pad, (c, hh, ww)) in enumerate(layers):
                if h.dim() == 2 and (conv or pool != (1, 1)):
                    h = h.reshape(B, hh, ww, c).permute(0, 3, 1, 2)
                if pool != (1, 1):
                    h = F.avg_pool2d(h, pool) * (pool[0] * pool[1])
                if conv:
                    cur = F.conv2d(h, wt, stride=stride, padding=pad)
                else:
                    if h.dim() == 4:
                        h = h.permute(0, 2, 3, 1).reshape(B, -1)
                    cur = h @ wt
                mem[l] = cur if mem[l] is None else beta * mem[l] + cur
                h = (mem[l] > thr).float()
                mem[l] -= h * thr
            out.append(h)
        return torch.stack(out, 1)
    return run


def timed(fn, x) -> tuple[float, float]:
    """One warm-up call, then one timed call: (CPU seconds, wall seconds) of the timed one."""
    fn(x)
    c0, w0 = time.process_time(), time.perf_counter()
    fn(x)
    return time.process_time() - c0, time.perf_counter() - w0


def interleaved(contestants: dict, rounds: int, rec: Recorder, **where) -> dict[str, list[float]]:
    """Time every contestant ``(fn, x)`` once per round, in the same order every round; keep each round in
    ``rec``; return {name: [CPU seconds per round]}."""
    cpu = {k: [] for k in contestants}
    for r in range(rounds):
        for name, (fn, x) in contestants.items():
            c, w = timed(fn, x)
            cpu[name].append(c)
            rec.round(**where, round=r, impl=name, cpu_s=c, wall_s=w)
    return cpu


def times(samples: int, secs: list[float]) -> dict:
    return {"min_s": min(secs), "median_s": statistics.median(secs), "rounds": len(secs),
            "best_rate": samples / max(min(secs), 1e-12), "median_rate": samples / max(statistics.median(secs), 1e-12)}


def paired(num: list[float], den: list[float]) -> dict:
    """Per-round ratio num/den: median, min, max."""
    r = [a / max(b, 1e-12) for a, b in zip(num, den)]
    return {"median": statistics.median(r), "min": min(r), "max": max(r), "rounds": len(r)}


def setup(width: int, density: float):
    from hw.config import ChipConfig
    from sim.model import FastModel
    from sim.sample import random_weights
    cfg = ChipConfig(layer_sizes=(width, width, width // 2, 16), lanes=8, threshold=THRESHOLD, beta=BETA)
    w = random_weights(cfg, seed=WEIGHT_SEED, input_density=density)
    wf = [a.astype(np.float32) for a in w]
    fast = FastModel(cfg, w)
    return cfg, w, {"fast model": lambda x, m=fast: m.run(x, record_state=False),
                    "snnTorch": snntorch_net(wf, BETA, THRESHOLD), "numpy float32": plain_loop(wf, BETA, THRESHOLD)}


def check_exact(cfg, w, x) -> None:
    from sim.model import FastModel
    exact = FastModel(cfg, w, path="float", dtype="float64").run(x, record_state=False)
    fast = FastModel(cfg, w).run(x, record_state=False)
    if not all((p == q).all() for p, q in zip(fast.spikes, exact.spikes)):
        raise SystemExit("bench_model: the fast model's paths disagree (not a speed question: a bug)")


def peers(a, rec: Recorder, rows) -> list[dict]:
    from sim.sample import random_spikes
    out = []
    for width, batch, density in rows:
        cfg, w, impls = setup(width, density)
        x = random_spikes(cfg, batch, a.steps, density, seed=a.input_seed)
        check_exact(cfg, w, x)
        where = {"section": "peers", "width": width, "batch": batch, "density": density}
        load = os.getloadavg()[0]
        cpu = interleaved({k: (f, x) for k, f in impls.items()}, a.rounds, rec, **where)
        row = where | {"net": list(cfg.layer_sizes), "load_1min": load,
                       "times": {k: times(batch, v) for k, v in cpu.items()},
                       "speedup": {k: paired(cpu[k], cpu["fast model"]) for k in impls if k != "fast model"}}
        out.append(row)
        s = row["speedup"]
        print(f"{cfg.layer_sizes} batch {batch} density {density}: fast {row['times']['fast model']['best_rate']:,.0f}/s; "
              f"/snnTorch {s['snnTorch']['median']:.2f}x ({s['snnTorch']['min']:.2f}-{s['snnTorch']['max']:.2f}); "
              f"/numpy {s['numpy float32']['median']:.2f}x ({s['numpy float32']['min']:.2f}-{s['numpy float32']['max']:.2f})",
              flush=True)
    return out


def activity(a, rec: Recorder, width: int, batch: int, densities, fixed: bool = False) -> dict:
    """The fast model alone, rounds interleaved over input density (same network shape and batch). ``fixed``:
    one set of weights (scaled for density 0.1), so that the hidden layers' activity follows the input's;
    else weights scaled to each density (the hidden layers fire at about the same rate whatever the input)."""
    from sim.model import FastModel
    from sim.sample import random_spikes
    contestants, rates = {}, {}
    for d in densities:
        cfg, w, impls = setup(width, 0.1 if fixed else d)
        x = random_spikes(cfg, batch, a.steps, d, seed=a.input_seed)
        contestants[str(d)] = (impls["fast model"], x)
        rates[str(d)] = [float(v.mean()) for v in FastModel(cfg, w).run(x, record_state=False).spikes]
    cpu = interleaved(contestants, a.rounds, rec, section="activity", width=width, batch=batch,
                      weights="fixed" if fixed else "scaled")
    lo = str(densities[0])
    res = {"width": width, "batch": batch, "densities": list(densities),
           "weights": "fixed" if fixed else "scaled", "firing_rates": rates,
           "times": {k: times(batch, v) for k, v in cpu.items()},
           "vs_lowest": {k: paired(v, cpu[lo]) for k, v in cpu.items() if k != lo}}
    print(f"activity, width {width} batch {batch}: " + ", ".join(
        f"density {k}: median {v['median_s'] * 1e3:.2f} ms" for k, v in res["times"].items()), flush=True)
    return res


def paths(a, rec: Recorder, width: int, batch: int, densities) -> list[dict]:
    """Automatic product choice against each product forced on every layer."""
    from sim.model import FastModel
    from sim.sample import random_spikes
    out = []
    for d in densities:
        cfg, w, _ = setup(width, d)
        x = random_spikes(cfg, batch, a.steps, d, seed=a.input_seed)
        auto = FastModel(cfg, w)
        contestants = {"auto": (lambda x, m=auto: m.run(x, record_state=False), x)}
        for p in ("int8", "float", "sparse"):
            contestants[p] = (lambda x, m=FastModel(cfg, w, path=p): m.run(x, record_state=False), x)
        cpu = interleaved(contestants, a.rounds, rec, section="paths", width=width, batch=batch, density=d)
        row = {"width": width, "batch": batch, "density": d,
               "layer0_auto": auto.product_path(0, batch * a.steps, int(x.sum())),
               "times": {k: times(batch, v) for k, v in cpu.items()},
               "int8_over_auto": paired(cpu["int8"], cpu["auto"])}
        out.append(row)
        print(f"paths, width {width} density {d}: layer 0 auto -> {row['layer0_auto']}; int8-everywhere / auto "
              f"{row['int8_over_auto']['median']:.2f}x", flush=True)
    return out


def conv(a, rec: Recorder, batch: int, density: float) -> dict:
    """The fast model against the plain torch conv loop on the SCNN of ``bench/bench_conv.py`` (1x28x28, conv 16
    k3, pool 2, conv 32 k3, pool 2, fc 10), interleaved rounds, paired ratios."""
    from bench.bench_conv import SCNN
    from hw.config import ChipConfig
    from sim.model import FastModel
    from sim.sample import random_spikes, random_weights
    cfg = ChipConfig.from_dict({**SCNN, "lanes": 8, "threshold": THRESHOLD, "beta": BETA})
    w = random_weights(cfg, seed=WEIGHT_SEED, input_density=density)
    x = random_spikes(cfg, batch, a.steps, density, seed=a.input_seed)
    check_exact(cfg, w, x)
    fast = FastModel(cfg, w)
    impls = {"fast model": lambda x, m=fast: m.run(x, record_state=False),
             "torch conv loop": plain_torch_conv(cfg, [v.astype(np.float32) for v in w], BETA, THRESHOLD)}
    where = {"section": "conv", "batch": batch, "density": density}
    cpu = interleaved({k: (f, x) for k, f in impls.items()}, a.rounds, rec, **where)
    rates = [float(v.mean()) for v in fast.run(x, record_state=False).spikes]
    row = where | {"net": "1x28x28: conv 16 k3 p1, pool 2, conv 32 k3 p1, pool 2, fc 10", "firing_rates": rates,
                   "times": {k: times(batch, v) for k, v in cpu.items()},
                   "speedup": {"torch conv loop": paired(cpu["torch conv loop"], cpu["fast model"])}}
    s = row["speedup"]["torch conv loop"]
    print(f"conv batch {batch} density {density}: /torch conv loop {s['median']:.2f}x ({s['min']:.2f}-{s['max']:.2f})",
          flush=True)
    return row


#: the conditions the ``conditions`` section runs the batch-32 row under, each in a fresh process (what must
#: be set before torch or numpy start): name -> (environment, pin thread pools in the process)
CONDITIONS = {
    "pinned (as the bench)": ({}, True),
    "thread pools not pinned": ({}, False),
    "oneDNN without AVX-512 VNNI": ({"ONEDNN_MAX_CPU_ISA": "AVX2"}, True),
}


def _child(name: str, rounds: int, steps: int, seed: int) -> None:
    """One condition (``--child NAME``): the batch-32, density-0.1 row, fast model and numpy loop interleaved;
    prints a JSON line of CPU and wall seconds per round."""
    import json
    env, pin = CONDITIONS[name]
    if pin:
        _pin_threads()
    from sim.sample import random_spikes
    cfg, w, impls = setup(256, 0.1)
    x = random_spikes(cfg, 32, steps, 0.1, seed=seed)
    out = {k: [] for k in ("fast model", "numpy float32")}
    for _ in range(rounds):
        for k in out:
            out[k].append(timed(impls[k], x))
    print(json.dumps(out))


def conditions(a, rec: Recorder) -> list[dict]:
    """The batch-32 row (256,256,128,16, density 0.1) under each of :data:`CONDITIONS`, in child processes run
    one after the other: the paired fast ÷ numpy ratio in CPU seconds and in wall seconds."""
    import json
    import subprocess
    out = []
    for name, (env, pin) in CONDITIONS.items():
        cmd = [sys.executable, "-m", "bench.bench_model", "--child", name, "--rounds", str(a.rounds),
               "--steps", str(a.steps), "--input-seed", str(a.input_seed)]
        e = {k: v for k, v in os.environ.items() if k not in ("ONEDNN_MAX_CPU_ISA",)} | env
        p = subprocess.run(cmd, env=e, capture_output=True, text=True, cwd=str(_Path(__file__).resolve().parents[1]))
        if p.returncode:
            raise SystemExit(f"bench_model: condition {name!r} failed: {p.stderr.strip()[-400:]}")
        got = json.loads(p.stdout.strip().splitlines()[-1])
        for impl, rounds in got.items():
            for r, (c, w) in enumerate(rounds):
                rec.round(section="conditions", condition=name, round=r, impl=impl, cpu_s=c, wall_s=w)
        cpu = {k: [c for c, _ in v] for k, v in got.items()}
        wall = {k: [w for _, w in v] for k, v in got.items()}
        row = {"condition": name, "env": env, "pinned": pin, "batch": 32, "density": 0.1,
               "cpu": paired(cpu["numpy float32"], cpu["fast model"]),
               "wall": paired(wall["numpy float32"], wall["fast model"]),
               "times": {k: times(32, v) for k, v in cpu.items()}}
        out.append(row)
        print(f"condition {name}: fast ÷ numpy {row['cpu']['median']:.2f}x CPU, {row['wall']['median']:.2f}x wall",
              flush=True)
    return out


def _pin_threads() -> None:
    """BLAS, OpenMP, torch and numba: one thread each (threadpoolctl last: numba's threading layer brings
    an OpenMP runtime of its own when it starts, and starting it set torch's OpenMP pool back to 2)."""
    import torch
    from threadpoolctl import threadpool_limits
    torch.set_num_threads(1)
    try:
        import numba
        numba.set_num_threads(1)
    except (ImportError, ValueError):
        pass
    threadpool_limits(1)


def thread_state() -> dict:
    """What the process runs on: the thread pools as threadpoolctl sees them, torch's and numba's threads, the
    CPU model and whether it has AVX-512 VNNI (torch's int8 product is several times faster with it)."""
    import torch
    from threadpoolctl import threadpool_info
    pools = [{k: p.get(k) for k in ("user_api", "internal_api", "num_threads")} for p in threadpool_info()]
    try:
        import numba
        nb = numba.get_num_threads()
    except ImportError:
        nb = None
    cpu, flags = platform_cpu()
    return {"pools": pools, "torch_threads": torch.get_num_threads(), "numba_threads": nb, "cpu_model": cpu,
            "avx512_vnni": "avx512_vnni" in flags, "env": {k: os.environ.get(k) for k in
                                                          ("OMP_NUM_THREADS", "ONEDNN_MAX_CPU_ISA") if k in os.environ}}


def platform_cpu() -> tuple[str, set]:
    try:
        text = _Path("/proc/cpuinfo").read_text()
    except OSError:
        return "unknown", set()
    model = next((ln.split(":", 1)[1].strip() for ln in text.splitlines() if ln.startswith("model name")), "unknown")
    flags = next((set(ln.split(":", 1)[1].split()) for ln in text.splitlines() if ln.startswith("flags")), set())
    return model, flags


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--rounds", type=int, default=20, help="interleaved rounds per comparison (default 20)")
    ap.add_argument("--input-seed", "--seed", type=int, default=1, help="seed of the input spikes (default 1)")
    ap.add_argument("--widths", default="1024,4096", help="widths of the width sweep (default 1024,4096)")
    ap.add_argument("--sections", default="peers,conv,activity,paths,conditions",
                    help="which sections to run (default peers,conv,activity,paths,conditions)")
    ap.add_argument("--child", choices=list(CONDITIONS), help=argparse.SUPPRESS)
    ap.add_argument("--name", default="model_speed",
                    help="the record's name (default model_speed; e.g. model_speed_seed7 for a re-check)")
    ap.add_argument("--quick", action="store_true",
                    help="a smoke run: 3 rounds, 5 steps, batch 1/32 at density 0.1, width 256 only")
    add_record_args(ap)
    a = ap.parse_args(argv)
    if a.steps < 1 or a.rounds < 1:
        print("bench_model: --steps and --rounds must be >= 1", file=sys.stderr)
        return 2
    try:
        widths = [int(v) for v in a.widths.split(",") if v]
    except ValueError:
        print(f"bench_model: --widths {a.widths!r}: expected widths like 1024,4096", file=sys.stderr)
        return 2
    sections = [v for v in a.sections.split(",") if v]
    known = ("peers", "conv", "activity", "paths", "conditions")
    if not sections or set(sections) - set(known):
        print(f"bench_model: --sections {a.sections!r}: choose from {','.join(known)}", file=sys.stderr)
        return 2
    if a.child:
        _child(a.child, a.rounds, a.steps, a.input_seed)
        return 0
    _pin_threads()
    if a.quick:
        a.rounds, a.steps = 3, 5
        rows = [(256, b, 0.1) for b in (1, 32)]
        widths, act_widths, path_dens = [], [256], []
    else:
        rows = [(256, b, d) for d in (0.01, 0.1, 0.5) for b in (1, 32, 256)]
        act_widths, path_dens = [256, 1024], [0.005, 0.01, 0.1]
    rows += [(wd, 32, d) for wd in widths for d in (0.01, 0.1)]
    params = {"threads": 1, "steps": a.steps, "rounds": a.rounds, "weight_seed": WEIGHT_SEED,
              "input_seed": a.input_seed, "beta": BETA, "threshold": THRESHOLD, "lanes": 8,
              "timer": "process_time (CPU seconds of this process); wall time kept per round",
              "order": "interleaved: every contestant once per round, warm-up call before each timed call",
              "quick": a.quick, "threads_state": thread_state()}
    params["sections"] = sections
    with Recorder(a.name, args=a, seeds=[WEIGHT_SEED, a.input_seed], params=params, script=__file__) as rec:
        rec.summary["peers"] = peers(a, rec, rows) if "peers" in sections else []
        rec.summary["conv"] = ([conv(a, rec, b, 0.1) for b in ((8,) if a.quick else (64,))]
                               if "conv" in sections else [])
        rec.summary["activity"] = ([activity(a, rec, wd, 32, (0.01, 0.1, 0.5), fixed) for fixed in (True, False)
                                    for wd in act_widths] if "activity" in sections else [])
        rec.summary["paths"] = paths(a, rec, 1024, 32, path_dens) if "paths" in sections else []
        rec.summary["conditions"] = (conditions(a, rec) if "conditions" in sections and not a.quick else [])
    return 0


# ----------------------------------------------------------------------------------------------- views

def _net(row) -> str:
    return ",".join(map(str, row["net"]))


def _ratio(p: dict) -> str:
    return f"{p['median']:.2f}x ({p['min']:.2f}–{p['max']:.2f})"


def view_conditions(rec: dict) -> str:
    """One line: how the speed tables were measured."""
    p, m = rec["params"], rec["machine"]
    lb, la = m.get("load_before") or [0], m.get("load_after") or [0]
    return (f"one thread, {p['steps']} steps, {p['rounds']} interleaved rounds per row (warm-up call before each "
            f"timed call, CPU seconds), weight seed {p['weight_seed']}, input seed {p['input_seed']}; "
            f"{m['cores']} shared cores, load average {lb[0]:.1f} before / {la[0]:.1f} after; "
            f"commit {str(rec['commit'])[:7]}{' (dirty)' if rec.get('dirty') else ''}, {rec['date'][:10]}")


def view_runs(rec: dict, *others: str) -> str:
    """Run-to-run check: each peers row's paired speed-ups in this record and in the ``others`` (records of
    re-runs, e.g. with other input seeds at another time), side by side."""
    from bench.records import load
    recs = [rec] + [load(n) for n in others]
    key = lambda r: (r["width"], r["batch"], r["density"])
    rows = [{key(r): r for r in x["summary"]["peers"]} for x in recs]
    head = " | ".join(f"{x['name']} (input seed {x['params']['input_seed']}, load "
                      f"{(x['machine'].get('load_before') or [0])[0]:.0f}–{(x['machine'].get('load_after') or [0])[0]:.0f})"
                      for x in recs)
    out = [f"| network | batch | input density | peer | {head} |", "|---|---|---|---|" + "---|" * len(recs)]
    for k, r in rows[0].items():
        if not all(k in x for x in rows[1:]):
            continue
        for peer, label in (("snnTorch", "fast ÷ snnTorch"), ("numpy float32", "fast ÷ numpy")):
            out.append(f"| {_net(r)} | {r['batch']} | {r['density']} | {label} | "
                       + " | ".join(_ratio(x[k]["speedup"][peer]) for x in rows) + " |")
    return "\n".join(out)


def view_runs_within(rec: dict, other: str) -> str:
    """``k of n``: how many of the re-run ``other``'s median paired speed-ups fall inside this record's min–max
    for the same row and peer, and which do not."""
    from bench.records import load
    mine = {(r["width"], r["batch"], r["density"]): r for r in rec["summary"]["peers"]}
    inside, outside = 0, []
    for r in load(other)["summary"]["peers"]:
        k = (r["width"], r["batch"], r["density"])
        if k not in mine:
            continue
        for peer, label in (("snnTorch", "snnTorch"), ("numpy float32", "numpy")):
            m, p = r["speedup"][peer]["median"], mine[k]["speedup"][peer]
            if p["min"] <= m <= p["max"]:
                inside += 1
            else:
                outside.append(f"batch {k[1]} density {k[2]} ÷ {label}: {m:.2f}x against {p['min']:.2f}–{p['max']:.2f}x")
    n = inside + len(outside)
    return f"{inside} of {n}" + (f" (outside: {'; '.join(outside)})" if outside else "")


def view_peers(rec: dict, widths: str = "all") -> str:
    """Samples per CPU-second (best / median round) and paired speed-ups: median (min–max over rounds)."""
    keep = None if widths == "all" else {int(v) for v in widths.split(",")}
    out = ["| network | batch | input density | fast model (best / median) | snnTorch (best / median) "
           "| numpy float32 (best / median) | fast ÷ snnTorch | fast ÷ numpy |",
           "|---|---|---|---|---|---|---|---|"]
    for row in rec["summary"]["peers"]:
        if keep is not None and row["width"] not in keep:
            continue
        t = row["times"]
        cell = lambda k: f"{t[k]['best_rate']:,.0f} / {t[k]['median_rate']:,.0f}"
        out.append(f"| {_net(row)} | {row['batch']} | {row['density']} | {cell('fast model')} | {cell('snnTorch')} | "
                   f"{cell('numpy float32')} | {_ratio(row['speedup']['snnTorch'])} | "
                   f"{_ratio(row['speedup']['numpy float32'])} |")
    return "\n".join(out)


_WEIGHTS = {"fixed": "fixed (scaled for 0.1)", "scaled": "scaled to the density"}


def view_activity(rec: dict) -> str:
    """The fast model's median time per batch over input density, and its paired ratio to the lowest density."""
    out = ["| network | weights | batch | input density | firing rates l0 / l1 / l2 | median ms per batch (best) "
           "| time ÷ time at lowest density |", "|---|---|---|---|---|---|---|"]
    for a in rec["summary"]["activity"]:
        net = f"{a['width']},{a['width']},{a['width'] // 2},16"
        for d in a["densities"]:
            t = a["times"][str(d)]
            rel = a["vs_lowest"].get(str(d))
            fr = a.get("firing_rates", {}).get(str(d))
            out.append(f"| {net} | {_WEIGHTS[a.get('weights', 'scaled')]} | {a['batch']} | {d} | "
                       f"{' / '.join(f'{q:.2f}' for q in fr) if fr else '–'} | "
                       f"{t['median_s'] * 1e3:.2f} ({t['min_s'] * 1e3:.2f}) | {_ratio(rel) if rel else '1'} |")
    return "\n".join(out)


def view_paths(rec: dict) -> str:
    """Automatic product choice against each product forced everywhere (samples per CPU-second, median)."""
    out = ["| network | batch | input density | layer 0 (auto) | auto | int8 everywhere | float everywhere "
           "| sparse everywhere | int8-everywhere time ÷ auto |",
           "|---|---|---|---|---|---|---|---|---|"]
    for r in rec["summary"]["paths"]:
        t = r["times"]
        out.append(f"| {r['width']},{r['width']},{r['width'] // 2},16 | {r['batch']} | {r['density']} | "
                   f"{r['layer0_auto']} | " + " | ".join(f"{t[k]['median_rate']:,.0f}" for k in
                                                       ("auto", "int8", "float", "sparse"))
                   + f" | {_ratio(r['int8_over_auto'])} |")
    return "\n".join(out)


_PEER = {"snntorch": "snnTorch", "numpy": "numpy float32"}


def view_speedup(rec: dict, width: str, batch: str, density: str, peer: str) -> str:
    """One paired speed-up in prose: ``median x (min–max)`` of the fast model over ``peer`` (snntorch | numpy)."""
    for row in rec["summary"]["peers"]:
        if (row["width"], row["batch"], row["density"]) == (int(width), int(batch), float(density)):
            return _ratio(row["speedup"][_PEER[peer]])
    raise KeyError(f"model_speed has no row width {width} batch {batch} density {density}")


def view_path_ratio(rec: dict, density: str) -> str:
    """int8-everywhere time over the automatic choice at width 1024 and ``density``: ``median x (min–max)``."""
    for r in rec["summary"]["paths"]:
        if r["density"] == float(density):
            return _ratio(r["int8_over_auto"])
    raise KeyError(f"model_speed has no product-path row at density {density}")


def view_activity_ratio(rec: dict, width: str, density: str, weights: str = "scaled") -> str:
    """The fast model's time at ``density`` over its time at the lowest density (same width, batch 32, weights
    ``scaled`` to each density or ``fixed``): ``median x (min–max)``."""
    for a in rec["summary"]["activity"]:
        if (a["width"] == int(width) and a.get("weights", "scaled") == weights
                and str(float(density)) in a["vs_lowest"]):
            return _ratio(a["vs_lowest"][str(float(density))])
    raise KeyError(f"model_speed has no activity row width {width} density {density}")


def view_conv(rec: dict) -> str:
    """The conv net: samples per CPU-second (best / median) and the paired speed-up over the torch conv loop."""
    out = ["| network | batch | input density | hidden / output firing rates | fast model (best / median) "
           "| torch conv loop (best / median) | fast ÷ torch conv loop |", "|---|---|---|---|---|---|---|"]
    for r in rec["summary"].get("conv", []):
        t = r["times"]
        cell = lambda k: f"{t[k]['best_rate']:,.0f} / {t[k]['median_rate']:,.0f}"      # noqa: E731
        out.append(f"| {r['net']} | {r['batch']} | {r['density']} | {' / '.join(f'{q:.2f}' for q in r['firing_rates'])} "
                   f"| {cell('fast model')} | {cell('torch conv loop')} | {_ratio(r['speedup']['torch conv loop'])} |")
    return "\n".join(out)


def view_conv_speedup(rec: dict, batch: str) -> str:
    """The conv net's paired speed-up over the torch conv loop at ``batch``: ``median x (min–max)``."""
    for r in rec["summary"].get("conv", []):
        if r["batch"] == int(batch):
            return _ratio(r["speedup"]["torch conv loop"])
    raise KeyError(f"{rec['name']} has no conv row at batch {batch}")


def view_conditions_table(rec: dict) -> str:
    """The batch-32 row under each condition: paired fast ÷ numpy in CPU and in wall seconds."""
    out = ["| condition (batch 32, density 0.1) | fast ÷ numpy, CPU seconds | fast ÷ numpy, wall seconds |",
           "|---|---|---|"]
    for r in rec["summary"].get("conditions", []):
        out.append(f"| {r['condition']} | {_ratio(r['cpu'])} | {_ratio(r['wall'])} |")
    return "\n".join(out)


def view_machine(rec: dict) -> str:
    """The CPU and the thread pools the record ran on, in one line."""
    t = rec["params"].get("threads_state") or {}
    pools = ", ".join(f"{p['internal_api']} {p['num_threads']}" for p in t.get("pools", []))
    return (f"{t.get('cpu_model', 'unknown CPU')} ({'with' if t.get('avx512_vnni') else 'without'} AVX-512 VNNI); "
            f"threads: {pools}, torch {t.get('torch_threads')}, numba {t.get('numba_threads')}")


def view_spread_check(rec: dict, other: str) -> str:
    """Every rendered ratio (peers and conv rows) of the re-run ``other`` against this record's stated spread
    (min–max of the paired per-round ratios): ``k of n`` inside, and which are not."""
    from bench.records import load
    o = load(other)
    pairs = []
    key = lambda r: (r["width"], r["batch"], r["density"])                              # noqa: E731
    mine = {key(r): r for r in rec["summary"]["peers"]}
    for r in o["summary"]["peers"]:
        if key(r) in mine:
            for peer in r["speedup"]:
                pairs.append((f"width {r['width']} batch {r['batch']} density {r['density']} ÷ {peer}",
                              r["speedup"][peer], mine[key(r)]["speedup"][peer]))
    mc = {r["batch"]: r for r in rec["summary"].get("conv", [])}
    for r in o["summary"].get("conv", []):
        if r["batch"] in mc:
            pairs.append((f"conv batch {r['batch']} ÷ torch conv loop", r["speedup"]["torch conv loop"],
                          mc[r["batch"]]["speedup"]["torch conv loop"]))
    outside = [f"{name}: {p['median']:.2f}x against {q['min']:.2f}–{q['max']:.2f}x" for name, p, q in pairs
               if not q["min"] <= p["median"] <= q["max"]]
    return f"{len(pairs) - len(outside)} of {len(pairs)}" + (f" (outside: {'; '.join(outside)})" if outside else "")


# ------------------------------------------------------------------------------- re-check (bench/recheck.py)

#: short ids of the peers and conditions in ratio keys (keys are one word: render specs split on spaces)
_PEER_ID = {"snnTorch": "snntorch", "numpy float32": "numpy"}
_CONDITION_ID = {"pinned (as the bench)": "pinned", "thread pools not pinned": "unpinned",
                 "oneDNN without AVX-512 VNNI": "avx2"}


def ratio_rounds(rec: dict) -> dict[str, dict]:
    """Every speed ratio this record's views render, from its raw rounds: ``{key: {"label", "rounds", "value"}}``
    with the per-round paired ratios (as :func:`paired` forms them) and ``value`` their median (what the docs
    show). Keys (one word each): ``peers/W/B/D/snntorch|numpy`` (peer time ÷ fast model time), ``conv/B/torch``,
    ``paths/W/B/D`` (int8-everywhere ÷ automatic), ``activity/W/B/fixed|scaled/D`` (time at D ÷ time at the
    lowest density), ``conditions/pinned|unpinned|avx2/cpu|wall`` (numpy ÷ fast model)."""
    groups: dict[tuple, dict[int, dict[str, dict]]] = {}
    for r in rec["rounds"]:
        sec = r.get("section")
        if sec in ("peers", "paths"):
            g = (sec, r["width"], r["batch"], r["density"])
        elif sec == "conv":
            g = (sec, r["batch"])
        elif sec == "activity":
            g = (sec, r["width"], r["batch"], r.get("weights", "scaled"))
        elif sec == "conditions":
            g = (sec, r["condition"])
        else:
            continue
        groups.setdefault(g, {}).setdefault(r["round"], {})[r["impl"]] = r

    def per_round(rounds, num, den, clock="cpu_s"):
        return [rd[num][clock] / max(rd[den][clock], 1e-12) for _, rd in sorted(rounds.items())
                if num in rd and den in rd]

    out = {}

    def put(key, label, values):
        if values:
            out[key] = {"label": label, "rounds": values, "value": statistics.median(values)}

    for g, rounds in groups.items():
        sec = g[0]
        if sec == "peers":
            _, w, b, d = g
            for peer, pid in _PEER_ID.items():
                put(f"peers/{w}/{b}/{d}/{pid}", f"width {w}, batch {b}, density {d}: fast ÷ {peer}",
                    per_round(rounds, peer, "fast model"))
        elif sec == "conv":
            put(f"conv/{g[1]}/torch", f"conv net, batch {g[1]}: fast ÷ torch conv loop",
                per_round(rounds, "torch conv loop", "fast model"))
        elif sec == "paths":
            _, w, b, d = g
            put(f"paths/{w}/{b}/{d}", f"width {w}, batch {b}, density {d}: int8 everywhere ÷ automatic",
                per_round(rounds, "int8", "auto"))
        elif sec == "activity":
            _, w, b, weights = g
            dens = sorted({k for rd in rounds.values() for k in rd}, key=float)
            for d in dens[1:]:
                put(f"activity/{w}/{b}/{weights}/{d}", f"width {w}, batch {b}, weights {weights}: time at density "
                    f"{d} ÷ at {dens[0]}", per_round(rounds, d, dens[0]))
        elif sec == "conditions":
            cid = _CONDITION_ID.get(g[1], g[1].replace(" ", "-"))
            for clock in ("cpu", "wall"):
                put(f"conditions/{cid}/{clock}", f"{g[1]}, batch 32, density 0.1: fast ÷ numpy, {clock} seconds",
                    per_round(rounds, "numpy float32", "fast model", f"{clock}_s"))
    return out


#: how ``python -m bench.recheck model_speed`` re-runs this bench with unseen inputs: the input seed is what a
#: run has not seen (the weights are the bench's fixed ones), every section that renders a ratio runs
RECHECK = {
    "bases": ("model_speed",),          # model_speed_before is older code (docs/guides/benchmarks.md): not re-checked
    "seed": lambda rec: rec["params"]["input_seed"],
    "argv": lambda seed, name: ["-m", "bench.bench_model", "--widths", "1024", "--seed", str(seed),
                                "--name", name],
    "ratios": ratio_rounds,
}


VIEWS = {"conv": view_conv, "conv_speedup": view_conv_speedup, "conditions_table": view_conditions_table,
         "machine": view_machine, "spread_check": view_spread_check,
         "runs": view_runs, "runs_within": view_runs_within, "activity_ratio": view_activity_ratio, "conditions": view_conditions, "peers": view_peers, "activity": view_activity, "paths": view_paths,
         "speedup": view_speedup, "path_ratio": view_path_ratio}


if __name__ == "__main__":
    sys.exit(main())
