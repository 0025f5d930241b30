"""Calibrate the fast, counter-based energy model (sim.power) against the RTL activity estimate
(sim.activity) and report how well it holds on held-out inputs and networks.

    python -m bench.power_calibration [--publish]   # ~5-10 min (Amaranth simulation of every cycle)
    python -m bench.power_calibration --write       # also store the fit in sim/power_fit.json

Writes the record ``power_calibration`` (bench/records.py: runs/results/, or docs/results/ with ``--publish``,
which docs/power.md renders from), holding every sample's relative error. ``--write`` is the re-fit after an
RTL change: it stores the fitted energies in ``sim/power_fit.json`` (read by ``sim.power.PROFILES`` and
``sim.activity.structural_profile``); without it the record says whether this run's fit equals the stored one.

Fit: per part, non-negative least squares of the per-counter energies on samples of networks (weight seeds)
0-2 at input densities 0.05, 0.1, 0.2, 0.3, 0.5 on the fit structure (30,16,2, 4 lanes, w8/m16).
Held out: weight seeds 3-4 at densities 0.15 and 0.4 (seen neither), same structure; then other structures
(2 and 8 lanes, w4). Two counter models: the plain profile (one set of per-counter energies, fitted on the
fit structure) and the structural one (``sim.activity.structural_profile``: the per-cycle and RAM-write energy
from the elaborated design of each structure, plus four fitted per-unit energies) — the DSE's ``--power fast``.
"""
from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

if __package__ in (None, ""):                   # run as a file (python bench/x.py): the repository on the path
    _sys.path.insert(0, str(_Path(__file__).resolve().parents[1]))

import argparse
import json
import sys
import time

import numpy as np

from bench.records import Recorder, add_record_args
from hw.config import ChipConfig
from sim.power import POWER_FIT
from sim.activity import (PARTS, Activity, calibrate_profile, counter_features, energy_per_sample, fit_structural,
                          measure_activity, structural_profile)
from sim.sample import random_spikes, random_weights

STEPS = 16
FIT = ChipConfig(layer_sizes=(30, 16, 2), lanes=4, weight_bits=8, membrane_bits=16)
OTHER = [FIT.replace(lanes=2), FIT.replace(lanes=8), FIT.replace(weight_bits=4)]
PROFILE_NAMES = {"ice40-up5k": "ice40up5k", "ecp5-25k": "ecp5-25k"}     # part -> its sim.power.PROFILES entry
_PROFILE_FIELDS = ("synop_pj", "weight_read_pj", "state_read_pj", "state_write_pj", "neuron_update_pj", "event_pj",
                   "cycle_pj")


def activity(cfg: ChipConfig, seeds, densities, per_density=2) -> Activity:
    acts = []
    for s in seeds:
        w = random_weights(cfg, s, 0.2)
        x = np.concatenate([random_spikes(cfg, per_density, STEPS, d, 1000 * s + int(d * 100)) for d in densities])
        acts.append(measure_activity(cfg, w, x))
    cat = lambda f: np.concatenate([getattr(a, f) for a in acts])
    bram = {k: {"reads": np.concatenate([a.bram[k]["reads"] for a in acts]),
                "writes": np.concatenate([a.bram[k]["writes"] for a in acts]), "width": acts[0].bram[k]["width"]}
            for k in acts[0].bram}
    counters = {k: np.concatenate([a.counters[k] for a in acts]) for k in acts[0].counters}
    return Activity(cycles=cat("cycles"), toggles=cat("toggles"), dsp=cat("dsp"), bram=bram,
                    register_bits=acts[0].register_bits, counters=counters)


def errors(prof, act: Activity, part) -> dict:
    """Relative error of the counter model (``prof``) against the RTL estimate, per sample."""
    target = sum(energy_per_sample(act, part).values())
    coef = np.array([prof.synop_pj, prof.weight_read_pj, prof.state_read_pj, prof.state_write_pj,
                     prof.neuron_update_pj, prof.event_pj, prof.cycle_pj])
    rel = (counter_features(act.counters) @ coef - target) / target
    return {"n": int(len(rel)), "max_abs_rel": float(np.max(np.abs(rel))), "mean_abs_rel": float(np.mean(np.abs(rel))),
            "mean_rel": float(np.mean(rel)), "rtl_dynamic_nj_mean": float(np.mean(target)) / 1000,
            "rel": [float(v) for v in rel]}


