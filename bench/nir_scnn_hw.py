"""The N-MNIST-shaped SCNN (the NIR paper's architecture, 2x34x34, imported from NIR with random weights) on an
ECP5: resources and post-route Fmax over nextpnr placement seeds (a finished ``spikeloop synth --seeds`` sweep),
the parts it does not fit (failed sweeps), and the time per sample at 300 time bins: cycles from the fast model
(cycle-exact with the RTL) on random input events at each density, at the seeds' Fmax (min and median).

    python -c "import nir; from train.nir import scnn_nmnist_graph; nir.write('scnn0.nir', scnn_nmnist_graph(0))"
    spikeloop import scnn0.nir --out imp16 --weight-bits 16 --membrane-bits 32 --lanes 8
    nice spikeloop synth --model imp16 --target ecp5-85k --seeds 1-5 --jobs 1 --out synth/ecp5-85k
    python -m bench.nir_scnn_hw --model imp16 --sweep synth/ecp5-85k/ecp5-85k-seeds.json \\
        [--failed synth/ecp5-25k.log ...] [--densities 0.01 0.2] [--samples 4] [--steps 300] [--publish]
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from bench.records import Recorder, add_record_args, spread


def utilisation(tim: str) -> dict:
    """nextpnr's "Device utilisation" of a build (its log, top.tim): what the synthesised netlist needs."""
    names = {"TRELLIS_COMB": "logic_cells", "TRELLIS_FF": "ffs", "DP16KD": "bram", "MULT18X18D": "dsp"}
    out = {}
    for line in Path(tim).read_text().splitlines():
        parts = line.replace("Info:", "").split()
        if len(parts) >= 3 and parts[0].rstrip(":") in names and parts[1].endswith("/"):
            k = names[parts[0].rstrip(":")]
            out.setdefault(k, int(parts[1].rstrip("/")))
            out.setdefault(k + "_total", int(parts[2]))
    out["luts"] = out.get("logic_cells")
    return out


def table(record: dict) -> str:
    s, p = record["summary"], record["params"]
    f = s["fmax"]
    fm = (f"{f['min']:.1f} / {f['median']:.1f} / {f['max']:.1f}" if f else
          "not measured: the build had not finished routing (the row is nextpnr's utilisation of the netlist)")
    out = [f"| part | logic cells | LUTs / FFs | block RAMs (DP16KD) | DSPs | Fmax, MHz (min / median / max over "
           f"{f['n'] if f else 0} seeds) |", "|---|---|---|---|---|---|",
           f"| {p['device']} ({p['target']}) | {s['logic_cells']} of {s['logic_cells_total']} | {s['luts']} / "
           f"{s['ffs']} | {s['bram']} of {s['bram_total']} | {s['dsp']} | {fm} |"]
    for fail in p.get("failed", []):
        out.append(f"| {fail['target']} | does not fit: {fail['message']} | | | | |")
    out += ["", f"| input events per pixel and bin | cycles per sample ({p['steps']} bins) | spikes per neuron per bin, "
            f"layers 1..{len(p['layer_sizes']) - 1} | µs per sample at min / median Fmax | µs per sample at the board's "
            f"{p.get('clock_mhz') or 0:g} MHz clock |", "|---|---|---|---|---|"]
    for d in s["latency"]:
        act = ", ".join(f"{a:.3f}" for a in d["activity"])
        us = (f"{d['us_at_min_fmax']:,.0f} / {d['us_at_median_fmax']:,.0f}" if d["us_at_min_fmax"] else
              "cycles / Fmax (MHz)")
        board = f"{d['cycles']['mean'] / p['clock_mhz']:,.0f}" if p.get("clock_mhz") else "-"
        out.append(f"| {d['density']} | {d['cycles']['mean']:,.0f} ± {d['cycles']['std']:,.0f} | {act} | {us} | {board} |")
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
    ap.add_argument("--target", default="ecp5-85k", help="with a .tim --sweep: the target it builds")
    ap.add_argument("--device", default="LFE5U-85F", help="with a .tim --sweep: the part it builds")
    add_record_args(ap)
    a = ap.parse_args(argv)
    ns = argparse.Namespace(model=a.model, config=None, weights=None)
    cfg, w, off, _ = load_model_arguments(ns)
    if a.sweep.endswith(".tim"):        # a build still placing/routing: its post-synthesis utilisation only
        sweep = {"target": a.target, "device": a.device, "rows": [], "utilisation": utilisation(a.sweep)}
    else:
        sweep = json.loads(Path(a.sweep).read_text())
    ok = [r for r in sweep["rows"] if r["status"] == "ok"]
    if not ok and "utilisation" not in sweep:
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
              "densities": a.densities, "model": str(model_paths(a.model)[0]), "sweep": a.sweep, "failed": failed,
              "clock_mhz": sweep.get("clock_mhz")}
    fmax = spread(r["fmax_mhz"] for r in ok) if ok else None
    with Recorder("nir_scnn_hw", args=a, seeds=[r["seed"] for r in ok], params=params) as rec:
        for r in sweep["rows"]:
            rec.round(kind="build", **r)
        rec.summary["fmax"] = fmax
        if ok:
            for k in ("logic_cells", "logic_cells_total", "luts", "ffs", "bram", "bram_total", "dsp"):
                vals = sorted({r[k] for r in ok})
                rec.summary[k] = vals[0] if len(vals) == 1 else f"{vals[0]}..{vals[-1]}"
        else:
            rec.summary.update(sweep["utilisation"])
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
                   "us_at_min_fmax": float(np.mean(cyc)) / fmax["min"] if fmax else None,
                   "us_at_median_fmax": float(np.mean(cyc)) / fmax["median"] if fmax else None}
            rec.round(kind="latency", density=d, cycles=cyc, activity=act)
            lat.append(row)
            print(f"density {d}: {row['cycles']['mean']:.0f} cycles, {row['us_at_median_fmax']} us at median "
                  f"Fmax; activity {[round(v, 4) for v in act]}", flush=True)
        rec.summary["latency"] = lat
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
