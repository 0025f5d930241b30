"""What a user waits for one short training, the command's start-up included, against another commit's code:
``spikeloop train`` as a fresh process (``python -m tune.cli train``), this tree against a git worktree of
``--against REV``, runs interleaved (A B B A, ``--repeats`` blocks) after one throwaway run of each, as the record
``train_startup``.

    python -m bench.bench_startup --against 6a0e466 [--repeats 4] [--publish]

The run: BPTT, 1 epoch, on ``--dataset`` (default digits), training seed 0, written to a scratch folder. Wall
seconds (what a user waits; the machine's other work inflates it) and CPU seconds of the command and its children
(less sensitive to the load) are kept for every run; the summary gives the per-pair ratio other ÷ this (> 1:
this tree is faster) and each side's mean. Both trees run with the same interpreter and packages (this
repository's venv): only spikeloop's own code differs.
"""
from __future__ import annotations

import sys as _sys
from pathlib import Path as _Path

if __package__ in (None, ""):                   # run as a file (python bench/x.py): the repository on the path
    _sys.path.insert(0, str(_Path(__file__).resolve().parents[1]))

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.records import ROOT, Recorder, add_record_args, spread


def _children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def _run(tree: Path, dataset: str, out: Path) -> dict:
    """One ``spikeloop train`` of ``tree``'s code: wall and CPU seconds."""
    argv = [sys.executable, "-m", "tune.cli", "train", "--method", "bptt", "--dataset", dataset, "--epochs", "1",
            "--seed", "0", "--out", str(out)]
    env = dict(os.environ, PYTHONPATH=str(tree))
    cpu, t0 = _children_cpu(), time.perf_counter()
    p = subprocess.run(argv, cwd=tree, env=env, capture_output=True, text=True)
    wall, cpu = time.perf_counter() - t0, _children_cpu() - cpu
    if p.returncode != 0:
        raise SystemExit(f"bench_startup: `{' '.join(argv[1:])}` in {tree} exited {p.returncode}: "
                         f"{p.stderr.strip().splitlines()[-1] if p.stderr.strip() else ''}")
    return {"wall_s": wall, "cpu_s": cpu, "load_before": list(os.getloadavg())}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--against", required=True, help="the other code: a git revision of this repository")
    ap.add_argument("--repeats", type=int, default=4, help="A B B A blocks (1..20; default 4)")
    ap.add_argument("--dataset", default="digits", choices=["digits", "breast_cancer"])
    ap.add_argument("--name", default=None, help="the record's name (default train_startup)")
    add_record_args(ap)
    a = ap.parse_args(argv)
    if not 1 <= a.repeats <= 20:
        ap.error(f"--repeats={a.repeats}: allowed range is 1..20")
    rev = subprocess.run(["git", "rev-parse", "--verify", f"{a.against}^{{commit}}"], cwd=ROOT, capture_output=True,
                         text=True)
    if rev.returncode != 0:
        ap.error(f"--against={a.against!r}: not a commit of this repository")
    other = rev.stdout.strip()
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        tree = tmp / "other"
        subprocess.run(["git", "worktree", "add", "--detach", "-q", str(tree), other], cwd=ROOT, check=True)
        try:
            order = ["this", "other", "other", "this"] * a.repeats
            with Recorder(a.name or "train_startup", args=a, seeds=[0], params={
                    "against": other, "dataset": a.dataset, "order": order,
                    "command": "python -m tune.cli train --method bptt --dataset D --epochs 1 --seed 0 --out O "
                               "(a fresh process per run, PYTHONPATH = the tree)"}) as rec:
                trees = {"this": ROOT, "other": tree}
                for side in ("this", "other"):                       # throwaway: warms the disk cache
                    _run(trees[side], a.dataset, tmp / f"warm-{side}")
                runs = []
                for k, side in enumerate(order):
                    r = _run(trees[side], a.dataset, tmp / f"run{k}")
                    runs.append({"side": side, **r})
                    print(f"{side}: {r['wall_s']:.2f} s wall, {r['cpu_s']:.2f} CPU s", flush=True)
                rec.rounds = runs
                this = [r for r in runs if r["side"] == "this"]
                oth = [r for r in runs if r["side"] == "other"]
                rec.summary = {
                    "this": {k: spread([r[k] for r in this]) for k in ("wall_s", "cpu_s")},
                    "other": {k: spread([r[k] for r in oth]) for k in ("wall_s", "cpu_s")},
                    "pair_ratio_wall": spread([o["wall_s"] / t["wall_s"] for t, o in zip(this, oth)]),
                    "pair_ratio_cpu": spread([o["cpu_s"] / t["cpu_s"] for t, o in zip(this, oth)]),
                    "saved_wall_s": spread([o["wall_s"] - t["wall_s"] for t, o in zip(this, oth)]),
                }
        finally:
            subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=ROOT, capture_output=True)
    s = rec.summary
    print(f"this tree: {s['this']['wall_s']['mean']:.2f} s wall ({s['this']['cpu_s']['mean']:.2f} CPU s); "
          f"{other[:7]}: {s['other']['wall_s']['mean']:.2f} s ({s['other']['cpu_s']['mean']:.2f} CPU s); per pair "
          f"{s['pair_ratio_wall']['min']:.2f}-{s['pair_ratio_wall']['max']:.2f}x wall")


if __name__ == "__main__":
    main()