def markdown_rows(res: dict) -> str:
    """The rows of docs/power.md's calibration table."""
    label = {"ice40-up5k": "iCE40 UP5K", "ecp5-25k": "ECP5-25F"}
    short = {"lanes2_w8": "2 lanes", "lanes8_w8": "8 lanes", "lanes4_w4": "w4"}
    rows = []
    for model, first in (("plain", "one profile per part (`PROFILES[\"ice40up5k\"]`, `[\"ecp5-25k\"]`)"),
                         ("structural", "structural (`structural_profile(cfg, part)`)")):
        for i, (name, e) in enumerate(res["parts"].items()):
            held = e["held_out"] if model == "plain" else e["structural"]["held_out"]
            others = e["other_structures"] if model == "plain" else {k: v for k, v in e["structural"].items()
                                                                     if k != "held_out"}
            o = ", ".join(f"{short.get(k, k)} {v['mean_rel'] * 100:+.1f} %" if model == "plain"
                          else f"{short.get(k, k)} {v['max_abs_rel'] * 100:.2f} %" for k, v in others.items())
            rows.append(f"| {first if i == 0 else ''} | {label[name]} | **{held['max_abs_rel'] * 100:.2f} %** "
                        f"(mean {held['mean_abs_rel'] * 100:.2f} %) | {o} |")
    return "\n".join(rows)


def fit_file(res: dict) -> dict:
    """What ``--write`` stores in sim/power_fit.json."""
    return {"fitted_on": f"{','.join(map(str, FIT.layer_sizes))} / {FIT.lanes} lanes / w{FIT.weight_bits} / "
                         f"m{FIT.membrane_bits}, {STEPS} steps, weight seeds 0-2 x densities 0.05-0.5",
            "command": "python -m bench.power_calibration --write",
            "profiles": {PROFILE_NAMES[n]: {f: round(e["profile"][f], 6) for f in _PROFILE_FIELDS}
                         for n, e in res["parts"].items()},
            "structural": {n: {k: round(v, 6) for k, v in e["structural_units_pj"].items()}
                           for n, e in res["parts"].items()}}


