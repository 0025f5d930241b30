"""Post-route Fmax of one structure over nextpnr placement seeds: how much of a difference between two builds is
placement, and which seeds meet a clock.

    python -m bench.synth_seeds --target ice40-up5k --sizes 30,16,2 --lanes 4 --seeds 1-5 --jobs 2
    python -m bench.synth_seeds --target ecp5-25k --config docs/experiments/conv_digits.toml --seeds 1-5 --publish

Each seed is one `hw.synth.synthesize` build of the board top (same netlist: Yosys is deterministic; only
nextpnr's placement seed changes), in ``--build-dir``/seed<k>. Prints a row per seed, then min / median / max
and mean ± std, and the seeds whose Fmax reaches ``--clock-mhz``. Writes the record
``synth_seeds_<target>_<network>_l<lanes>[_w<bits>]`` (or ``--name``; bench/records.py) with every build as a round.
"""
from __future__ import annotations

import argparse
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

from bench.records import Recorder, add_record_args, spread
from hw.cli import load_chip, number, sizes
from hw.config import ChipConfig, ConfigError
from hw.synth import ROUTERS, TARGETS, SynthError, check_size, synthesize


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
                "logic_cells_total": r.logic_cells_total, "luts": r.luts, "ffs": r.ffs, "bram": r.bram,
                "bram_total": r.bram_total, "spram": r.spram, "dsp": r.dsp, "clock_mhz": r.clock_mhz,
                "timing_met": r.timing_met, "seconds": round(r.seconds)}
    except SynthError as e:
        return {"seed": seed, "status": "failed", "message": str(e)}


def network_label(cfg: ChipConfig) -> str:
    """``784-128-10`` for an fc chip; ``conv1x8x8-c8k3p1-pool2-fc10`` for a chip with conv layers."""
    if not getattr(cfg, "input_shape", None) or all(cfg.layer_kind(l) == "fc" for l in range(cfg.num_layers)):
        return "-".join(map(str, cfg.layer_sizes))
    d = cfg.to_dict()
    parts = ["conv" + "x".join(map(str, d["input_shape"]))]
    for layer in d.get("layers", []):
        k = layer.get("kind")
        if k == "conv":
            parts.append(f"c{layer['channels']}k{layer['kernel']}p{layer.get('padding', 0)}")
        elif k == "pool":
            parts.append(f"pool{layer['size']}")
        else:
            parts.append(f"fc{layer['size']}")
    return "-".join(parts)


