"""Calibrate the fast, counter-based energy models (sim.power, sim.activity.structural_profile) against the RTL
activity estimate (sim.activity) and report how well they hold on held-out inputs and structures.

    python -m bench.power_calibration [--publish]   # cached RTL activity: ~1 min; from scratch ~20-30 min
    python -m bench.power_calibration --write       # also store the fit in sim/power_fit.json

Writes the record ``power_calibration`` (bench/records.py: runs/results/, or docs/results/ with ``--publish``,
which docs/power.md renders from), holding every sample's relative error. ``--write`` is the re-fit after an
RTL change: it stores the fitted energies in ``sim/power_fit.json`` (read by ``sim.power.PROFILES`` and
``sim.activity.structural_profile``); without it the record says whether this run's fit equals the stored one.
The RTL activity of every structure is simulated once and cached (``--cache``, default runs/power_activity/),
keyed by the structure, the inputs and a hash of the RTL's sources and of the counting code.

Plain profile (one set of per-counter energies per part): non-negative least squares on samples of networks
(weight seeds) 0-2 at input densities 0.05, 0.1, 0.2, 0.3, 0.5 on the fit structure (30,16,2, 4 lanes,
w8/m16); held out: weight seeds 3-4 at densities 0.15 and 0.4, same structure, then the other structures.
Structural model (``sim.activity.structural_profile``, the DSE's ``--power fast``): clock and block RAM from
the elaborated design, register toggles and DSP activations from part-independent rates
(``sim.activity.STRUCTURAL_TERMS``) fitted on every structure — 30,16,2 at 2/4/8 lanes and w4, 100,64,10 and
64,128,10 at 8 lanes, 784-128-10 / 8 lanes on MNIST-like images (``--mnist-images``) — and validated leave one
structure out (each structure predicted by rates fitted on the others).
"""
from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

if __package__ in (None, ""):                   # run as a file (python bench/x.py): the repository on the path
    _sys.path.insert(0, str(_Path(__file__).resolve().parents[1]))

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

import numpy as np

from bench.records import ROOT, Recorder, add_record_args
from hw.config import ChipConfig
from sim.power import POWER_FIT
from sim.activity import (PARTS, Activity, calibrate_profile, counter_features, energy_per_sample, fit_structural,
                          _fixed_pj, design_facts, follows_events, measure_activity, structural_profile)
from sim.sample import random_spikes, random_weights

STEPS = 16
FIT = ChipConfig(layer_sizes=(30, 16, 2), lanes=4, weight_bits=8, membrane_bits=16)
OTHER = [FIT.replace(lanes=2), FIT.replace(lanes=8), FIT.replace(weight_bits=4)]
#: larger structures whose last layer spans two words (where lanes without the update stages' hold follow the
#: event reads: sim.activity.follows_events)
MID = [ChipConfig(layer_sizes=(100, 64, 10), lanes=8, weight_bits=8, membrane_bits=16),
       ChipConfig(layer_sizes=(64, 128, 10), lanes=8, weight_bits=8, membrane_bits=16)]
PROFILE_NAMES = {"ice40-up5k": "ice40up5k", "ecp5-25k": "ecp5-25k"}     # part -> its sim.power.PROFILES entry
_PROFILE_FIELDS = ("synop_pj", "weight_read_pj", "state_read_pj", "state_write_pj", "neuron_update_pj", "event_pj",
                   "cycle_pj")


#: the sources whose change changes the RTL's activity (a cached measurement of other sources is not reused):
#: the design, the host driver and simulator pins, and the counting code of sim.activity (not its models)
_RTL_SOURCES = ("hw/**/*.py", "sim/driver.py", "sim/amaranth_sim.py")
CACHE = ROOT / "runs" / "power_activity"


def rtl_source_hash() -> str:
    """Hash of the sources the RTL activity depends on (the cache key's RTL part)."""
    import inspect
    import sim.activity as act
    h = hashlib.sha256()
    for pattern in _RTL_SOURCES:
        for f in sorted(ROOT.glob(pattern)):
            h.update(str(f.relative_to(ROOT)).encode())
            h.update(f.read_bytes())
    for obj in (act.Activity, act._Counter, act._design_parts, act.measure_activity):
        h.update(inspect.getsource(obj).encode())
    return h.hexdigest()[:16]


