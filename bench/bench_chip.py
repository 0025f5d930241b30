"""Chip benchmark: simulator speed (fast model vs Verilator vs Icarus vs Amaranth) and schedule efficiency.

Everything printed is measured in this one run on the same network and inputs. Usage:
    python bench/bench_chip.py [--steps 25] [--density 0.1] [--quick] [--cycles-only]
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from hw.config import ChipConfig
from sim.chip import make_chip
from sim.cocotb_sim import simulator_available
from sim.event_bound import bound_of
from sim.sample import random_spikes, random_weights


def dense_cycles(cfg: ChipConfig, r) -> np.ndarray:
    """Cycles of the same datapath if every synapse were visited every step (no event skipping)."""
    steps = r.output.shape[1]
    per_step = sum(cfg.fan_in(l) * cfg.groups(l) + 1 + cfg.update_latency + cfg.groups(l) for l in range(cfg.num_layers)) + 1
    return steps * per_step + r.counters["out_events"]


def timed(chip, x, repeat=1):
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        r = chip.run(x)
        best = min(best, time.perf_counter() - t0)
    return r, best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--density", type=float, default=0.1)
    ap.add_argument("--quick", action="store_true", help="fewer RTL samples")
    ap.add_argument("--cycles-only", action="store_true", help="only the schedule table (fast model, seconds)")
    a = ap.parse_args()
    cfg = ChipConfig(layer_sizes=(256, 256, 128, 16), lanes=8, threshold=64, beta=0.9)
    w = random_weights(cfg, seed=0, input_density=a.density)
    x = random_spikes(cfg, 256, a.steps, a.density, seed=1)
    print(f"network {cfg.layer_sizes}, lanes {cfg.lanes}, {a.steps} steps, input density {a.density}")

    fast = make_chip(cfg, "fast")
    fast.load(w)
    fast.run(x[:8])
    r_fast, t_fast = timed(fast, x, repeat=3)
    rows = [("fast model (numpy)", len(x), t_fast)]
    n_rtl = {"verilator": 4 if a.quick else 16, "icarus": 2 if a.quick else 4, "amaranth": 1 if a.quick else 2}
    for backend in () if a.cycles_only else ("verilator", "icarus", "amaranth"):
        if backend != "amaranth" and simulator_available(backend):
            print(f"{backend}: unavailable ({simulator_available(backend)})")
            continue
        chip = make_chip(cfg, backend)
        chip.load(w)
        if backend != "amaranth":
            chip.run(x[:1])                              # build outside the timing
        n = n_rtl[backend]
        r, t = timed(chip, x[:n])
        same = (r.output == r_fast.output[:n]).all() and (r.cycles == r_fast.cycles[:n]).all()
        rows.append((f"{backend} RTL", n, t))
        print(f"{backend}: outputs and cycles equal to the fast model on {n} samples: {same}")
    print()
    print("| simulator | samples | seconds | samples/s | fast model speed-up |")
    print("|---|---|---|---|---|")
    fast_rate = rows[0][1] / rows[0][2]
    for name, n, t in rows:
        print(f"| {name} | {n} | {t:.3f} | {n / t:.1f} | {fast_rate / (n / t):.0f}x |")

    print()
    print("Schedule (fast model, 64 samples; cycles per sample with the chip's overlap off and on, docs/chip.md):")
    print("| input density | hidden firing | ideal (synops/lanes) | dense cycles | dense / ideal | cycles, overlap off "
          "| utilisation | dense / ours | cycles / event bound | cycles, overlap on | utilisation | dense / ours | "
          "cycles / event bound |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")

    def row(c: ChipConfig, wd, xd) -> tuple[str, str]:
        cells = []
        for overlap in (False, True):
            chip = make_chip(c.replace(overlap=overlap), "fast")
            chip.load(wd)
            r = chip.run(xd)
            cyc, ideal, dense = r.cycles.mean(), r.counters["synops"].mean() / c.lanes, dense_cycles(c, r).mean()
            bound = bound_of(c, xd, r).mean()                # docs/chip.md, "Event bound"
            cells.append(f"{cyc:.0f} | {ideal / cyc:.3f} | {dense / cyc:.2f}x | {cyc / bound:.3f}")
        return r, f"{ideal:.0f} | {dense:.0f} | {dense / ideal:.2f}x | " + " | ".join(cells)

    for d in (0.02, 0.05, 0.1, 0.2, 0.5):
        r, cells = row(cfg, random_weights(cfg, seed=0, input_density=d), random_spikes(cfg, 64, a.steps, d, seed=2))
        hid = sum(r.counters[f"spikes_l{l}"].mean() for l in range(cfg.num_layers - 1)) / \
            (a.steps * sum(cfg.layer_sizes[1:-1]))
        print(f"| {d} | {hid:.3f} | {cells} |")
    # the same weights and 10 % input, thresholds raised so that every layer fires at ~10 % (found by iterating
    # thr *= (rate / 0.1) ** 0.7 from 64 on this seed): activity 10 % everywhere, not only at the input
    cfg10 = ChipConfig(layer_sizes=cfg.layer_sizes, lanes=cfg.lanes, threshold=(138, 142, 172), beta=0.9)
    r, cells = row(cfg10, random_weights(cfg, seed=0, input_density=0.1), random_spikes(cfg, 64, a.steps, 0.1, seed=2))
    rates = "/".join(f"{r.counters[f'spikes_l{l}'].mean() / (a.steps * n):.3f}" for l, n in enumerate(cfg.layer_sizes[1:]))
    print(f"| 0.1, every layer ~0.1 (thr 138/142/172) | {rates} | {cells} |")


if __name__ == "__main__":
    main()
