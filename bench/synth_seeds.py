"""Post-route Fmax of one structure over nextpnr placement seeds: how much of a difference between two builds is
placement, and which seeds meet a clock.

    python -m bench.synth_seeds --target ice40-up5k --sizes 30,16,2 --lanes 4 --seeds 1-5 --jobs 2
    python -m bench.synth_seeds --target ecp5-25k --config docs/experiments/conv_digits.toml --seeds 1-5 --publish

    python -m bench.synth_seeds --from runs/synth/ecp5-25k-seeds.json --publish   # a `spikeloop synth --seeds` sweep

The builds are :func:`hw.synth.seed_sweep`'s (what ``spikeloop synth --seeds`` runs): one build of the board top per
seed (same netlist: Yosys is deterministic; only nextpnr's placement seed changes), in
``--build-dir``/<record name>/seed<k>. Prints a row per seed, then min / median / max and mean ± std, and the seeds
whose Fmax reaches ``--clock-mhz`` (default the board clock). ``--from`` records a finished (or stopped) sweep's
JSON instead of building. Writes the record
``synth_seeds_<target>_<network>_l<lanes>[_w<bits>][_touched]`` (or ``--name``; bench/records.py) with every build as a round.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.records import Recorder, add_record_args, spread  # noqa: E402
from hw.cli import load_chip, number, sizes  # noqa: E402
from hw.config import ChipConfig, ConfigError  # noqa: E402
from hw.synth import ROUTERS, TARGETS, check_size  # noqa: E402


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
    """The default name of a sweep's record: part, network, lanes, weight bits other than 8, and for a touched
    chip ``_touched`` (overlap off, as every touched sweep before 51ef58d was built), ``_touched_overlap``
    (overlap on: two membrane memories, another design, never filed under the overlap-off records) or
    ``_touched_wavefront`` (a membrane memory per layer, docs/chip.md "Wavefront"). An
    ``"all"`` chip's name does not say its overlap (on, the default, for every such record)."""
    name = f"synth_seeds_{target}_{network_label(cfg)}_l{cfg.lanes}"
    name += f"_w{cfg.weight_bits}" if cfg.weight_bits != 8 else ""
    if cfg.touched:
        name += "_touched_wavefront" if cfg.wavefront else "_touched_overlap" if cfg.overlap else "_touched"
    return name


def write_record(cfg: ChipConfig, sweep: dict, args=None, name: str | None = None, config: str | None = None,
                 folder: Path | None = None) -> Path:
    """The record of one :func:`hw.synth.seed_sweep` result: every seed a round, Fmax min / median / max."""
    target = sweep["target"]
    params = {"target": target, "network": network_label(cfg), "layer_sizes": list(cfg.layer_sizes),
              "lanes": cfg.lanes, "weight_bits": cfg.weight_bits, "router": sweep["router"], "config": config,
              "chip": cfg.to_dict(), "clock_mhz": sweep["clock_mhz"]}
    rows = sweep["rows"]
    with Recorder(name or record_name(cfg, target), args=args, seeds=sweep["seeds"], params=params, folder=folder,
                  script=__file__) as rec:
        for r in rows:
            rec.round(**r)
        ok = [r for r in rows if r["status"] == "ok"]
        rec.summary = {"builds": len(rows), "ok": len(ok),
                       "failed_seeds": [r["seed"] for r in rows if r["status"] != "ok"],
                       "unfinished_seeds": sorted(set(sweep["seeds"]) - {r["seed"] for r in rows}),
                       "seeds_meeting_clock": sweep["seeds_meeting_clock"]}
        if ok:
            rec.summary["fmax"] = spread(r["fmax_mhz"] for r in ok)
            for k in ("logic_cells", "logic_cells_total", "luts", "ffs", "bram", "bram_total", "spram", "dsp",
                      "clock_mhz"):
                vals = sorted({r.get(k) for r in ok}, key=lambda v: (v is None, v))
                rec.summary[k] = vals[0] if len(vals) == 1 else {"min": vals[0], "max": vals[-1]}
            # which RTL: one Yosys input for every seed (hw.synth.design_hash), or "" (a sweep from before the hash,
            # or builds of different inputs): such a record cannot be shown to be of today's RTL
            hashes = {r.get("design_hash", "") for r in ok}
            rec.summary["design_hash"] = hashes.pop() if len(hashes) == 1 else ""
    return rec.path


