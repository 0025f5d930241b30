"""Conv-chip benchmark (issue #9 item 8): schedule efficiency and fast-model speed on an SCNN.

Network (the snnTorch/CIL-SPL MNIST shape): input 1x28x28, conv 16 k3 p1, pool 2, conv 32 k3 p1, pool 2,
fc 10; random integer weights (``sim.sample.random_weights``), Bernoulli input events at 10 % activity,
25 steps. Everything printed is measured in this one run:

* cycles per sample (the fast model's ``cycles`` counter, i.e. the docs/chip.md formula) against the
  ideal ``synops / lanes`` and against a *dense* conv schedule on the same datapath: every step every
  output position x every group x every kernel tap x every input channel (``positions·G·C_in·k²``
  cycles per conv layer, ``fan_in·G`` per fc layer) plus the same decode, end, fill, update and output
  cycles;
* where the cycles go (:func:`cycle_breakdown`): input events, hidden events, decoder fill, end/fill,
  update, output emission, and (negative) the cycles the chip's overlap of an UPDATE with the next
  layer's EVENT phase hides (docs/chip.md, "Overlap"; 0 with ``overlap`` off);
* fast-model samples per CPU-second at batch 1 and 32 (one thread, best of several repetitions; wall time
  also printed).

    python bench/bench_conv.py [--steps 25] [--density 0.1] [--lanes 8 16] [--kernel 3] [--overlap on|off]

``--kernel 5`` (padding 2) gives the LeNet-style 5x5 shape: 25/9 of the synaptic work per event for the
same number of state words, so the per-step UPDATE walk weighs less against the ideal.
"""
from __future__ import annotations

import argparse
import time

import numpy as np

from hw.config import ChipConfig

SCNN = {"input_shape": [1, 28, 28], "layers": [
    {"kind": "conv", "channels": 16, "kernel": 3, "padding": 1}, {"kind": "pool", "size": 2},
    {"kind": "conv", "channels": 32, "kernel": 3, "padding": 1}, {"kind": "pool", "size": 2},
    {"kind": "fc", "size": 10}]}

PARTS = ("input events", "hidden events", "decoder fill", "end + update fill", "update", "output emission",
         "hidden by overlap")


def cycle_breakdown(cfg: ChipConfig, spikes_in: np.ndarray, spikes: list[np.ndarray]) -> dict[str, np.ndarray]:
    """Per-sample cycles split by phase, from the input spikes ``(B, T, N0)`` and every layer's output
    spikes (``ChipResult.spikes``), with the docs/chip.md formula. The parts sum to the ``cycles`` counter
    (checked by the caller); "hidden by overlap" is negative: the cycles ``cfg.overlap`` saves
    (:func:`sim.model.overlap_hidden`), as the EVENT phases of the next layers are counted in full. Also
    ``update_l{l}`` / ``events_l{l}`` per layer and ``dense events``: the EVENT-phase cycles of a dense
    schedule (every position x group x weight row, every step)."""
    from sim.model import overlap_hidden
    B, T, _ = spikes_in.shape
    out = {k: np.zeros(B, np.int64) for k in PARTS + ("dense events",)}
    inp = spikes_in
    for l in range(cfg.num_layers):
        G = cfg.groups(l)
        if cfg.layer_kind(l) == "conv" or cfg.pool_area(l) > 1:
            V = np.asarray(cfg.receptive_counts(l), np.int64)          # per raw input address
            weighted = inp.sum(axis=1, dtype=np.int64) @ V
        else:
            weighted = inp.sum(axis=(1, 2), dtype=np.int64)
        e = inp.sum(axis=(1, 2), dtype=np.int64)
        ev = weighted * G + e * cfg.event_overhead(l)
        out["input events" if l == 0 else "hidden events"] += ev
        out[f"events_l{l}"] = ev
        out["decoder fill"] += T * cfg.decode_latency(l)
        out["end + update fill"] += T * (1 + cfg.update_latency)
        s = spikes[l]                                                   # (B, T, N_l), HWC
        pos, co = cfg.positions(l), cfg.out_channels(l)
        words = s.reshape(B, T, pos, co)
        pad = G * cfg.lanes - co
        if pad:
            words = np.concatenate([words, np.zeros((B, T, pos, pad), bool)], axis=3)
        pc = words.reshape(B, T, pos, G, cfg.lanes).sum(axis=4, dtype=np.int64)
        upd = np.maximum(1, pc).sum(axis=(1, 2, 3))
        out["update"] += upd
        out[f"update_l{l}"] = upd
        out["dense events"] += T * cfg.positions(l) * G * cfg.weight_rows(l)
        if cfg.overlapped(l):
            out["hidden by overlap"] -= overlap_hidden(cfg, l, s)
        inp = s
    out["output emission"] += inp.sum(axis=(1, 2), dtype=np.int64) + T
    return out


def calibrate(cfg: ChipConfig, w, x, rate: float) -> ChipConfig:
    """``cfg`` with per-layer thresholds chosen (bisection, layer by layer) so that every *hidden* layer
    fires at about ``rate`` spikes per neuron per step on ``x`` (the output layer keeps its threshold)."""
    from sim.model import FastModel
    thr = list(cfg.threshold)
    for l in range(cfg.num_layers - 1):
        lo, hi = 1, cfg.membrane_max
        for _ in range(16):
            mid = (lo + hi) // 2
            thr[l] = mid
            c = cfg.replace(threshold=tuple(thr))
            r = FastModel(c, w).run(x, record_state=False)
            got = r.counters[f"spikes_l{l}"].mean() / (x.shape[1] * cfg.layer_sizes[l + 1])
            if got > rate:
                lo = mid + 1
            else:
                hi = mid
            if lo >= hi:
                break
        thr[l] = hi
    return cfg.replace(threshold=tuple(thr))


