"""Re-check a bench's speed ratios with unseen inputs against the spread the docs state for them (issue #20).

    python -m bench.recheck model_speed --seeds 29,31 --publish     # re-run twice, compare, record recheck_model_speed
    python -m bench.recheck study_workers_cli --seeds 61,62 --publish
    python -m bench.recheck model_speed --seeds 29,31 --no-run      # compare re-runs already on record, run nothing

**The runs on record** of a bench are the record ``BASE`` (e.g. ``model_speed``) and every record
``BASE_seedN`` beside it that the same bench module wrote (a re-run with input seed N). Other records of the
same module (``model_speed_before``: older code) are not runs of today's bench and stay out.

**The stated spread** of a ratio (:data:`DEFINITION`) is the min–max of its paired **per-round** ratios pooled
over every run on record that measured it; the docs show it with how many runs and rounds back it. A re-run's
ratio (the value the docs would show for it: the median of its per-round ratios, or the bench's own summary
statistic) is *inside* when it lies in that closed range. The range only widens as runs are added: a ratio
that misses a check is widened by the next check, because the missing run is then on record (never by a
chosen number).

**The check** (this command) re-runs the bench once per ``--seeds`` value (seeds no run on record used; the
bench module's ``RECHECK["argv"]`` says how: for ``model_speed`` the input seed), each as a record
``BASE_seedN`` of its own, then compares every ratio of each re-run with the spread stated by the runs on
record *before* the check, and writes the record ``recheck_BASE``: the definition, the runs behind the
spread, the spread of every ratio, each re-run's value and inside/outside. A bench takes part by giving its
module a ``RECHECK`` dict: ``bases`` (the records it re-checks, optional), ``seed(record)`` (the
unseen-input seed of a run), ``argv(seed, name)`` (the arguments of ``python`` for one re-run), ``ratios(record)`` (``{key: {"label", "rounds", "value"}}``) and ``older`` (optional: ``{base: names}``, records named
``BASE_seedN`` that ran older code, left out of the runs on record).
"""
from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

if __package__ in (None, ""):
    _sys.path.insert(0, str(_Path(__file__).resolve().parents[1]))

import argparse
import importlib
import json
import os
import re
import statistics
import subprocess
import sys
from pathlib import Path

from bench.records import PUBLISHED, ROOT, SCRATCH, Recorder, add_record_args

DEFINITION = ("min–max of the paired per-round ratios pooled over every run on record that measured the ratio; "
              "a re-run's ratio (what the docs show for the run: the bench's own summary of it, for model_speed "
              "the median of its per-round ratios) is inside when it lies in that closed range")


def family(base: str, folder: Path = PUBLISHED, exclude=()) -> list[dict]:
    """The runs on record of bench record ``base``: ``base`` and every ``base_seedN`` written by the same module,
    oldest first; names in ``exclude`` (the re-runs being checked) left out."""
    path = Path(folder) / f"{base}.json"
    if not path.exists():
        raise FileNotFoundError(f"no record {path}")
    first = json.loads(path.read_text())
    runs = [first]
    pat = re.compile(rf"{re.escape(base)}_seed(\d+)\.json")
    for p in sorted(Path(folder).glob(f"{base}_seed*.json")):
        if pat.fullmatch(p.name) and p.stem not in exclude:
            r = json.loads(p.read_text())
            if r.get("module") == first.get("module"):
                runs.append(r)
    return sorted(runs, key=lambda r: r.get("date", ""))


def stated_spread(runs: list[dict[str, dict]]) -> dict[str, dict]:
    """The stated spread of every ratio from the runs' ``ratios`` (``{key: {"label", "rounds", "value"}}``
    each): the min–max of the per-round ratios pooled over the runs that have the key, the pooled median, how
    many runs and rounds back it, and each run's own value."""
    keys = {}
    for ratios in runs:
        for k, v in ratios.items():
            keys.setdefault(k, v["label"])
    out = {}
    for k, label in keys.items():
        have = [r[k] for r in runs if k in r]
        pooled = [float(x) for v in have for x in v["rounds"]]
        out[k] = {"label": label, "lo": min(pooled), "hi": max(pooled), "median": statistics.median(pooled),
                  "runs": len(have), "rounds": len(pooled), "run_values": [float(v["value"]) for v in have]}
    return out


def compare(stated: dict[str, dict], ratios: dict[str, dict]) -> dict[str, dict]:
    """Each of a re-run's ratios against the stated spread: ``{key: {"value", "inside"}}``; ``inside`` is None
    where no run on record measured the ratio (nothing was stated)."""
    out = {}
    for k, v in ratios.items():
        s = stated.get(k)
        val = float(v["value"])
        out[k] = {"value": val, "inside": None if s is None else bool(s["lo"] <= val <= s["hi"])}
    return out


