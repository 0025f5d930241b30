"""Energy per image of the MNIST-sized network against Spiker+ (arXiv 2401.01141: 780 us, 180 mW per MNIST
image), at our estimate and at equal static power.

    python -m bench.spiker_compare --fmax-record synth_seeds_ecp5-25k_784-128-10_l8_seeds51-55 [--rtl N] [--publish]
    python -m bench.spiker_compare --cache SYNTH_CACHE            # one build of the DSE cache
    python -m bench.spiker_compare --clock-mhz F --clock-note "where F comes from"

Writes the record ``spiker_compare`` (bench/records.py). Cycles and dynamic energy are measured here (fast model,
cycle-exact; deterministic for the seeded network and inputs); latency and static energy follow from the clock,
which is *not* measured here: it is taken from a ``bench/synth_seeds.py`` record (min / median / max Fmax over
placement seeds), from one build in a DSE cache, or from ``--clock-mhz`` with a note saying where it comes from.
Without any of them the record holds cycles and dynamic energy only.

Network 784-128-10, 8 lanes, w8/m16, 25 steps; weights are the seeded sample network (sim.sample, not
trained); inputs are MNIST-like: scikit-learn's 8x8 digits upsampled to 28x28 (bilinear) and rate-coded with a
per-pixel probability scaled so the mean input density is ~0.17. Cycles from the fast model (cycle-exact);
the clock is the post-route Fmax of that structure on the ECP5-25F (``python -m bench.synth_seeds --sizes
784,128,10 --lanes 8 --weight-bits 8 --target ecp5-25k --seeds 51-55 --jobs 1 --publish``, ~40 min per seed here;
the record must build this chip: its structure hash is checked). Dynamic energy from the fast model's counters x
``sim.activity.structural_profile`` (and, with ``--rtl N``, from the RTL's activity on N images as a check, both
parts: ~10-15 min per image, cached by ``bench/power_calibration.py``); static power from ``sim.activity.ECP5_25K`` (assumed, see there).
"""
from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

if __package__ in (None, ""):                   # run as a file (python bench/x.py): the repository on the path
    _sys.path.insert(0, str(_Path(__file__).resolve().parents[1]))

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from bench.records import PUBLISHED, Recorder, add_record_args
from hw.config import ChipConfig
from hw.synth import design_hash
from sim.activity import ECP5_25K, PARTS, design_facts, estimate_energy, structural_profile
from sim.chip import make_chip
from sim.power import performance
from sim.sample import random_weights

CFG = ChipConfig(layer_sizes=(784, 128, 10), lanes=8, weight_bits=8, membrane_bits=16)
STEPS, DENSITY, IMAGES = 25, 0.17, 20
SPIKER = {"latency_us": 780.0, "power_mw": 180.0}


def mnist_like(n: int, seed: int = 0) -> np.ndarray:
    from scipy.ndimage import zoom
    from sklearn.datasets import load_digits
    img = load_digits().images[:n] / 16.0
    big = np.clip(np.stack([zoom(i, 28 / 8, order=1) for i in img]), 0, 1).reshape(n, 784)
    p = np.clip(big * DENSITY / big.mean(), 0, 1)
    return np.random.default_rng(seed).random((n, STEPS, 784)) < p[:, None, :]


def clocks_of(a) -> list[dict]:
    """The clocks to evaluate at: [{label, mhz, note}]."""
    out = []
    if a.fmax_record:
        path = PUBLISHED / f"{a.fmax_record}.json"
        if not path.exists():
            raise SystemExit(f"spiker_compare: --fmax-record {a.fmax_record!r}: no record {path}")
        r = json.loads(path.read_text())
        p = r["params"]
        if (p.get("target"), list(p.get("layer_sizes", ())), p.get("lanes")) != ("ecp5-25k", list(CFG.layer_sizes),
                                                                                 CFG.lanes):
            raise SystemExit(f"spiker_compare: --fmax-record {a.fmax_record!r} is {p.get('target')} "
                             f"{p.get('layer_sizes')} / {p.get('lanes')} lanes, not ecp5-25k 784,128,10 / 8 lanes")
        chip = ChipConfig.from_dict(p["chip"]) if p.get("chip") else None
        if chip is None or chip.structure_hash != CFG.structure_hash:     # weight/membrane bits, overlap, ...
            raise SystemExit(f"spiker_compare: --fmax-record {a.fmax_record!r} builds another chip than "
                             f"{CFG.layer_sizes} / {CFG.lanes} lanes / w{CFG.weight_bits}/m{CFG.membrane_bits}, "
                             f"overlap {CFG.overlap}: {p.get('chip')}")
        f = r["summary"]["fmax"]
        note = (f"post-route Fmax over {f['n']} placement seeds ({a.fmax_record}, commit "
                f"{str(r['commit'])[:7]})")
        out += [{"label": k, "mhz": f[k], "note": note} for k in ("min", "median", "max")]
    if a.cache:
        from tune.dse import synth_cached
        rec = synth_cached(CFG, "ecp5-25k", Path(a.cache))
        if rec["status"] != "ok":
            raise SystemExit(f"spiker_compare: --cache: the build of 784-128-10 / 8 lanes {rec['status']}")
        out.append({"label": "one build", "mhz": rec["fmax_mhz"],
                    "note": "post-route Fmax of one build (DSE cache, nextpnr's default seed)"})
    if a.clock_mhz:
        if a.clock_mhz <= 0:
            raise SystemExit("spiker_compare: --clock-mhz must be > 0")
        out.append({"label": "given", "mhz": a.clock_mhz,
                    "note": a.clock_note or f"{a.clock_mhz} MHz ASSUMED (no post-route Fmax of this structure)"})
    return out