def design_status(rec: dict) -> tuple[str, str]:
    """Whether a ``synth_seeds`` record is of today's RTL: ``("current", hash)``, ``("stale", why)`` (its builds'
    Yosys input differs from what :func:`hw.synth.design_hash` gives for its chip today) or ``("unknown", why)``
    (no design hash: built before the hash was recorded, or builds of different inputs). Builds with weights or
    another baud rate are not what ``synth_seeds`` builds, so only its own records are checked."""
    p = rec["params"]
    return hash_status((rec.get("summary") or {}).get("design_hash", ""), rec.get("commit"),
                       lambda: ChipConfig.from_dict(p["chip"]), p["target"])


def hash_status(built: str, commit, chip, target: str) -> tuple[str, str]:
    """``("current", hash)``, ``("stale", why)`` or ``("unknown", why)`` for a figure measured on the design
    ``built`` (a :func:`hw.synth.design_hash`, "" if none was kept) at ``commit``, against today's design of
    ``chip()`` (a :class:`ChipConfig`, made only when needed) on ``target``: the one comparison every record that
    depends on the RTL (Fmax, RTL-activity energy) uses."""
    from hw.synth import design_hash
    if not built:
        return "unknown", f"no design hash (measured at {str(commit)[:7]}, before hashes were recorded)"
    now = design_hash(chip(), target)
    if now != built:
        return "stale", f"measured on {built} at {str(commit)[:7]}, today's RTL is {now}"
    return "current", built


#: run in a record's commit's tree (``--backfill``, ``--rehash``): that commit's ``synthesize`` up to Yosys, its
#: Yosys input printed. argv: the chip as JSON, or ``module:<name>`` for a bench module's ``CFG``; the target (a
#: module's own ``RTL_TARGET`` where it has one)
_CAPTURE = r"""
import importlib, json, sys, tempfile
from amaranth.build.plat import BuildPlan
class Captured(BaseException):
    pass
files = {}
def capture(self, *args, **kwargs):
    files.update({n: v if isinstance(v, str) else v.decode() for n, v in self.files.items() if n in ("top.il", "top.ys")})
    raise Captured
BuildPlan.execute_local = capture
import hw.synth
from hw.config import ChipConfig
if sys.argv[1].startswith("module:"):
    mod = importlib.import_module(sys.argv[1][len("module:"):])
    cfg, target = mod.CFG, getattr(mod, "RTL_TARGET", sys.argv[2])
else:
    cfg, target = ChipConfig.from_dict(json.loads(sys.argv[1])), sys.argv[2]
try:
    hw.synth.synthesize(cfg, target, tempfile.mkdtemp())
except Captured:
    pass
json.dump(files, sys.stdout)
"""


def _capture_at(commit: str, chip: str, target: str) -> tuple[dict, str]:
    """The Yosys input (``top.il``, ``top.ys``) ``commit``'s own ``synthesize`` hands Yosys for ``chip`` (JSON, or
    ``module:<name>``) on ``target``, from a temporary git worktree of that commit; and the capture's last error line."""
    import subprocess
    import tempfile
    from bench.records import ROOT
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(tree), commit], check=True)
        try:
            out = subprocess.run([sys.executable, "-c", _CAPTURE, chip, target], cwd=tree,
                                 env={**os.environ, "PYTHONPATH": str(tree)}, capture_output=True, text=True)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False)
    return json.loads(out.stdout or "{}"), (out.stderr.strip().splitlines() or ["no error"])[-1][:120]