def tally(results: dict[str, dict]) -> dict:
    """``{"inside": k, "of": n, "outside": [keys]}`` over the ratios that had a stated spread."""
    judged = {k: v for k, v in results.items() if v["inside"] is not None}
    return {"inside": sum(v["inside"] for v in judged.values()), "of": len(judged),
            "outside": sorted(k for k, v in judged.items() if not v["inside"]),
            "unstated": sorted(k for k, v in results.items() if v["inside"] is None)}


def _run_info(rec: dict, seed) -> dict:
    m = rec.get("machine", {})
    return {"name": rec["name"], "seed": seed, "commit": rec.get("commit"), "dirty": rec.get("dirty"),
            "date": rec.get("date"), "load_before": (m.get("load_before") or [None])[0],
            "load_after": (m.get("load_after") or [None])[0]}


def check(base: str, checks: list[dict], basis: list[dict], hooks: dict) -> dict:
    """The summary of a re-check: the spread stated by ``basis`` (records) and every ratio of each record in
    ``checks`` against it."""
    stated = stated_spread([hooks["ratios"](r) for r in basis])
    per = {c["name"]: compare(stated, hooks["ratios"](c)) for c in checks}
    ratios = {}
    for k, s in stated.items():
        ratios[k] = {**s, "checks": {n: res[k] for n, res in per.items() if k in res}}
    for n, res in per.items():                        # a ratio only a re-run measured: nothing was stated
        for k, v in res.items():
            if k not in stated:
                ratios.setdefault(k, {"label": hooks["ratios"](next(c for c in checks if c["name"] == n))[k]["label"],
                                      "lo": None, "hi": None, "median": None, "runs": 0, "rounds": 0,
                                      "run_values": [], "checks": {}})["checks"][n] = v
    counts = {n: tally(res) for n, res in per.items()}
    total = {"inside": sum(c["inside"] for c in counts.values()), "of": sum(c["of"] for c in counts.values())}
    return {"base": base, "definition": DEFINITION,
            "basis": [_run_info(r, hooks["seed"](r)) for r in basis],
            "checks": [_run_info(r, hooks["seed"](r)) for r in checks],
            "ratios": dict(sorted(ratios.items())), "counts": counts, "total": total}


