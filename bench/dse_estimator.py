"""Does the fitted area / Fmax estimator earn its place? Its leave-one-out error against the mean-of-others
baseline on the structures a `spikeloop dse` sweep synthesised, as a record.

    python -m bench.dse_estimator --dse docs/experiments/dse/dse.json --publish

Reads the sweep's ``dse.json`` (nothing is built), fits :func:`tune.dse.fit_estimator` and keeps, per part and
metric, the model's and the baseline's leave-one-out mean / max absolute relative error and whether the model
beats the baseline; every held-out prediction is a round. Render with ``<!-- render dse_estimator table -->``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.records import Recorder, add_record_args  # noqa: E402


def _table(record: dict) -> str:
    lines = ["| part | structures | metric | model: LOO mean / max error | mean of the others: LOO mean / max | "
             "estimate kept |", "|---|---|---|---|---|---|"]
    for t, m in record["summary"]["estimator"].items():
        for k in ("logic_cells", "luts", "ffs", "fmax_mhz"):
            e = m[k]
            lines.append(f"| {t} | {m['n']} | {k} | {e['loo_mean_abs_rel']:.1%} / {e['loo_max_abs_rel']:.1%} | "
                         f"{e['baseline_loo_mean_abs_rel']:.1%} / {e['baseline_loo_max_abs_rel']:.1%} | "
                         f"{'yes' if e['beats_baseline'] else '**no**'} |")
    return "\n".join(lines)


VIEWS = {"table": _table}


def main(argv=None) -> int:
    import numpy as np
    from tune.dse import ESTIMATED, estimator_features, fit_estimator
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dse", default="docs/experiments/dse/dse.json", help="a spikeloop dse sweep's dse.json")
    ap.add_argument("--name", default="dse_estimator")
    add_record_args(ap)
    a = ap.parse_args(argv)
    try:
        sweep = json.loads(Path(a.dse).read_text())
        rows = [r for r in sweep["rows"] if r["status"] in ("ok", "timing")]
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"dse_estimator: --dse {a.dse}: not a dse.json ({type(e).__name__})", file=sys.stderr)
        return 2
    model = fit_estimator(rows)
    if not model:
        print(f"dse_estimator: --dse {a.dse}: fewer than 3 synthesised structures per part", file=sys.stderr)
        return 1
    with Recorder(a.name, args=a, seeds=[sweep["sweep"].get("seed", 0)], script=__file__,
                  params={"dse": a.dse, "sweep": sweep["sweep"], "features": next(iter(model.values()))["features"]}) as rec:
        for t in model:
            ok = [r for r in rows if r["target"] == t]
            X = estimator_features(ok)[0]                               # as fit_estimator
            for k in ESTIMATED:
                y = np.array([float(r[k]) for r in ok])
                for i, r in enumerate(ok):
                    keep = np.arange(len(ok)) != i
                    c = np.linalg.lstsq(X[keep], y[keep], rcond=None)[0]
                    rec.round(target=t, metric=k, lanes=r["lanes"], weight_bits=r["weight_bits"], measured=y[i],
                              model=float(X[i] @ c), mean_of_others=float(y[keep].mean()))
        rec.summary["estimator"] = model
    print(_table({"summary": {"estimator": model}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