def backfill(names, folder: Path | None = None) -> int:
    """``--backfill``: give records written before builds carried a design hash the hash of the Yosys input their
    commit builds: the commit (clean, as the record says) is checked out in a temporary git worktree and its own
    ``synthesize`` runs up to Yosys; the hash is :func:`hw.synth.design_hash`'s. Refused where the record's
    Amaranth differs from today's (the netlist would be today's Amaranth's) or its tree was dirty."""
    from types import SimpleNamespace
    import amaranth
    from bench.records import PUBLISHED
    from hw.synth import _plan_hash
    records, worst = _read_records(names, Path(folder or PUBLISHED))
    for name, path, rec in records:
        commit, p = rec["commit"], rec["params"]
        built_with = rec.get("versions", {}).get("amaranth")
        if (rec.get("summary") or {}).get("design_hash"):
            print(f"{name}: not backfilled: it already has one")
            continue
        if rec.get("dirty") or built_with != amaranth.__version__:
            why = "its tree was dirty" if rec.get("dirty") else \
                f"built with Amaranth {built_with}, today's is {amaranth.__version__}"
            print(f"{name}: not backfilled: {why}")
            worst = max(worst, 1)
            continue
        files, err = _capture_at(commit, json.dumps(p["chip"]), p["target"])
        if set(files) != {"top.il", "top.ys"}:
            print(f"{name}: not backfilled: commit {commit[:7]}'s synthesize gave no Yosys input ({err})")
            worst = 1
            continue
        h = _plan_hash(SimpleNamespace(files=files))
        rec["summary"]["design_hash"] = h
        rec["summary"]["design_hash_from"] = f"backfilled from commit {commit[:7]}'s tree (synth_seeds --backfill)"
        path.write_text(json.dumps(rec, indent=1) + "\n")
        print(f"{name}: {h} (commit {commit[:7]})")
    return worst


def _read_records(names, folder: Path) -> tuple[list[tuple[str, Path, dict]], int]:
    """The records ``names`` in ``folder`` that can be read and have a commit and params, as (name, path, record);
    and 2 if any could not (said on stderr), else 0."""
    out, worst = [], 0
    for name in names:
        path = folder / f"{name}.json"
        try:
            rec = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            print(f"{name}: no such record ({type(e).__name__})", file=sys.stderr)
            worst = 2
            continue
        if not isinstance(rec, dict) or "commit" not in rec or "params" not in rec:
            print(f"{name}: no such record (not a record: no commit or params)", file=sys.stderr)
            worst = 2
            continue
        out.append((name, path, rec))
    return out, worst


def _hash_slots(rec: dict) -> tuple[list[tuple[dict, str]], dict]:
    """Where a record keeps its design hash: ``[(dict, key), ...]`` (a ``synth_seeds`` record's summary and its
    rounds, another record's params) and the dict for the note of where it came from."""
    if rec.get("module") == "bench.synth_seeds" or "chip" in rec.get("params", {}) and "target" in rec["params"]:
        s = rec.get("summary") or {}
        return [(s, "design_hash")] + [(r, "design_hash") for r in rec.get("rounds", []) if r.get("design_hash")], s
    return [(rec["params"], "design_hash")], rec["params"]


def rehash(names, folder: Path | None = None) -> int:
    """``--rehash``: move records whose design hash is the old one (:func:`hw.synth._plan_text_hash`, the Yosys
    input as text, up to 24d67ab) to today's (:func:`hw.synth._plan_hash`, the netlist as logic). Each record's
    commit is checked out in a temporary git worktree and its own ``synthesize`` runs up to Yosys (as
    ``--backfill``); where the old hash of that input is the one the record keeps, the input is the one it built
    and its new hash replaces the old (summary and rounds; ``params`` for an RTL-activity record, whose chip is its
    module's ``CFG``). Otherwise (a dirty tree, another Amaranth) the record keeps its old hash: never current."""
    from types import SimpleNamespace
    from bench.records import PUBLISHED
    from hw.synth import _plan_hash, _plan_text_hash
    done, new = {}, {}        # (commit, chip, target) -> its Yosys input; its hash
    records, worst = _read_records(names, Path(folder or PUBLISHED))
    for name, path, rec in records:
        commit, p = rec["commit"], rec["params"]
        slots, note = _hash_slots(rec)
        old = {d[k] for d, k in slots if d.get(k)}
        if not old:
            print(f"{name}: not re-hashed: no design hash")
            continue
        if "chip" in p:
            chip, target = json.dumps(p["chip"]), p["target"]
        else:                                           # an RTL-activity record: its module's chip and target
            import importlib
            chip, target = f"module:{rec['module']}", importlib.import_module(rec["module"]).RTL_TARGET
        key = (commit, chip, target)
        if key not in done:
            done[key] = _capture_at(commit, chip, target)
        files, err = done[key]
        if set(files) != {"top.il", "top.ys"}:
            print(f"{name}: not re-hashed: commit {commit[:7]}'s synthesize gave no Yosys input ({err})")
            worst = 1
            continue
        plan = SimpleNamespace(files=files)
        was = _plan_text_hash(plan)
        if key not in new:
            new[key] = _plan_hash(plan)
        h = new[key]
        if old != {was}:
            print(f"{name}: not re-hashed: " + ("it has today's kind of hash already" if old == {h} else
                                              f"it keeps {', '.join(sorted(old))}, commit {commit[:7]} builds {was}"))
            worst = max(worst, 0 if old == {h} else 1)
            continue
        for d, k in slots:
            d[k] = h
        before = f"; before: {note['design_hash_from']}" if note.get("design_hash_from") else ""
        note["design_hash_from"] = (f"re-hashed from commit {commit[:7]}'s tree (synth_seeds --rehash; the old hash, "
                                    f"of its Yosys input as text, was {was}){before}")
        path.write_text(json.dumps(rec, indent=1) + "\n")
        print(f"{name}: {was} -> {h} (commit {commit[:7]})", flush=True)
    return worst