def measure(clocks: list[dict], rtl: int = 0) -> tuple[dict, np.ndarray]:
    x = mnist_like(IMAGES)
    w = random_weights(CFG, 0, DENSITY)
    chip = make_chip(CFG)
    chip.load(w)
    r = chip.run(x)
    prof = structural_profile(CFG, "ecp5-25k")
    perf = performance(r, prof, clock_mhz=100.0)          # the clock does not enter cycles or dynamic energy
    res = {"network": "784-128-10", "lanes": 8, "steps": STEPS, "images": IMAGES,
           "input_density": float(x.mean()), "cycles": perf.cycles, "dynamic_uj": perf.dynamic_energy_nj / 1000,
           "spiker": SPIKER | {"energy_uj": SPIKER["power_mw"] * SPIKER["latency_us"] / 1000,
                               "fps_per_watt": 1e9 / (SPIKER["power_mw"] * SPIKER["latency_us"])}}
    if rtl:                     # the RTL's activity on the first images, against the structural counter model
        # simulated once and cached by bench.power_calibration (keyed by the RTL's sources)
        from bench.power_calibration import mnist_activity
        act = mnist_activity(rtl)
        counters = {k: v[:rtl] for k, v in r.counters.items()}
        res["rtl_check"] = {"images": rtl}
        for part in PARTS:
            e = estimate_energy(act, part)
            fast = performance(counters, structural_profile(CFG, part), clock_mhz=100.0).dynamic_energy_nj
            res["rtl_check"][part] = {"rtl_dynamic_uj": e.dynamic_nj / 1000, "fast_dynamic_uj": fast / 1000,
                                      "rel_error": fast / e.dynamic_nj - 1,
                                      "breakdown_uj": {k[:-3]: v / 1000 for k, v in e.to_dict().items()
                                                       if k.endswith("_nj")}}
    facts = design_facts(CFG, ECP5_25K.bram_slice_bits)
    res["weight_reads_gated"] = facts.weight_reads_gated
    if not facts.weight_reads_gated:
        # what-if (not implemented): the sequencer drives WeightMemory.read.en, so that a weight bank reads
        # only on the cycles that issue a weight read (today the addressed bank reads on every busy cycle)
        word_pj = facts.weight_word_slices * ECP5_25K.bram_access_pj
        gated = performance(r, replace(prof, cycle_pj=prof.cycle_pj - word_pj,
                                       weight_read_pj=prof.weight_read_pj + word_pj), clock_mhz=100.0)
        res["what_if_reads_on_issue"] = {"weight_word_pj": word_pj, "dynamic_uj": gated.dynamic_energy_nj / 1000}
    res["clocks"] = []
    for c in clocks:
        latency = res["cycles"] / c["mhz"]
        rows = []
        for label, static in (("ours (ECP5 static 30 mW, assumed)", ECP5_25K.static_mw),
                              ("equal static: all 180 mW of Spiker+ as static", SPIKER["power_mw"])):
            energy = res["dynamic_uj"] + static * latency / 1000
            rows.append({"case": label, "static_mw": static, "energy_uj": energy, "fps_per_watt": 1e6 / energy,
                         "vs_spiker_energy": res["spiker"]["energy_uj"] / energy})
        res["clocks"].append(c | {"latency_us": latency, "vs_spiker_latency": SPIKER["latency_us"] / latency,
                                  "comparison": rows})
    return res, r.counters["cycles"]


#: the part whose board top around :data:`CFG` names the simulated RTL (:func:`rtl_hash`)
RTL_TARGET = "ecp5-25k"


def rtl_hash() -> str:
    """Which RTL an activity estimate of :data:`CFG` simulates: the design hash of the board top around it
    (:func:`hw.synth.design_hash`), kept in this bench's and ``bench.energy_per_image``'s records."""
    return design_hash(CFG, RTL_TARGET)


