"""Post-route Fmax of one structure over nextpnr placement seeds, as a record: how much of a difference between
two builds is placement, and whether every seed meets a clock.

    python -m bench.synth_seeds --target ecp5-25k --seeds 1-8 --publish
    python -m bench.synth_seeds --target ice40-up5k --sizes 30,16,2 --lanes 4 --seeds 1-8 --jobs 2 --publish
    python -m bench.synth_seeds --from runs/synth/ecp5-25k-seeds.json --publish     # wrap a `spikeloop synth --seeds` sweep

The builds are :func:`hw.synth.seed_sweep`'s (``spikeloop synth --seeds`` runs the same): one board-top build per
seed (Yosys is deterministic; only nextpnr's placement seed changes) in ``--build-dir``/seed<k>. The record
(``synth_seeds-<target>-<sizes>-l<lanes>`` unless ``--name``) keeps every seed's Fmax and resources as a round
and min / median / max / mean ± std as its summary; ``--clock-mhz`` (default the board clock) lists the seeds
that reach it. Render a one-line summary in docs with ``<!-- render NAME line -->``, a per-seed table with
``<!-- render NAME table -->``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.records import Recorder, add_record_args  # noqa: E402
from hw.cli import number, seeds, sizes  # noqa: E402
from hw.config import ChipConfig, ConfigError  # noqa: E402


def record_name(sweep: dict) -> str:
    return f"synth_seeds-{sweep['target']}-{'-'.join(map(str, sweep['layer_sizes']))}-l{sweep['lanes']}"


def write_record(sweep: dict, args=None, name: str | None = None, folder: Path | None = None) -> Path:
    """The record of one :func:`hw.synth.seed_sweep` result (its JSON as written under the build folder)."""
    keys = ("target", "device", "layer_sizes", "lanes", "weight_bits", "membrane_bits", "overlap", "structure_hash",
            "router", "clock_mhz")
    with Recorder(name or record_name(sweep), args=args, seeds=sweep["seeds"], folder=folder,
                  params={k: sweep[k] for k in keys if k in sweep}, script=__file__) as rec:
        for r in sweep["rows"]:
            rec.round(**r)
        ok = [r for r in sweep["rows"] if r["status"] == "ok"]
        rec.summary["fmax"] = sweep["fmax"]
        rec.summary["seeds_meeting_clock"] = sweep["seeds_meeting_clock"]
        rec.summary["failed_seeds"] = [r["seed"] for r in sweep["rows"] if r["status"] != "ok"]
        rec.summary["unfinished_seeds"] = sorted(set(sweep["seeds"]) - {r["seed"] for r in sweep["rows"]})
        if ok:          # the netlist is the same for every seed; placement moves resources a little
            rec.summary["resources"] = {k: sorted({r[k] for r in ok}) for k in ("logic_cells", "bram", "dsp")}
    return rec.path


def _line(record: dict) -> str:
    p, s = record["params"], record["summary"]
    f = s["fmax"]
    if not f.get("n"):
        return f"{p['target']} {p['layer_sizes']} lanes={p['lanes']}: no seed built"
    built = [r["seed"] for r in record["rounds"] if r["status"] == "ok"]
    return (f"{f['min']:.2f} / {f['median']:.2f} / {f['max']:.2f} MHz (min / median / max over {f['n']} placement "
            f"seeds {_seed_text(built)}; {len(s['seeds_meeting_clock'])} of {f['n']} reach {p['clock_mhz']:g} MHz"
            + (f"; seeds {_seed_text(s['failed_seeds'])} failed" if s.get("failed_seeds") else "")
            + (f"; seeds {_seed_text(s['unfinished_seeds'])} not built" if s.get("unfinished_seeds") else "") + ")")


def _seed_text(seeds: list[int]) -> str:
    return f"{seeds[0]}–{seeds[-1]}" if seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 2 else \
        ",".join(map(str, seeds))


def _table(record: dict) -> str:
    lines = ["| seed | Fmax (MHz) | logic cells | BRAM | DSP |", "|---|---|---|---|---|"]
    for r in record["rounds"]:
        lines.append(f"| {r['seed']} | {r['fmax_mhz']:.2f} | {r['logic_cells']} | {r['bram']} | {r['dsp']} |"
                     if r["status"] == "ok" else f"| {r['seed']} | {r['status']}: {r['message']} | | | |")
    return "\n".join(lines)


VIEWS = {"line": _line, "table": _table}


def main(argv=None) -> int:
    from hw.synth import ROUTERS, TARGETS, seed_sweep
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", default="ecp5-25k", choices=TARGETS)
    ap.add_argument("--sizes", type=sizes, default=None, help="layer sizes, e.g. 784,128,10 (default: ChipConfig's)")
    ap.add_argument("--lanes", type=number(int, 1, 64), default=None)
    ap.add_argument("--seeds", type=seeds, default=seeds("1-8"), help="e.g. 1-8 or 1,4,9 (default 1-8)")
    ap.add_argument("--jobs", type=number(int, 1, 256), default=None, help="builds at once (default: free cores)")
    ap.add_argument("--router", default=ROUTERS[0], choices=ROUTERS)
    ap.add_argument("--clock-mhz", type=number(float, 0, 10_000, open_low=True), default=None,
                    help="list the seeds whose Fmax reaches it (default: the board clock)")
    ap.add_argument("--build-dir", default="runs/synth_seeds", help="where the builds go")
    ap.add_argument("--from", dest="from_json", default=None,
                    help="record this `spikeloop synth --seeds` sweep JSON instead of building")
    ap.add_argument("--name", default=None, help="record name (default synth_seeds-<target>-<sizes>-l<lanes>)")
    add_record_args(ap)
    a = ap.parse_args(argv)
    if a.from_json:
        try:
            sweep = json.loads(Path(a.from_json).read_text())
            sweep["rows"], sweep["fmax"]                    # noqa: B018 - a sweep file has these
        except (OSError, ValueError, KeyError, TypeError) as e:
            print(f"synth_seeds: --from {a.from_json}: not a seed-sweep JSON ({type(e).__name__})", file=sys.stderr)
            return 2
    else:
        kw = {}
        if a.sizes:
            kw["layer_sizes"] = a.sizes
        if a.lanes:
            kw["lanes"] = a.lanes
        try:
            cfg = ChipConfig(**kw)
        except (ConfigError, ValueError) as e:
            print(f"synth_seeds: {e}", file=sys.stderr)
            return 2
        out = Path(a.build_dir) / f"{a.target}-{'-'.join(map(str, cfg.layer_sizes))}-l{cfg.lanes}"

        def row(r):
            print(f"seed {r['seed']}: " + (f"{r['fmax_mhz']:.2f} MHz, {r['logic_cells']} logic cells, {r['seconds']:.0f} s"
                                           if r["status"] == "ok" else r["message"]), flush=True)
        sweep = seed_sweep(cfg, a.target, out, a.seeds, a.jobs, router=a.router, clock_mhz=a.clock_mhz, progress=row)
    path = write_record(sweep, a, a.name)
    print(_line(json.loads(path.read_text())))
    return 0 if sweep["fmax"].get("n") else 1


if __name__ == "__main__":
    sys.exit(main())