def timed(model, x, repeat):
    """Best wall and best CPU seconds (this process) of ``repeat`` runs; CPU time is what a loaded machine
    does not inflate (one thread)."""
    wall = cpu = float("inf")
    for _ in range(repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        r = model.run(x)
        wall, cpu = min(wall, time.perf_counter() - t0), min(cpu, time.process_time() - c0)
    return r, wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--density", type=float, default=0.1)
    ap.add_argument("--lanes", type=int, nargs="+", default=[8, 16])
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--kernel", type=int, choices=(3, 5, 7), default=3, help="kernel of both conv layers (padding k//2)")
    ap.add_argument("--overlap", choices=("on", "off"), help="the chip's overlap (default: ChipConfig's)")
    ap.add_argument("--hidden-rates", type=float, nargs="+", default=[0.02, 0.05, 0.1],
                    help="hidden firing rates to calibrate thresholds to (besides the uncalibrated random net)")
    a = ap.parse_args()
    from threadpoolctl import threadpool_limits
    from sim.model import FastModel
    from sim.event_bound import bound_of
    from sim.sample import random_spikes, random_weights
    threadpool_limits(1)
    rows, speed, parts = [], [], []
    for lanes in a.lanes:
        layers = [dict(L, kernel=a.kernel, padding=a.kernel // 2) if L["kind"] == "conv" else L for L in SCNN["layers"]]
        base = ChipConfig.from_dict({**SCNN, "layers": layers, "lanes": lanes, "threshold": 64, "beta": 0.9})
        if a.overlap:
            base = base.replace(overlap=a.overlap == "on")
        w = random_weights(base, seed=0, input_density=a.density)
        x = random_spikes(base, a.samples, a.steps, a.density, seed=1)
        for target in [None] + a.hidden_rates:
            cfg = base if target is None else calibrate(base, w, x[:16], target)
            m = FastModel(cfg, w)
            r = m.run(x)
            b = cycle_breakdown(cfg, x, r.spikes)
            total = sum(b[k] for k in PARTS)
            assert (total == r.cycles).all(), "breakdown does not sum to the cycles counter"
            cyc = r.cycles.mean()
            ideal = r.counters["synops"].mean() / lanes
            # the dense schedule walks every weight row whatever the spikes: nothing to overlap
            dense = (r.cycles - b["input events"] - b["hidden events"] - b["hidden by overlap"]
                     + b["dense events"]).mean()
            rates = [r.counters[f"spikes_l{l}"].mean() / (a.steps * cfg.layer_sizes[l + 1]) for l in range(cfg.num_layers)]
            bound = bound_of(cfg, x, r).mean()              # docs/chip.md, "Event bound"
            rows.append((lanes, cfg, cyc, ideal, dense, rates, target, bound))
            parts.append((lanes, cfg, {k: v.mean() for k, v in b.items()}, cyc, target))
            if target is None:
                for batch in (1, 32):
                    xb = x[:batch]
                    m.run(xb)
                    _, t, c = timed(m, xb, 20 if batch == 1 else 5)
                    speed.append((lanes, batch, t, c))
    cfg0 = rows[0][1]
    print(f"network: input {cfg0.input_shape}, layers "
          + ", ".join(f"{L.kind} {L.channels or L.size}" + (f" k{L.kernel} p{L.padding}" if L.kind == 'conv' else '')
                      for L in cfg0.layers)
          + f"; {a.steps} steps, input activity {a.density}, {a.samples} samples, random weights (seed 0), "
          f"overlap {'on' if cfg0.overlap else 'off'}")
    print(f"state words per step: " + ", ".join(f"l{l} {cfg0.state_words(l)}" for l in range(cfg0.num_layers))
          + f" (lanes {rows[0][0]})")
    print()
    print("| lanes | thresholds | firing rate l0 / l1 / l2 | cycles/sample | ideal (synops/lanes) | ideal / cycles "
          "| dense cycles | dense / ours | cycles / event bound |")
    print("|---|---|---|---|---|---|---|---|---|")
    for lanes, cfg, cyc, ideal, dense, rates, target, bound in rows:
        name = "random (64)" if target is None else f"hidden ≈ {target}: {'/'.join(map(str, cfg.threshold))}"
        print(f"| {lanes} | {name} | {' / '.join(f'{q:.3f}' for q in rates)} | {cyc:.0f} | {ideal:.0f} | "
              f"{ideal / cyc:.3f} | {dense:.0f} | {dense / cyc:.1f}x | {cyc / bound:.3f} |")
    print()
    print("| lanes | hidden rate | " + " | ".join(PARTS) + " |")
    print("|---" * (len(PARTS) + 2) + "|")
    for lanes, cfg, b, cyc, target in parts:
        print(f"| {lanes} | {'random' if target is None else target} | "
              + " | ".join(f"{b[k]:.0f} ({100 * b[k] / cyc:.1f} %)" for k in PARTS) + " |")
    print()
    for lanes, cfg, b, cyc, target in parts:
        print(f"lanes {lanes}, hidden {'random' if target is None else target}: update per layer " + ", ".join(
            f"l{l} {b[f'update_l{l}']:.0f} ({cfg.state_words(l)} words x {a.steps} steps = "
            f"{cfg.state_words(l) * a.steps})" for l in range(cfg.num_layers)))
    print()
    print("| lanes | batch | wall s/run (best) | CPU s/run (best) | samples per CPU-second |")
    print("|---|---|---|---|---|")
    for lanes, batch, t, c in speed:
        print(f"| {lanes} | {batch} | {t:.4f} | {c:.4f} | {batch / c:.0f} |")


if __name__ == "__main__":
    main()