def design_status(rec: dict) -> tuple[str, str]:
    """Whether a record's RTL activity estimate of :data:`CFG` (this bench's, ``bench.energy_per_image``'s) is of
    today's RTL (:func:`bench.synth_seeds.hash_status`)."""
    from bench.synth_seeds import hash_status
    return hash_status(rec["params"].get("design_hash", ""), rec.get("commit"), lambda: CFG, RTL_TARGET)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fmax-record", help="a bench/synth_seeds.py record in docs/results/ (784-128-10 / 8 lanes, "
                                          "ecp5-25k): evaluate at its min / median / max Fmax")
    ap.add_argument("--cache", help="a DSE synthesis cache: evaluate at its one build's Fmax (built if missing)")
    ap.add_argument("--rtl", type=int, default=0, help="also simulate the RTL on this many images (~5 min each)")
    ap.add_argument("--clock-mhz", type=float, help="evaluate at this clock too (say where it comes from)")
    ap.add_argument("--clock-note", help="where --clock-mhz comes from (default: stated as assumed)")
    add_record_args(ap)
    a = ap.parse_args(argv)
    if a.rtl < 0:
        print("spiker_compare: --rtl must be >= 0", file=sys.stderr)
        return 2
    clocks = clocks_of(a)
    params = {"network": "784-128-10", "lanes": CFG.lanes, "weight_bits": CFG.weight_bits,
              "membrane_bits": CFG.membrane_bits, "steps": STEPS, "images": IMAGES, "input_density": DENSITY,
              "weights": "sim.sample.random_weights seed 0 (untrained)", "inputs": "sklearn digits 0..19, "
              "upsampled to 28x28, rate-coded with seed 0", "rtl_images": a.rtl,
              "static_mw_assumed": ECP5_25K.static_mw,
              "design_hash": rtl_hash()}
    with Recorder("spiker_compare", args=a, seeds=[0], params=params, script=__file__) as rec:
        res, per_image = measure(clocks, a.rtl)
        rec.summary = res
        for i, c in enumerate(per_image):
            rec.round(image=i, cycles=int(c))
    print(json.dumps(res, indent=1))
    return 0


# ----------------------------------------------------------------------------------------------- views

def view_table(rec: dict) -> str:
    """Latency, energy and FPS/W against Spiker+ at each clock the record was evaluated at."""
    s = rec["summary"]
    sp = s["spiker"]
    out = ["| | clock | latency / image | dynamic | static power | energy / image | FPS/W | energy vs Spiker+ |",
           "|---|---|---|---|---|---|---|---|",
           f"| Spiker+ (arXiv 2401.01141) | — | {sp['latency_us']:,.0f} µs | — | — ({sp['power_mw']:.0f} mW total) | "
           f"{sp['energy_uj']:.1f} µJ | {sp['fps_per_watt']:,.0f} | 1 |"]
    rtl = (s.get("rtl_check") or {}).get("ecp5-25k")
    for c in s["clocks"]:
        rows = [(row["case"], s["dynamic_uj"], "counter model", row["static_mw"]) for row in c["comparison"]]
        if rtl:                     # the RTL activity estimate of the first image(s) as the dynamic energy
            n = s['rtl_check']['images']
            rows.append((f"ours, dynamic from the RTL estimate ({n} image{'s' if n > 1 else ''}), static "
                         f"{rec['params']['static_mw_assumed']:.0f} mW (assumed)", rtl["rtl_dynamic_uj"], "RTL est.",
                         rec["params"]["static_mw_assumed"]))
        for case, dyn, how, static in rows:
            energy = dyn + static * c["latency_us"] / 1000
            v = sp["energy_uj"] / energy
            out.append(f"| {case} | {c['mhz']:.2f} MHz ({c['label']}) | {c['latency_us']:,.0f} µs | "
                       f"{dyn:.1f} µJ ({how}) | {static:.0f} mW | {energy:.1f} µJ | "
                       f"{1e6 / energy:,.0f} | {f'{v:.2f}x less' if v >= 1 else f'{1 / v:.2f}x more'} |")
    return "\n".join(out)


def view_clocks(rec: dict) -> str:
    """Where the clocks come from (one line)."""
    notes = sorted({c["note"] for c in rec["summary"]["clocks"]})
    return "; ".join(notes) if notes else "no clock: latency not evaluated"


def view_rtl_error(rec: dict, part: str) -> str:
    """``1.2 % below`` / ``0.4 % above``: the structural counter model against the RTL estimate on the
    record's ``--rtl`` images."""
    check = rec["summary"].get("rtl_check")
    if not check:
        return "not checked (run with --rtl 1)"
    e = check[part]["rel_error"]
    return f"{abs(e) * 100:.1f} % {'below' if e < 0 else 'above'}"


def view_rtl_breakdown(rec: dict, part: str) -> str:
    """Where the RTL estimate's dynamic energy goes on the ``--rtl`` images: ``72.0 µJ = bram 43.5 (62 %) + ...``."""
    check = rec["summary"].get("rtl_check")
    if not check:
        return "not checked (run with --rtl 1)"
    b = {k: v for k, v in check[part]["breakdown_uj"].items() if k != "dynamic"}
    tot = check[part]["rtl_dynamic_uj"]
    return f"{tot:.1f} µJ = " + " + ".join(f"{k} {v:.1f} µJ ({v / tot:.0%})"
                                          for k, v in sorted(b.items(), key=lambda kv: -kv[1]))


VIEWS = {"table": view_table, "clocks": view_clocks, "rtl_error": view_rtl_error, "rtl_breakdown": view_rtl_breakdown}


if __name__ == "__main__":
    sys.exit(main())