def _hooks(base: str, folder: Path) -> dict:
    rec = json.loads((Path(folder) / f"{base}.json").read_text())
    module = importlib.import_module(rec["module"])
    hooks = getattr(module, "RECHECK", None)
    if not hooks:
        raise LookupError(f"{rec['module']} has no RECHECK (it renders no speed ratio a re-check covers)")
    return hooks


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base", help="the bench's record, e.g. model_speed or study_workers_cli (in docs/results/)")
    ap.add_argument("--seeds", required=True, help="unseen seeds to re-run with, e.g. 29,31")
    ap.add_argument("--name", default=None,
                    help="the check's record (default recheck_BASE; e.g. recheck_BASE_2 to keep an earlier check)")
    ap.add_argument("--no-run", action="store_true",
                    help="run nothing: compare re-runs BASE_seedN already in the output folder")
    add_record_args(ap)
    a = ap.parse_args(argv)
    try:
        seeds = [int(v) for v in a.seeds.split(",") if v.strip()]
    except ValueError:
        seeds = []
    if not seeds or any(s < 0 for s in seeds) or len(set(seeds)) != len(seeds):
        print(f"recheck: --seeds {a.seeds!r}: expected distinct integers >= 0 like 29,31", file=sys.stderr)
        return 2
    if not (PUBLISHED / f"{a.base}.json").exists():
        have = sorted(p.stem for p in PUBLISHED.glob("*.json") if "_seed" not in p.stem)
        print(f"recheck: base {a.base!r}: no record docs/results/{a.base}.json (records: {', '.join(have)})",
              file=sys.stderr)
        return 2
    try:
        hooks = _hooks(a.base, PUBLISHED)
    except LookupError as e:
        print(f"recheck: base {a.base!r}: {e}", file=sys.stderr)
        return 2
    if "bases" in hooks and a.base not in hooks["bases"]:
        print(f"recheck: base {a.base!r}: not a record its module re-checks (bases: {', '.join(hooks['bases'])})",
              file=sys.stderr)
        return 2
    m = re.fullmatch(r"(.+)_seed\d+", a.base)
    if m and (PUBLISHED / f"{m.group(1)}.json").exists():
        print(f"recheck: base {a.base!r}: a re-run of {m.group(1)}; re-check {m.group(1)} instead", file=sys.stderr)
        return 2
    try:                    # the base must measure the ratios the module's re-check covers (not another bench)
        measured = hooks["ratios"](json.loads((PUBLISHED / f"{a.base}.json").read_text()))
    except (LookupError, TypeError, ValueError, ZeroDivisionError) as e:
        measured = f"{type(e).__name__}: {e}"
    if not isinstance(measured, dict) or not measured:
        print(f"recheck: base {a.base!r}: the record measured none of the ratios its module's re-check covers "
              f"(another bench of the module{'; ' + measured if isinstance(measured, str) else ''})", file=sys.stderr)
        return 2
    name = a.name or f"recheck_{a.base}"
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]*", name):
        print(f"recheck: --name {name!r}: use letters, digits, '_' and '-'", file=sys.stderr)
        return 2
    folder = a.out if a.out is not None else (PUBLISHED if a.publish else SCRATCH)
    names = [f"{a.base}_seed{s}" for s in seeds]
    target = Path(folder) / f"{name}.json"
    try:
        theirs = json.loads(target.read_text()).get("module") if target.exists() else None
    except (OSError, ValueError, AttributeError):
        theirs = "?"
    if name == a.base or name in names or re.fullmatch(rf"{re.escape(a.base)}_seed\d+", name) or \
            theirs not in (None, "bench.recheck"):
        print(f"recheck: --name {name!r}: a bench record of that name is (or would be) in {folder}; the check "
              f"needs a name of its own (default recheck_{a.base})", file=sys.stderr)
        return 2
    # --no-run on the published records: the re-runs are on record beside the runs they are checked against
    same = Path(folder).resolve() == PUBLISHED.resolve()
    older = tuple(hooks.get("older", {}).get(a.base, ()))
    basis = family(a.base, PUBLISHED, exclude=(tuple(names) if a.no_run and same else ()) + older)
    used = {hooks["seed"](r): r["name"] for r in basis}
    seen = [f"{s} ({used[s]})" for s in seeds if s in used]
    if seen:
        print(f"recheck: --seeds: {', '.join(seen)} already on record; choose seeds no run on record used "
              f"(used: {', '.join(map(str, sorted(used)))})", file=sys.stderr)
        return 2
    if a.no_run:
        missing = [n for n in names if not (Path(folder) / f"{n}.json").exists()]
        if missing:
            print(f"recheck: --no-run: no re-run record {', '.join(missing)} in {folder}", file=sys.stderr)
            return 2
        module = json.loads((PUBLISHED / f"{a.base}.json").read_text()).get("module")
        for n in names:                     # each must be a run of the base's bench, readable
            try:
                r = json.loads((Path(folder) / f"{n}.json").read_text())
                ok = isinstance(r, dict) and r.get("module") == module
            except (OSError, ValueError) as e:
                print(f"recheck: --no-run: {n}.json in {folder} is no readable record ({type(e).__name__})",
                      file=sys.stderr)
                return 2
            if not ok:
                print(f"recheck: --no-run: {n}.json in {folder} was not written by {module} (the bench of "
                      f"{a.base}); re-run it or choose other seeds", file=sys.stderr)
                return 2
    with Recorder(name, args=a, seeds=seeds, params={"base": a.base, "definition": DEFINITION},
                  script=__file__) as rec:
        if not a.no_run:
            out = ["--publish"] if folder == PUBLISHED else ["--out", str(folder)]
            for s, n in zip(seeds, names):
                cmd = [sys.executable, *hooks["argv"](s, n), *out]
                print("recheck: " + " ".join(cmd[1:]), flush=True)
                p = subprocess.run(cmd, cwd=str(ROOT), env=dict(os.environ))
                if p.returncode:
                    raise SystemExit(f"recheck: the re-run with seed {s} failed (exit {p.returncode})")
        checks = [json.loads((Path(folder) / f"{n}.json").read_text()) for n in names]
        rec.summary = check(a.base, checks, basis, hooks)
        for k, v in rec.summary["ratios"].items():
            for n, c in v["checks"].items():
                rec.round(ratio=k, run=n, value=c["value"], lo=v["lo"], hi=v["hi"], inside=c["inside"])
    print(view_count(rec.as_dict()))
    for n, c in rec.summary["counts"].items():
        print(f"{n}: {c['inside']} of {c['of']} inside" + (f"; outside: {', '.join(c['outside'])}" if c["outside"] else ""))
    return 0


# ----------------------------------------------------------------------------------------------- views

def _x(v: float) -> str:
    return f"{v:.2f}"


def _against(v: float, lo: float, hi: float) -> tuple[str, str, str]:
    """``v``, ``lo`` and ``hi`` formatted alike: 2 decimals, more (up to 6) where fewer would make a value
    look equal to a bound it is not equal to."""
    for d in range(2, 7):
        f = [f"{x:.{d}f}" for x in (v, lo, hi)]
        if (f[0] != f[1] or v == lo) and (f[0] != f[2] or v == hi):
            break
    return f[0], f[1], f[2]