def _to_json(a: Activity) -> dict:
    return {"cycles": a.cycles.tolist(), "toggles": a.toggles.tolist(), "dsp": a.dsp.tolist(),
            "register_bits": a.register_bits,
            "bram": {k: {"reads": v["reads"].tolist(), "writes": v["writes"].tolist(), "width": v["width"]}
                     for k, v in a.bram.items()},
            "counters": {k: np.asarray(v).tolist() for k, v in a.counters.items()}}


def _from_json(d: dict) -> Activity:
    arr = lambda v: np.asarray(v, float)
    return Activity(cycles=arr(d["cycles"]), toggles=arr(d["toggles"]), dsp=arr(d["dsp"]),
                    bram={k: {"reads": arr(v["reads"]), "writes": arr(v["writes"]), "width": v["width"]}
                          for k, v in d["bram"].items()},
                    register_bits=d["register_bits"],
                    counters={k: np.asarray(v, np.int64) for k, v in d["counters"].items()})


def measured(cfg: ChipConfig, inputs: str, make, cache: Path | None) -> Activity:
    """:func:`measure_activity` of ``make() -> (weights, spikes)`` on ``cfg``, through a cache keyed by the
    structure, ``inputs`` (a description that fixes the weights and spikes) and :func:`rtl_source_hash`."""
    key = hashlib.sha256(json.dumps([cfg.to_dict(), inputs, rtl_source_hash()], sort_keys=True).encode())
    path = cache / f"{key.hexdigest()[:20]}.json" if cache else None
    if path and path.exists():
        return _from_json(json.loads(path.read_text())["activity"])
    t0 = time.perf_counter()
    w, x = make()
    a = measure_activity(cfg, w, x)
    if path:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps({"structure": cfg.to_dict(), "inputs": inputs, "rtl_sources": rtl_source_hash(),
                                   "seconds": time.perf_counter() - t0, "activity": _to_json(a)}))
        tmp.replace(path)
    return a


def concat(acts: list[Activity]) -> Activity:
    cat = lambda f: np.concatenate([getattr(a, f) for a in acts])
    bram = {k: {"reads": np.concatenate([a.bram[k]["reads"] for a in acts]),
                "writes": np.concatenate([a.bram[k]["writes"] for a in acts]), "width": acts[0].bram[k]["width"]}
            for k in acts[0].bram}
    counters = {k: np.concatenate([a.counters[k] for a in acts]) for k in acts[0].counters}
    return Activity(cycles=cat("cycles"), toggles=cat("toggles"), dsp=cat("dsp"), bram=bram,
                    register_bits=acts[0].register_bits, counters=counters)


def activity(cfg: ChipConfig, seeds, densities, per_density=2, cache: Path | None = CACHE) -> Activity:
    acts = []
    for s in seeds:
        def make(s=s):
            w = random_weights(cfg, s, 0.2)
            return w, np.concatenate([random_spikes(cfg, per_density, STEPS, d, 1000 * s + int(d * 100))
                                      for d in densities])
        acts.append(measured(cfg, f"random_weights seed {s} (0.2); random_spikes {per_density} x {list(densities)}, "
                                  f"{STEPS} steps, seed 1000*s+100*d", make, cache))
    return concat(acts)


def mnist_activity(images: int, cache: Path | None = CACHE) -> Activity:
    """The RTL activity of ``bench/spiker_compare.py``'s first ``images`` images (784-128-10 / 8 lanes, its
    seeded network; one cache entry per image)."""
    from bench.spiker_compare import CFG as MNIST, DENSITY, IMAGES, mnist_like
    x = mnist_like(IMAGES)
    return concat([measured(MNIST, f"spiker_compare image {i} (mnist_like({IMAGES})), random_weights seed 0 "
                                   f"({DENSITY})", lambda i=i: (random_weights(MNIST, 0, DENSITY), x[i:i + 1]), cache)
                   for i in range(images)])


def energy_image_activity(cache: Path | None = CACHE) -> Activity:
    """The RTL activity of ``bench/energy_per_image.py``'s image (``mnist_like(1)``: rate-coded to density 0.17
    on its own) on spiker_compare's network."""
    from bench.spiker_compare import CFG as MNIST, DENSITY, mnist_like
    return measured(MNIST, f"mnist_like(1) image 0, random_weights seed 0 ({DENSITY})",
                    lambda: (random_weights(MNIST, 0, DENSITY), mnist_like(1)), cache)