def check(names) -> int:
    """``--check``: print each record's :func:`design_status`; 0 if every one is current."""
    from bench.records import load
    worst = 0
    for name in names:
        try:
            rec = load(name)
        except (OSError, ValueError, KeyError) as e:
            print(f"{name}: no such record ({type(e).__name__})", file=sys.stderr)
            worst = 2
            continue
        status, detail = design_status(rec)
        print(f"{name}: {status}: {detail}")
        worst = max(worst, 0 if status == "current" else 1)
    return worst


def main(argv=None) -> int:
    from hw.cli import seeds
    from hw.synth import seed_sweep
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--target", default="ecp5-25k", choices=TARGETS)
    ap.add_argument("--config", default=None, help="chip config file (.toml with a [chip] table, or .json)")
    ap.add_argument("--sizes", type=sizes, default=None, help="layer sizes, e.g. 784,128,10 (default: ChipConfig's)")
    ap.add_argument("--lanes", type=number(int, 1, 64), default=None)
    ap.add_argument("--weight-bits", type=number(int, 2, 16), default=None)
    ap.add_argument("--seeds", type=seeds, default=seeds("1-5"), help="e.g. 1-8, 1,4,9 or 1-4,9 (default 1-5)")
    ap.add_argument("--jobs", type=number(int, 1, 64), default=None,
                    help="builds at once (default: the cores the load average leaves free)")
    ap.add_argument("--router", default=ROUTERS[0], choices=ROUTERS)
    ap.add_argument("--clock-mhz", type=number(float, 0, 10_000, open_low=True), default=None,
                    help="report the seeds whose Fmax reaches it (default: the board clock)")
    ap.add_argument("--build-dir", default="runs/synth_seeds",
                    help="where the builds go: <build-dir>/<record name>/seed<k> (default runs/synth_seeds)")
    ap.add_argument("--check", nargs="+", metavar="NAME", default=None,
                    help="build nothing: say whether these published records (docs/results/NAME.json) are of "
                         "today's RTL (their design hash against hw.synth.design_hash now); exit 1 if any is not")
    ap.add_argument("--backfill", nargs="+", metavar="NAME", default=None,
                    help="build nothing: give these published records, written before builds carried a design hash, "
                         "the hash of the Yosys input their commit builds (a temporary git worktree at it)")
    ap.add_argument("--rehash", nargs="+", metavar="NAME", default=None,
                    help="build nothing: move these published records from the old design hash (the Yosys input "
                         "as text) to today's (its logic), each at its own commit (a temporary git worktree)")
    ap.add_argument("--from", dest="from_json", default=None,
                    help="record this `spikeloop synth --seeds` sweep (<out>/<target>-seeds.json) instead of building")
    ap.add_argument("--name", default=None, help="the record's name (default synth_seeds_<target>_<net>_l<lanes>)")
    add_record_args(ap)
    a = ap.parse_args(argv)
    if a.check:
        return check(a.check)
    if a.backfill:
        return backfill(a.backfill)
    if a.rehash:
        return rehash(a.rehash)
    if a.from_json:
        try:
            sweep = json.loads(Path(a.from_json).read_text())
            cfg = ChipConfig.from_dict(sweep["chip"])
            sweep["rows"], sweep["seeds"], sweep["target"]           # noqa: B018 - a sweep file has these
        except (OSError, ValueError, KeyError, TypeError) as e:
            print(f"synth_seeds: --from {a.from_json}: not a seed-sweep JSON of spikeloop synth --seeds "
                  f"({type(e).__name__})", file=sys.stderr)
            return 2
    else:
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

        def row(r):
            print(f"seed {r['seed']}: " + (f"{r['fmax_mhz']:.2f} MHz, {r['logic_cells']} logic cells, "
                                           f"{r['seconds']:.0f} s" if r["status"] == "ok" else r["message"]),
                  flush=True)
        sweep = seed_sweep(cfg, a.target, Path(a.build_dir) / (a.name or record_name(cfg, a.target)), a.seeds,
                           a.jobs, router=a.router, clock_mhz=a.clock_mhz, progress=row)
    path = write_record(cfg, sweep, a, a.name, a.config)
    rec = json.loads(path.read_text())
    if rec["summary"]["ok"]:
        print(f"\n{sweep['target']} {network_label(cfg)} lanes={cfg.lanes}: Fmax {view_line(rec)}")
    return 0 if rec["summary"]["ok"] else 1