def view_count(rec: dict, run: str = "all") -> str:
    """``k of n`` ratios inside their stated spread, over every re-run (``all``) or one (its record name), and
    which are outside (the re-run's value against the spread)."""
    s = rec["summary"]
    names = [c["name"] for c in s["checks"]] if run == "all" else [run]
    if any(n not in s["counts"] for n in names):
        raise KeyError(f"{rec['name']} has no re-run {run!r} (has {sorted(s['counts'])})")
    k = sum(s["counts"][n]["inside"] for n in names)
    n = sum(s["counts"][n]["of"] for n in names)
    outside = []
    for name in names:
        for key in s["counts"][name]["outside"]:
            r = s["ratios"][key]
            v, lo, hi = _against(r["checks"][name]["value"], r["lo"], r["hi"])
            outside.append(f"{r['label']} (seed {name.rsplit('_seed', 1)[-1]}): {v}x against {lo}–{hi}x")
    return f"{k} of {n}" + (f" (outside: {'; '.join(outside)})" if outside else "")


def view_basis(rec: dict) -> str:
    """One line: the runs behind the stated spread and the re-runs checked against it."""
    s = rec["summary"]

    def one(r):
        load = "" if r["load_before"] is None else f", load {r['load_before']:.0f}–{r['load_after']:.0f}"
        return (f"`{r['name']}` (seed {r['seed']}, {str(r['date'])[:10]}, commit {str(r['commit'])[:7]}"
                f"{' dirty' if r.get('dirty') else ''}{load})")
    return (f"runs on record: {', '.join(one(r) for r in s['basis'])}; re-runs with unseen inputs: "
            f"{', '.join(one(r) for r in s['checks'])}")


def view_loads(rec: dict) -> str:
    """The machine's load average over the runs behind the stated spread (before and after each run), for a
    headline that quotes the spread without the whole basis: ``load average 3–21``."""
    loads = [r[k] for r in rec["summary"]["basis"] for k in ("load_before", "load_after") if r.get(k) is not None]
    if not loads:
        raise KeyError(f"{rec['name']}: its runs on record have no load average")
    return f"load average {min(loads):.0f}–{max(loads):.0f}"


def view_stated(rec: dict, key: str) -> str:
    """One ratio in prose: ``pooled median x (stated spread lo–hi; R rounds of N runs)``."""
    r = rec["summary"]["ratios"].get(key)
    if r is None or r["lo"] is None:
        raise KeyError(f"{rec['name']} states no spread for {key!r}")
    return f"{_x(r['median'])}x ({_x(r['lo'])}–{_x(r['hi'])}; {r['rounds']} rounds of {r['runs']} run{'s' * (r['runs'] > 1)})"


#: the order of the tables' sections (the order of the page); other keys after them, by name
_SECTIONS = ("peers", "conv", "paths", "activity", "conditions", "workers")


def _order(key: str) -> tuple:
    """Sort key of a ratio key: its section in page order, then its parts, numbers as numbers."""
    head, *rest = key.split("/")
    rank = _SECTIONS.index(head) if head in _SECTIONS else len(_SECTIONS)

    def part(p):
        try:
            return (0, float(p), "")
        except ValueError:
            return (1, 0.0, p)
    return (rank, head, *map(part, rest))


def view_table(rec: dict, prefix: str = "") -> str:
    """Every ratio (keys starting with ``prefix``): the stated spread and what backs it, each run on record's
    value, each re-run's value and whether it is inside."""
    s = rec["summary"]
    checks = [c["name"] for c in s["checks"]]
    seed = {c["name"]: c["seed"] for c in s["checks"]}
    out = ["| ratio | stated spread (pooled median) | runs, rounds | each run on record | "
           + " | ".join(f"re-run seed {seed[n]}" for n in checks) + " |",
           "|---|---|---|---|" + "---|" * len(checks)]
    for k, r in sorted(s["ratios"].items(), key=lambda kv: _order(kv[0])):
        if not k.startswith(prefix):
            continue
        stated = "none" if r["lo"] is None else f"{_x(r['lo'])}–{_x(r['hi'])}x ({_x(r['median'])}x)"
        cells = []
        for n in checks:
            c = r["checks"].get(n)
            v = c and (_x(c["value"]) if r["lo"] is None else _against(c["value"], r["lo"], r["hi"])[0])
            cells.append("–" if c is None else f"{v}x " + {True: "inside", False: "**outside**",
                                                          None: "(nothing stated)"}[c["inside"]])
        out.append(f"| {r['label']} | {stated} | {r['runs']}, {r['rounds']} | "
                   f"{', '.join(_x(v) for v in r['run_values']) or '–'} | " + " | ".join(cells) + " |")
    return "\n".join(out)


VIEWS = {"count": view_count, "basis": view_basis, "loads": view_loads, "stated": view_stated,
         "table": view_table}


if __name__ == "__main__":
    sys.exit(main())