def errors(prof, act: Activity, part) -> dict:
    """Relative error of the counter model (``prof``) against the RTL estimate, per sample."""
    target = sum(energy_per_sample(act, part).values())
    coef = np.array([prof.synop_pj, prof.weight_read_pj, prof.state_read_pj, prof.state_write_pj,
                     prof.neuron_update_pj, prof.event_pj, prof.cycle_pj])
    rel = (counter_features(act.counters) @ coef - target) / target
    return {"n": int(len(rel)), "max_abs_rel": float(np.max(np.abs(rel))), "mean_abs_rel": float(np.mean(np.abs(rel))),
            "mean_rel": float(np.mean(rel)), "rtl_dynamic_nj_mean": float(np.mean(target)) / 1000,
            "rel": [float(v) for v in rel]}


def structures(mnist_images: int, cache: Path | None = CACHE) -> dict[str, tuple[ChipConfig, Activity]]:
    """Every structure the structural model is fitted and validated on: name -> (config, activity). The fit
    structure's samples (fit and held-out inputs) count as one structure."""
    from bench.spiker_compare import CFG as MNIST
    out = {name_of(FIT): (FIT, concat([activity(FIT, (0, 1, 2), (0.05, 0.1, 0.2, 0.3, 0.5), cache=cache),
                                              activity(FIT, (3, 4), (0.15, 0.4), cache=cache)]))}
    for c in OTHER:
        out[name_of(c)] = (c, activity(c, (3,), (0.15, 0.4), cache=cache))
    for c in MID:
        out[name_of(c)] = (c, activity(c, (3,), (0.15, 0.4), per_density=1, cache=cache))
    if mnist_images:            # energy_per_image's image and spiker_compare's first images
        out[name_of(MNIST) + "_mnist"] = (MNIST, concat([energy_image_activity(cache)]
                                                        + ([mnist_activity(mnist_images - 1, cache)]
                                                           if mnist_images > 1 else [])))
    return out


def name_of(c: ChipConfig) -> str:
    """A structure's key in the record (no spaces: render arguments): ``30-16-2_l4_w8``."""
    return f"{'-'.join(map(str, c.layer_sizes))}_l{c.lanes}_w{c.weight_bits}"


def label_of(name: str) -> str:
    """``30-16-2_l4_w8`` -> ``30,16,2 / 4 lanes / w8``; a ``_mnist`` suffix -> ``(MNIST-like images)``."""
    sizes, lanes, w, *rest = name.split("_")
    return (f"{sizes.replace('-', ',')} / {lanes[1:]} lanes / {w}" + (" (MNIST-like images)" if rest else ""))


def markdown_rows(res: dict) -> str:
    """The rows of docs/power.md's calibration table: per structure, the structural model's error when that
    structure was left out of the fit (max |error| over its samples; mean error), per part."""
    rows = []
    names = list(res["structures"])
    for n in names:
        s = res["structures"][n]
        cells = []
        for part in ("ice40-up5k", "ecp5-25k"):
            e = res["parts"][part]["structural"]["left_out"][n]
            cells.append(f"{e['max_abs_rel'] * 100:.1f} % (mean {e['mean_rel'] * 100:+.1f} %)")
        rows.append(f"| {label_of(n)} | {s['samples']} | {'yes' if s['follows_events'] else 'no'} | " + " | ".join(cells) + " |")
    return "\n".join(rows)


def fit_file(res: dict) -> dict:
    """What ``--write`` stores in sim/power_fit.json."""
    return {"fitted_on": f"plain profiles: {','.join(map(str, FIT.layer_sizes))} / {FIT.lanes} lanes / "
                         f"w{FIT.weight_bits} / m{FIT.membrane_bits}, {STEPS} steps, weight seeds 0-2 x densities "
                         f"0.05-0.5; structural rates: {'; '.join(map(label_of, res['structures']))}",
            "command": "python -m bench.power_calibration --write",
            "profiles": {PROFILE_NAMES[n]: {f: round(e["profile"][f], 6) for f in _PROFILE_FIELDS}
                         for n, e in res["parts"].items()},
            "structural": {k: {t: round(v, 6) for t, v in u.items()} for k, u in res["structural_units"].items()}}


