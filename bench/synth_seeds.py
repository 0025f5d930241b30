"""Post-route Fmax of one structure over nextpnr placement seeds: how much of a difference between two builds is
placement, and which seeds meet a clock.

    python bench/synth_seeds.py --target ice40-up5k --sizes 30,16,2 --lanes 4 --seeds 1-5 --jobs 2
    python bench/synth_seeds.py --target ecp5-25k --seeds 1-5 --clock-mhz 100 --json docs/experiments/seeds.json

Each seed is one `hw.synth.synthesize` build of the board top (same netlist: Yosys is deterministic; only
nextpnr's placement seed changes), in ``--out``/seed<k>. Prints a row per seed, then mean ± std, min and max,
and the seeds whose Fmax reaches ``--clock-mhz``.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from hw.cli import number, sizes
from hw.config import ChipConfig, ConfigError
from hw.synth import ROUTERS, TARGETS, SynthError, synthesize


def _seeds(text: str) -> list[int]:
    try:
        if "-" in text:
            lo, hi = (int(v) for v in text.split("-"))
            seeds = list(range(lo, hi + 1))
        else:
            seeds = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a range like 1-5 or a list like 1,4,9")
    if not seeds or min(seeds) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: seeds are integers >= 1")
    return seeds


def _build(cfg_dict: dict, target: str, out: str, seed: int, router: str) -> dict:
    cfg = ChipConfig.from_dict(cfg_dict)
    try:
        r = synthesize(cfg, target, Path(out) / f"seed{seed}", router=router, seed=seed)
        return {"seed": seed, "status": "ok", "fmax_mhz": r.fmax_mhz, "logic_cells": r.logic_cells,
                "bram": r.bram, "spram": r.spram, "dsp": r.dsp, "seconds": round(r.seconds)}
    except SynthError as e:
        return {"seed": seed, "status": "failed", "message": str(e)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", default="ecp5-25k", choices=TARGETS)
    ap.add_argument("--sizes", type=sizes, default=None, help="layer sizes, e.g. 784,128,10 (default: ChipConfig's)")
    ap.add_argument("--lanes", type=number(int, 1, 64), default=None)
    ap.add_argument("--seeds", type=_seeds, default=_seeds("1-5"), help="e.g. 1-5 or 1,4,9 (default 1-5)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--router", default=ROUTERS[0], choices=ROUTERS)
    ap.add_argument("--clock-mhz", type=float, default=None, help="report the seeds whose Fmax reaches it")
    ap.add_argument("--out", default="runs/synth_seeds")
    ap.add_argument("--json", default=None, help="write the rows and the summary here")
    a = ap.parse_args(argv)
    kw = {}
    try:
        if a.sizes:
            kw["layer_sizes"] = a.sizes
        if a.lanes:
            kw["lanes"] = a.lanes
        cfg = ChipConfig(**kw)
    except (ConfigError, ValueError) as e:
        print(f"synth_seeds: {e}", file=sys.stderr)
        return 2
    rows = []
    with ProcessPoolExecutor(max_workers=max(1, a.jobs)) as pool:
        futures = [pool.submit(_build, cfg.to_dict(), a.target, a.out, s, a.router) for s in a.seeds]
        for f in as_completed(futures):
            r = f.result()
            rows.append(r)
            print(f"seed {r['seed']}: " + (f"{r['fmax_mhz']:.2f} MHz, {r['logic_cells']} logic cells, {r['seconds']} s"
                                           if r["status"] == "ok" else r["message"]), flush=True)
    rows.sort(key=lambda r: r["seed"])
    fmax = [r["fmax_mhz"] for r in rows if r["status"] == "ok"]
    summary = {"target": a.target, "layer_sizes": list(cfg.layer_sizes), "lanes": cfg.lanes, "router": a.router,
               "seeds": a.seeds}
    if fmax:
        summary |= {"mean": statistics.mean(fmax), "std": statistics.stdev(fmax) if len(fmax) > 1 else 0.0,
                    "min": min(fmax), "max": max(fmax)}
        print(f"\n{a.target} {cfg.layer_sizes} lanes={cfg.lanes}: Fmax {summary['mean']:.2f} ± {summary['std']:.2f} MHz "
              f"over {len(fmax)} seeds (min {summary['min']:.2f}, max {summary['max']:.2f})")
        if a.clock_mhz:
            meet = [r["seed"] for r in rows if r["status"] == "ok" and r["fmax_mhz"] >= a.clock_mhz]
            summary |= {"clock_mhz": a.clock_mhz, "seeds_meeting_clock": meet}
            print(f"seeds reaching {a.clock_mhz:g} MHz: {meet or 'none'} ({len(meet)} of {len(fmax)})")
    if a.json:
        Path(a.json).parent.mkdir(parents=True, exist_ok=True)
        Path(a.json).write_text(json.dumps({"summary": summary, "rows": rows}, indent=1))
    return 0 if fmax else 1


if __name__ == "__main__":
    sys.exit(main())