def record_name(cfg: ChipConfig, target: str) -> str:
    name = f"synth_seeds_{target}_{network_label(cfg)}_l{cfg.lanes}"
    return name + (f"_w{cfg.weight_bits}" if cfg.weight_bits != 8 else "")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", default="ecp5-25k", choices=TARGETS)
    ap.add_argument("--config", default=None, help="chip config file (.toml with a [chip] table, or .json)")
    ap.add_argument("--sizes", type=sizes, default=None, help="layer sizes, e.g. 784,128,10 (default: ChipConfig's)")
    ap.add_argument("--lanes", type=number(int, 1, 64), default=None)
    ap.add_argument("--weight-bits", type=number(int, 2, 16), default=None)
    ap.add_argument("--seeds", type=_seeds, default=_seeds("1-5"), help="e.g. 1-5 or 1,4,9 (default 1-5)")
    ap.add_argument("--jobs", type=number(int, 1, 64), default=2)
    ap.add_argument("--router", default=ROUTERS[0], choices=ROUTERS)
    ap.add_argument("--clock-mhz", type=float, default=None, help="report the seeds whose Fmax reaches it")
    ap.add_argument("--build-dir", default="runs/synth_seeds", help="where the builds go (default runs/synth_seeds)")
    ap.add_argument("--name", default=None, help="the record's name (default synth_seeds_<target>_<net>_l<lanes>)")
    add_record_args(ap)
    a = ap.parse_args(argv)
    kw = {}
    try:
        if a.sizes:
            kw["layer_sizes"] = a.sizes
        if a.lanes:
            kw["lanes"] = a.lanes
        if a.weight_bits:
            kw["weight_bits"] = a.weight_bits
        cfg = load_chip(a.config, kw)
        check_size(cfg, a.target)           # too large for the part: refused before any build
    except (ConfigError, ValueError) as e:
        print(f"synth_seeds: {e}", file=sys.stderr)
        return 2
    params = {"target": a.target, "network": network_label(cfg), "layer_sizes": list(cfg.layer_sizes),
              "lanes": cfg.lanes, "weight_bits": cfg.weight_bits, "router": a.router, "config": a.config,
              "chip": cfg.to_dict(), "clock_mhz": a.clock_mhz}
    rows = []
    with Recorder(a.name or record_name(cfg, a.target), args=a, seeds=a.seeds, params=params,
                  script=__file__) as rec:
        with ProcessPoolExecutor(max_workers=max(1, a.jobs)) as pool:
            futures = [pool.submit(_build, cfg.to_dict(), a.target, a.build_dir, s, a.router) for s in a.seeds]
            for f in as_completed(futures):
                r = f.result()
                rows.append(r)
                print(f"seed {r['seed']}: " + (f"{r['fmax_mhz']:.2f} MHz, {r['logic_cells']} logic cells, "
                                               f"{r['seconds']} s" if r["status"] == "ok" else r["message"]),
                      flush=True)
        rows.sort(key=lambda r: r["seed"])
        for r in rows:
            rec.round(**r)
        ok = [r for r in rows if r["status"] == "ok"]
        rec.summary = {"builds": len(rows), "ok": len(ok)}
        if ok:
            rec.summary["fmax"] = spread(r["fmax_mhz"] for r in ok)
            for k in ("logic_cells", "logic_cells_total", "luts", "ffs", "bram", "bram_total", "spram", "dsp",
                      "clock_mhz"):
                vals = sorted({r.get(k) for r in ok})
                rec.summary[k] = vals[0] if len(vals) == 1 else {"min": vals[0], "max": vals[-1]}
            f = rec.summary["fmax"]
            print(f"\n{a.target} {network_label(cfg)} lanes={cfg.lanes}: Fmax min {f['min']:.2f} / median "
                  f"{f['median']:.2f} / max {f['max']:.2f} MHz (mean {f['mean']:.2f} ± {f['std']:.2f}) over "
                  f"{f['n']} seeds")
            if a.clock_mhz:
                meet = [r["seed"] for r in ok if r["fmax_mhz"] >= a.clock_mhz]
                rec.summary |= {"clock_mhz_asked": a.clock_mhz, "seeds_meeting_clock": meet}
                print(f"seeds reaching {a.clock_mhz:g} MHz: {meet or 'none'} ({len(meet)} of {len(ok)})")
    return 0 if ok else 1


# ----------------------------------------------------------------------------------------------- views

def _range(v) -> str:
    return f"{v['min']}–{v['max']}" if isinstance(v, dict) else f"{v}"


def view_row(rec: dict) -> str:
    """One table row: target | network | lanes | w bits | LC | LUT4 | FF | BRAM | DSP | Fmax min/median/max."""
    s, p = rec["summary"], rec["params"]
    if not s.get("ok"):
        why = next((r.get("message", "") for r in rec["rounds"]), "")[:110]
        return f"| {p['target']} | {p['network']} | {p['lanes']} | {p['weight_bits']} | failed: {why} ||||||"
    f = s["fmax"]
    return (f"| {p['target']} | {p['network']} | {p['lanes']} | {p['weight_bits']} | "
            f"{_range(s['logic_cells'])}/{_range(s['logic_cells_total'])} | {_range(s['luts'])} | {_range(s['ffs'])} | "
            f"{_range(s['bram'])}/{_range(s['bram_total'])} | {_range(s['dsp'])} | "
            f"{f['min']:.2f} / {f['median']:.2f} / {f['max']:.2f} ({f['n']} seeds) | "
            f"{str(rec['commit'])[:7]} |")


HEADER = ("| target | network | lanes | weight bits | logic cells | LUT4 | FF | BRAM | DSP | "
          "Fmax min / median / max (MHz) | commit |\n|---|---|---|---|---|---|---|---|---|---|---|")


def view_table(rec: dict, *others: str) -> str:
    """A table of this record's row and those of the other ``synth_seeds`` records named in ``others``."""
    from bench.records import load
    return "\n".join([HEADER, view_row(rec), *(view_row(load(n)) for n in others)])


def view_seeds(rec: dict) -> str:
    """Every seed's build: seed, Fmax, logic cells, seconds."""
    out = ["| placement seed | Fmax (MHz) | logic cells | build seconds |", "|---|---|---|---|"]
    for r in rec["rounds"]:
        out.append(f"| {r['seed']} | " + (f"{r['fmax_mhz']:.2f} | {r['logic_cells']} | {r['seconds']} |"
                                          if r["status"] == "ok" else f"failed | | |"))
    return "\n".join(out)


VIEWS = {"row": view_row, "table": view_table, "seeds": view_seeds}


if __name__ == "__main__":
    sys.exit(main())