def measure(mnist_images: int = 1, cache: Path | None = CACHE) -> dict:
    t0 = time.perf_counter()
    fit = activity(FIT, (0, 1, 2), (0.05, 0.1, 0.2, 0.3, 0.5), cache=cache)
    held = activity(FIT, (3, 4), (0.15, 0.4), cache=cache)
    runs = structures(mnist_images, cache)
    units = fit_structural(list(runs.values()))
    left_out = {n: fit_structural([r for m, r in runs.items() if m != n]) for n in runs}
    res = {"fit_structure": FIT.to_dict(), "steps": STEPS, "structural_units": units, "parts": {},
           "structures": {n: {"config": c.to_dict(), "samples": int(len(a.cycles)),
                              "follows_events": bool(follows_events(c)), "register_bits": a.register_bits,
                              "units_left_out": left_out[n]} for n, (c, a) in runs.items()}}
    for name, part in PARTS.items():
        prof, fit_err = calibrate_profile(fit, part, name=name)
        entry = {"profile": prof.__dict__ | {}, "fit_max_abs_rel": fit_err, "held_out": errors(prof, held, part),
                 "other_structures": {n: errors(prof, a, part) for n, (c, a) in runs.items() if c != FIT},
                 "breakdown_nj": {k: float(np.mean(v)) / 1000 for k, v in energy_per_sample(held, part).items()},
                 "structural": {
                     "fitted": {n: errors(structural_profile(c, name, units), a, part) for n, (c, a) in runs.items()},
                     "left_out": {n: errors(structural_profile(c, name, left_out[n]), a, part)
                                  for n, (c, a) in runs.items()}}}
        # the elaborated part of the structural model (clock, block RAM) against the RTL estimate's clock + bram
        entry["fixed_part_rel_error"] = {}
        for n, (c, a) in runs.items():
            e = energy_per_sample(a, part)
            fixed = _fixed_pj(c, a.counters, part, design_facts(c, part.bram_slice_bits))
            entry["fixed_part_rel_error"][n] = float(np.mean(fixed) / np.mean(e["clock"] + e["bram"]) - 1)
        entry["structure_breakdown_nj"] = {n: {k: float(np.mean(v)) / 1000 for k, v in energy_per_sample(a, part).items()}
                                           for n, (c, a) in runs.items()}
        res["parts"][name] = entry
        h = entry["held_out"]
        print(f"{name}: plain profile: fit max error {fit_err:.2%}; held-out inputs ({h['n']} samples) max |error| "
              f"{h['max_abs_rel']:.2%}; other structures: " + ", ".join(
                  f"{n} {e['mean_rel']:+.1%}" for n, e in entry["other_structures"].items()))
        for n in runs:
            lo, fi = entry["structural"]["left_out"][n], entry["structural"]["fitted"][n]
            print(f"  structural, {n}: left out max |error| {lo['max_abs_rel']:.2%} (mean {lo['mean_rel']:+.2%}); "
                  f"in the fit {fi['max_abs_rel']:.2%}")
    print(f"structural rates: {units}")
    res["seconds"] = time.perf_counter() - t0
    return res


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--write", action="store_true", help=f"store the fit in sim/{POWER_FIT.name}")
    ap.add_argument("--mnist-images", type=int, default=1,
                    help="784-128-10 MNIST-like images simulated at RTL (0..21: energy_per_image's, then "
                         "spiker_compare's; ~10-15 min each; 0: leave the structure out)")
    ap.add_argument("--cache", type=Path, default=CACHE,
                    help=f"RTL activity cache, keyed by structure, inputs and the RTL's sources (default "
                         f"{CACHE.relative_to(ROOT)}; a changed RTL is simulated again)")
    ap.add_argument("--no-cache", action="store_true", help="simulate everything again")
    add_record_args(ap)
    a = ap.parse_args(argv)
    if not 0 <= a.mnist_images <= 21:
        ap.error(f"--mnist-images={a.mnist_images}: allowed range is 0..21")
    params = {"fit_structure": "30,16,2 / 4 lanes / w8 / m16", "steps": STEPS,
              "fit": "weight seeds 0-2 x densities 0.05,0.1,0.2,0.3,0.5, 2 samples each",
              "held_out": "weight seeds 3-4 x densities 0.15,0.4; other structures: weight seed 3 x 0.15,0.4 "
                          "(2 each; 100,64,10 and 64,128,10: 1 each)",
              "other_structures": [name_of(c) for c in OTHER + MID],
              "mnist_images": a.mnist_images, "rtl_sources": rtl_source_hash()}
    with Recorder("power_calibration", args=a, seeds=[0, 1, 2, 3, 4], params=params, script=__file__) as rec:
        res = measure(a.mnist_images, None if a.no_cache else a.cache)
        stored = json.loads(POWER_FIT.read_text()) if POWER_FIT.exists() else None
        new = fit_file(res)

        def flat(d):
            return {(k, n, f): v for k in ("profiles", "structural") for n in d[k] for f, v in d[k][n].items()}
        try:
            old, now = flat(stored), flat(new)
            diff = (max((abs(now[k] - old[k]) / max(abs(old[k]), 1e-9) for k in now if now[k] or old[k]), default=0.0)
                    if set(old) == set(now) else float("inf"))
        except (TypeError, KeyError, AttributeError):
            diff = float("inf")                 # no stored fit, or one of another model
        same = diff <= 0.01                     # this run's fit within 1 % of the stored (in-use) one
        if a.write:
            POWER_FIT.write_text(json.dumps(new, indent=1) + "\n")
            print(f"wrote {POWER_FIT}")
        rec.summary = res | {"stored_fit_matches": bool(same or a.write), "stored_fit_max_rel_diff":
                             0.0 if a.write else diff, "wrote_fit": a.write}
        for part, e in res["parts"].items():             # every sample's error, as rounds
            for model, sets in (("plain", {"held_out": e["held_out"]} | e["other_structures"]),
                                ("structural_left_out", e["structural"]["left_out"]),
                                ("structural_fitted", e["structural"]["fitted"])):
                for set_name, er in sets.items():
                    for i, v in enumerate(er["rel"]):
                        rec.round(part=part, model=model, set=set_name, sample=i, rel_error=v)
    print(markdown_rows(res))
    return 0