def measure() -> dict:
    t0 = time.perf_counter()
    fit = activity(FIT, (0, 1, 2), (0.05, 0.1, 0.2, 0.3, 0.5))
    held = activity(FIT, (3, 4), (0.15, 0.4))
    others = {f"lanes{c.lanes}_w{c.weight_bits}": activity(c, (3,), (0.15, 0.4)) for c in OTHER}
    res = {"fit_structure": FIT.to_dict(), "steps": STEPS, "parts": {}}
    for name, part in PARTS.items():
        prof, fit_err = calibrate_profile(fit, part, name=name)
        entry = {"profile": prof.__dict__ | {}, "fit_max_abs_rel": fit_err, "held_out": errors(prof, held, part),
                 "other_structures": {k: errors(prof, a, part) for k, a in others.items()},
                 "breakdown_nj": {k: float(np.mean(v)) / 1000 for k, v in energy_per_sample(held, part).items()}}
        units = fit_structural(FIT, fit, part)
        entry["structural_units_pj"] = units
        entry["structural"] = {"held_out": errors(structural_profile(FIT, name, units), held, part)} | {
            k: errors(structural_profile(c, name, units), others[k], part)
            for k, c in zip(others, OTHER)}
        res["parts"][name] = entry
        h = entry["held_out"]
        print(f"{name}: fit max error {fit_err:.2%}; held-out inputs ({h['n']} samples) max |error| "
              f"{h['max_abs_rel']:.2%}, mean {h['mean_abs_rel']:.2%}; RTL dynamic {h['rtl_dynamic_nj_mean']:.1f} nJ "
              f"per sample; breakdown {({k: round(v, 1) for k, v in entry['breakdown_nj'].items()})}")
        for k, e in entry["other_structures"].items():
            print(f"  other structure {k}: max |error| {e['max_abs_rel']:.2%}, mean {e['mean_rel']:+.2%}")
        print(f"  structural model (elaborated per-cycle part + fitted units {units}):")
        for k, e in entry["structural"].items():
            print(f"    {k}: max |error| {e['max_abs_rel']:.2%}, mean {e['mean_rel']:+.2%}")
        print("  profile: " + ", ".join(f"{k}={v:.4g}" for k, v in prof.__dict__.items()
                                        if isinstance(v, float)))
    res["seconds"] = time.perf_counter() - t0
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", action="store_true", help=f"store the fit in sim/{POWER_FIT.name}")
    add_record_args(ap)
    a = ap.parse_args(argv)
    params = {"fit_structure": "30,16,2 / 4 lanes / w8 / m16", "steps": STEPS,
              "fit": "weight seeds 0-2 x densities 0.05,0.1,0.2,0.3,0.5, 2 samples each",
              "held_out": "weight seeds 3-4 x densities 0.15,0.4; other structures: weight seed 3 x 0.15,0.4",
              "other_structures": [f"lanes{c.lanes}_w{c.weight_bits}" for c in OTHER]}
    with Recorder("power_calibration", args=a, seeds=[0, 1, 2, 3, 4], params=params, script=__file__) as rec:
        res = measure()
        stored = json.loads(POWER_FIT.read_text()) if POWER_FIT.exists() else None
        new = fit_file(res)
        diff = max((abs(new[k][n][f] - stored[k][n][f]) / max(abs(stored[k][n][f]), 1e-9)
                    for k in ("profiles", "structural") for n in new[k] for f in new[k][n]
                    if new[k][n][f] or stored[k][n][f]), default=0.0) if stored else float("inf")
        same = diff <= 0.01                     # this run's fit within 1 % of the stored (in-use) one
        if a.write:
            POWER_FIT.write_text(json.dumps(new, indent=1) + "\n")
            print(f"wrote {POWER_FIT}")
        rec.summary = res | {"stored_fit_matches": bool(same or a.write), "stored_fit_max_rel_diff": diff,
                             "wrote_fit": a.write}
        for part, e in res["parts"].items():             # every sample's error, as rounds
            for model, sets in (("plain", {"held_out": e["held_out"]} | e["other_structures"]),
                                ("structural", e["structural"])):
                for set_name, er in sets.items():
                    for i, v in enumerate(er["rel"]):
                        rec.round(part=part, model=model, set=set_name, sample=i, rel_error=v)
    print(markdown_rows(res))
    return 0


# ----------------------------------------------------------------------------------------------- views

def view_table(rec: dict) -> str:
    """docs/power.md's calibration table."""
    head = ["| counter model | part | held-out inputs, max \\|error\\| | other structures (per-counter: mean error; "
            "structural: max \\|error\\|) |", "|---|---|---|---|"]
    return "\n".join(head) + "\n" + markdown_rows(rec["summary"])


def view_pct(rec: dict, path: str, fmt: str = ".2f") -> str:
    """A fraction at ``path`` (dotted, under ``summary``) as a percentage, e.g. ``pct
    parts.ecp5-25k.held_out.max_abs_rel .1f``."""
    from bench.render import lookup
    return format(lookup(rec["summary"], path) * 100, fmt)


def view_breakdown(rec: dict) -> str:
    """Where the energy goes on the held-out inputs (RTL estimate, per sample)."""
    out = []
    for name, label in (("ice40-up5k", "iCE40"), ("ecp5-25k", "ECP5")):
        b = rec["summary"]["parts"][name]["breakdown_nj"]
        tot = sum(b.values())
        parts = sorted(b.items(), key=lambda kv: -kv[1])
        out.append(f"{label} {tot:.1f} nJ = " + " + ".join(
            f"{k.removesuffix('_nj')} {v:.1f} ({v / tot:.0%})" for k, v in parts))
    return "; ".join(out)


VIEWS = {"table": view_table, "pct": view_pct, "breakdown": view_breakdown}


if __name__ == "__main__":
    sys.exit(main())
