"""Fast-model speed against snnTorch and a plain float32 numpy LIF loop (issue #11).

Samples per CPU-second, one thread (BLAS and torch limited to 1), best of several repetitions, all
measured in this one run on the same integer weights and inputs:

* batch 1 / 32 / 256 x input density 0.01 / 0.1 / 0.5 on (256, 256, 128, 16), 25 steps;
* width 256 / 1024 / 4096 (network (W, W, W/2, 16)) at batch 32, density 0.01 / 0.1;
* torch threads 1 vs 2 for snnTorch and for the int8 product.

    python bench/bench_model.py [--quick] [--steps 25]
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from hw.config import ChipConfig
from sim.model import FastModel
from sim.sample import random_spikes, random_weights


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


def rate(fn, x, budget: float, max_reps: int = 20) -> float:
    """Samples per CPU-second: best of up to ``max_reps`` runs within about ``budget`` CPU-seconds."""
    fn(x)
    best, spent, reps = float("inf"), 0.0, 0
    while reps < max_reps and (reps < 2 or spent < budget):
        t0 = time.process_time()
        fn(x)
        dt = time.process_time() - t0
        best, spent, reps = min(best, dt), spent + dt, reps + 1
    return x.shape[0] / max(best, 1e-9)


def setup(width: int, density: float):
    cfg = ChipConfig(layer_sizes=(width, width, width // 2, 16), lanes=8, threshold=64, beta=0.9)
    w = random_weights(cfg, seed=0, input_density=density)
    wf = [a.astype(np.float32) for a in w]
    return cfg, w, {"fast model": lambda x, m=FastModel(cfg, w): m.run(x, record_state=False),
                    "snnTorch": snntorch_net(wf, 0.9, 64), "numpy float32": plain_loop(wf, 0.9, 64)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--quick", action="store_true", help="fewer repetitions, no width 4096")
    a = ap.parse_args()
    threadpool_limits(1)
    torch.set_num_threads(1)
    budget = 0.3 if a.quick else 1.0
    print(f"one thread, {a.steps} steps, samples per CPU-second (best of repetitions)\n")
    print("| network | batch | input density | fast model | snnTorch | numpy float32 | fast / snnTorch | fast / numpy |")
    print("|---|---|---|---|---|---|---|---|")
    rows = [(256, b, d) for d in (0.01, 0.1, 0.5) for b in (1, 32, 256)]
    rows += [(wd, 32, d) for wd in ((1024,) if a.quick else (1024, 4096)) for d in (0.01, 0.1)]
    for width, batch, density in rows:
        cfg, w, impls = setup(width, density)
        x = random_spikes(cfg, batch, a.steps, density, seed=1)
        exact = FastModel(cfg, w, path="float", dtype="float64").run(x, record_state=False)
        fast = impls["fast model"](x)
        assert all((p == q).all() for p, q in zip(fast.spikes, exact.spikes)), "fast model paths disagree"
        bud = budget * (3 if width >= 4096 else 1)
        r = {k: rate(f, x, bud, max_reps=3 if width >= 4096 else 20) for k, f in impls.items()}
        f, s, n = r["fast model"], r["snnTorch"], r["numpy float32"]
        print(f"| {cfg.layer_sizes} | {batch} | {density} | {f:,.0f} | {s:,.0f} | {n:,.0f} | {f / s:.1f}x | {f / n:.1f}x |")

    print("\nproduct path of the fast model (auto) per layer, width 1024, batch 32:")
    for density in (0.005, 0.01, 0.1):
        cfg, w, _ = setup(1024, density)
        x = random_spikes(cfg, 32, a.steps, density, seed=1)
        m = FastModel(cfg, w)
        per = {p: rate(lambda x, m=FastModel(cfg, w, path=p): m.run(x, record_state=False), x, budget)
               for p in ("sparse", "int8", "float")}
        print(f"  density {density}: layer-0 path {m.product_path(0, 32 * a.steps, int(x.sum()))}; "
              + ", ".join(f"all-{p} {v:,.0f}/s" for p, v in per.items()))

    print("\ntorch threads (1 vs 2), width 256, batch 256, density 0.1, samples per wall-second:")
    cfg, w, impls = setup(256, 0.1)
    x = random_spikes(cfg, 256, a.steps, 0.1, seed=1)
    xi = torch.from_numpy(np.ascontiguousarray(x.transpose(1, 0, 2)).reshape(-1, 256).view(np.int8))
    w8 = torch.from_numpy(w[0].astype(np.int8))
    for threads in (1, 2):
        torch.set_num_threads(threads)
        t0 = time.perf_counter()
        impls["snnTorch"](x)
        t_snn = time.perf_counter() - t0
        t0 = time.perf_counter()
        for _ in range(5):
            torch._int_mm(xi, w8)
        t_mm = (time.perf_counter() - t0) / 5
        print(f"  {threads} thread(s): snnTorch {256 / t_snn:,.0f}/s; int8 layer-0 product {t_mm * 1e3:.2f} ms")
    torch.set_num_threads(1)


if __name__ == "__main__":
    main()