# ----------------------------------------------------------------------------------------------- views

def view_table(rec: dict) -> str:
    """docs/power.md's leave-one-structure-out table of the structural model."""
    head = ["| structure left out of the fit | samples | update pipeline follows event reads | iCE40 UP5K: max "
            "\\|error\\| (mean) | ECP5-25F: max \\|error\\| (mean) |", "|---|---|---|---|---|"]
    return "\n".join(head) + "\n" + markdown_rows(rec["summary"])


def view_plain(rec: dict) -> str:
    """The one-profile-per-part model: held-out inputs of its fit structure, and its mean error elsewhere."""
    out = ["| part | held-out inputs (30,16,2 / 4 lanes): max \\|error\\| (mean) | other structures: mean error |",
           "|---|---|---|"]
    label = {"ice40-up5k": "iCE40 UP5K", "ecp5-25k": "ECP5-25F"}
    for name, e in rec["summary"]["parts"].items():
        h = e["held_out"]
        out.append(f"| {label[name]} | {h['max_abs_rel'] * 100:.2f} % ({h['mean_abs_rel'] * 100:.2f} %) | "
                   + ", ".join(f"{label_of(n)} {v['mean_rel'] * 100:+.0f} %" for n, v in e["other_structures"].items())
                   + " |")
    return "\n".join(out)


def view_rates(rec: dict, kind: str) -> str:
    """The fitted rates of ``kind`` (toggles / dsp) per unit, one line."""
    label = {"cycle": "cycle", "lane_cycle": "lane × cycle", "lane_weight_bit": "lane × weight bit × weight read",
             "follow": "lane × followed weight read", "neuron_update": "neuron update", "event": "event",
             "lane_read": "lane × weight read"}
    return ", ".join(f"{v:.3g} per {label.get(k, k)}" for k, v in rec["summary"]["structural_units"][kind].items())


def view_worst(rec: dict, key: str = "left_out") -> str:
    """The structural model's largest max \\|error\\| over the structures (both parts), e.g. ``4.2 % (ECP5-25F,
    8 lanes)``."""
    label = {"ice40-up5k": "iCE40", "ecp5-25k": "ECP5"}
    worst = max(((e["max_abs_rel"], part, n) for part, p in rec["summary"]["parts"].items()
                 for n, e in p["structural"][key].items()), key=lambda t: t[0])
    return f"{worst[0] * 100:.1f} % ({label[worst[1]]}, {label_of(worst[2])})"


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


def view_structure_breakdown(rec: dict, structure: str, part: str = "ecp5-25k") -> str:
    """Where the RTL estimate's energy goes on one structure (mean per sample)."""
    b = rec["summary"]["parts"][part]["structure_breakdown_nj"][structure]
    tot = sum(b.values())
    return f"{tot / 1000:.1f} µJ = " + " + ".join(f"{k} {v / 1000:.1f} ({v / tot:.0%})"
                                                 for k, v in sorted(b.items(), key=lambda kv: -kv[1]))


VIEWS = {"table": view_table, "plain": view_plain, "rates": view_rates, "worst": view_worst, "pct": view_pct,
         "breakdown": view_breakdown, "structure_breakdown": view_structure_breakdown}


if __name__ == "__main__":
    sys.exit(main())
