"""The N-MNIST-shaped SCNN (the NIR paper's architecture, 2x34x34, imported from NIR with random weights) on an
ECP5: resources and post-route Fmax over nextpnr placement seeds (a finished ``spikeloop synth --seeds`` sweep),
the parts it does not fit (failed sweeps), and the time per sample at 300 time bins: cycles from the fast model
(cycle-exact with the RTL) on random input events at each density, at the seeds' Fmax (min and median).

    spikeloop import scnn0.nir --out imp16 --weight-bits 16 --membrane-bits 32 --lanes 8
    nice spikeloop synth --model imp16 --target ecp5-85k --seeds 1-3 --jobs 1 --out synth/ecp5-85k
    python -m bench.nir_scnn_hw --model imp16 --sweep synth/ecp5-85k/ecp5-85k-seeds.json \\
        [--failed synth/ecp5-25k.log ...] [--densities 0.01 0.2] [--samples 4] [--steps 300] [--publish]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from bench.records import Recorder, add_record_args, spread


def table(record: dict) -> str:
    s, p = record["summary"], record["params"]
    f = s["fmax"]
    out = [f"| part | logic cells | LUTs / FFs | block RAMs (DP16KD) | DSPs | Fmax, MHz (min / median / max over "
           f"{f['n']} seeds) |", "|---|---|---|---|---|---|",
           f"| {p['device']} ({p['target']}) | {s['logic_cells']} of {s['logic_cells_total']} | {s['luts']} / "
           f"{s['ffs']} | {s['bram']} of {s['bram_total']} | {s['dsp']} | {f['min']:.1f} / {f['median']:.1f} / "
           f"{f['max']:.1f} |"]
    for fail in p.get("failed", []):
        out.append(f"| {fail['target']} | does not fit: {fail['message']} | | | | |")
    out += ["", f"| input events per pixel and bin | cycles per sample ({p['steps']} bins) | spikes per neuron per bin, "
            f"layers 1..{len(p['layer_sizes']) - 1} | µs per sample at min / median Fmax |", "|---|---|---|---|"]
    for d in s["latency"]:
        act = ", ".join(f"{a:.3f}" for a in d["activity"])
        out.append(f"| {d['density']} | {d['cycles']['mean']:,.0f} ± {d['cycles']['std']:,.0f} | {act} | "
                   f"{d['us_at_min_fmax']:,.0f} / {d['us_at_median_fmax']:,.0f} |")
    out += ["", f"{p['network']}, lanes {p['lanes']}, {p['weight_bits']}-bit weights / {p['membrane_bits']}-bit "
            f"membranes; cycles: fast model, mean ± std over {p['samples']} samples of random events (seed "
            f"{p['seed']}) at {p['steps']} bins each."]
    return "\n".join(out)


VIEWS = {"table": table}


def main(argv=None) -> int:
    from bench.synth_seeds import network_label
    from hw.cli import model_paths
    from hw.cli import load_model_arguments
    from sim.chip import make_chip
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True, help="the imported SCNN (spikeloop import --out DIR)")
    ap.add_argument("--sweep", required=True, help="<out>/<target>-seeds.json of spikeloop synth --seeds")
    ap.add_argument("--failed", nargs="*", default=[], help="logs of sweeps on smaller parts that did not fit")
    ap.add_argument("--densities", type=float, nargs="+", default=[0.01, 0.2])
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    add_record_args(ap)
    a = ap.parse_args(argv)
    ns = argparse.Namespace(model=a.model, config=None, weights=None)
    cfg, w, off, _ = load_model_arguments(ns)
    sweep = json.loads(Path(a.sweep).read_text())
    ok = [r for r in sweep["rows"] if r["status"] == "ok"]
    if not ok:
        raise SystemExit(f"{a.sweep}: no seed built")
    failed = []
    for log in a.failed:
        for line in Path(log).read_text().splitlines():
            if "does not fit" in line:
                msg = line.split("does not fit on ", 1)[1]
                failed.append({"target": msg.split(":")[0], "message": msg.split(": ", 1)[1].split(";")[0]})
                break
    params = {"target": sweep["target"], "device": sweep["device"], "network": network_label(cfg),
              "layer_sizes": list(cfg.layer_sizes), "lanes": cfg.lanes, "weight_bits": cfg.weight_bits,
              "membrane_bits": cfg.membrane_bits, "samples": a.samples, "steps": a.steps, "seed": a.seed,
              "densities": a.densities, "model": str(model_paths(a.model)[0]), "sweep": a.sweep, "failed": failed}
    fmax = spread(r["fmax_mhz"] for r in ok)
    with Recorder("nir_scnn_hw", args=a, seeds=[r["seed"] for r in ok], params=params) as rec:
        for r in sweep["rows"]:
            rec.round(kind="build", **r)
        rec.summary["fmax"] = fmax
        for k in ("logic_cells", "logic_cells_total", "luts", "ffs", "bram", "bram_total", "dsp"):
            vals = sorted({r[k] for r in ok})
            rec.summary[k] = vals[0] if len(vals) == 1 else f"{vals[0]}..{vals[-1]}"
        chip = make_chip(cfg, "fast")
        chip.load(w, off)
        lat = []
        for d in a.densities:
            x = np.random.default_rng(a.seed).random((a.samples, a.steps, cfg.layer_sizes[0])) < d
            r = chip.run(x)
            cyc = [int(c) for c in np.asarray(r.cycles).reshape(-1)]
            act = [float(np.asarray(r.counters[f"spikes_l{l}"]).sum() / (a.samples * a.steps * cfg.layer_sizes[l + 1]))
                   for l in range(cfg.num_layers)]
            row = {"density": d, "cycles": spread(cyc), "activity": act,
                   "us_at_min_fmax": float(np.mean(cyc)) / fmax["min"],
                   "us_at_median_fmax": float(np.mean(cyc)) / fmax["median"]}
            rec.round(kind="latency", density=d, cycles=cyc, activity=act)
            lat.append(row)
            print(f"density {d}: {row['cycles']['mean']:.0f} cycles, {row['us_at_median_fmax']:.0f} us at median "
                  f"Fmax; activity {[round(v, 4) for v in act]}", flush=True)
        rec.summary["latency"] = lat
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