# ----------------------------------------------------------------------------------------------- views

def _range(v) -> str:
    return f"{v['min']}–{v['max']}" if isinstance(v, dict) else f"{v}"


def view_row(rec: dict) -> str:
    """One table row: target | network | lanes | w bits | LC | LUT4 | FF | BRAM | DSP | Fmax min/median/max."""
    s, p = rec["summary"], rec["params"]
    chip = p.get("chip") or {}
    net = p["network"]
    if chip.get("update") == "touched":               # its schedule: the design differs with each
        net += ", update touched" + (", wavefront" if chip.get("wavefront") else ", overlap" if chip.get("overlap")
                                     else "")
    if not s.get("ok"):
        why = next((r.get("message", "") for r in rec["rounds"]), "")[:110]
        return f"| {p['target']} | {net} | {p['lanes']} | {p['weight_bits']} | failed: {why} ||||||"
    f = s["fmax"]
    return (f"| {p['target']} | {net} | {p['lanes']} | {p['weight_bits']} | "
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


def _seed_text(seeds: list[int]) -> str:
    return f"{seeds[0]}–{seeds[-1]}" if len(seeds) > 2 and seeds == list(range(seeds[0], seeds[-1] + 1)) else \
        ",".join(map(str, seeds))


def view_line(rec: dict) -> str:
    """One line for prose: ``min / median / max MHz (... over n placement seeds a–b; k of n reach C MHz)``."""
    s, p = rec["summary"], rec["params"]
    if not s.get("ok"):
        return f"no seed built ({p['target']} {p['network']} lanes={p['lanes']})"
    f = s["fmax"]
    built = [r["seed"] for r in rec["rounds"] if r["status"] == "ok"]
    clock = p.get("clock_mhz") or s.get("clock_mhz")
    meet = s.get("seeds_meeting_clock")
    return (f"{f['min']:.2f} / {f['median']:.2f} / {f['max']:.2f} MHz (min / median / max over {f['n']} placement "
            f"seeds {_seed_text(built)}" + (f"; {len(meet)} of {f['n']} reach {clock:g} MHz" if meet is not None
                                           and isinstance(clock, (int, float)) else "")
            + (f"; seeds {_seed_text(s['failed_seeds'])} failed" if s.get("failed_seeds") else "")
            + (f"; seeds {_seed_text(s['unfinished_seeds'])} not built" if s.get("unfinished_seeds") else "") + ")")


VIEWS = {"row": view_row, "table": view_table, "seeds": view_seeds, "line": view_line}


if __name__ == "__main__":
    sys.exit(main())
