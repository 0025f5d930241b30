"""Study report: Pareto-front plot, firing rate vs accuracy per surrogate, parameter importances and a
table of the Pareto trials (PNG + Markdown + CSV), and export of one trial for a board."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import TrialState

from hw.config import ChipConfig, ConfigError
from tune.objective import feasible

COLUMNS = ("trial", "method", "surrogate", "surrogate_scale_factor", "beta", "theta", "val_accuracy",
           "test_accuracy", "latency_us", "fps_per_watt", "energy_nj", "firing_rate", "synops")


def _rows(trials, multi: bool):
    rows = []
    for t in trials:
        p, a = t.params, t.user_attrs
        rows.append({"trial": t.number, "method": p.get("method"), "surrogate": p.get("surrogate"),
                     "surrogate_scale_factor": p.get("surrogate_scale_factor", 1.0), "beta": p.get("beta"),
                     "theta": p.get("theta", p.get("threshold")),   # studies before the rename
                     # measured objectives: user attributes (any study), else the values (multi-objective)
                     "val_accuracy": a.get("val_accuracy", t.values[0] if multi else None),
                     "test_accuracy": a.get("test_accuracy"),
                     "latency_us": a.get("latency_us", t.values[1] if multi else None),
                     "fps_per_watt": a.get("fps_per_watt", t.values[2] if multi else None),
                     "energy_nj": a.get("energy_nj"),
                     "firing_rate": a.get("firing_rate"), "synops": a.get("synops")})
    return rows


def _front(trials):
    """Non-dominated trials for (accuracy max, latency min, FPS/W max)."""
    def dominates(a, b):
        x = (a.values[0], -a.values[1], a.values[2])
        y = (b.values[0], -b.values[1], b.values[2])
        return all(p >= q for p, q in zip(x, y)) and x != y
    return [t for t in trials if not any(dominates(o, t) for o in trials)]


def pareto_trials(study: optuna.Study) -> list:
    """Feasible completed trials on the Pareto front (multi-objective), or the best trial (weighted)."""
    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if feasible(t)]
    if len(study.directions) != 3:       # weighted: the best feasible trial (none: no best trial yet)
        sign = 1 if study.direction == optuna.study.StudyDirection.MAXIMIZE else -1
        return [max(done, key=lambda t: sign * t.value)] if done else []
    return _front(done)


def _fmt(v):
    if isinstance(v, float):
        return f"{v:.4g}"
    return "" if v is None else str(v)


def _save(fig, ax, path: Path, xlabel: str, title: str) -> Path:
    """Label (y: on-chip validation accuracy), legend, grid, save as PNG and close."""
    import matplotlib.pyplot as plt
    ax.set_xlabel(xlabel)
    ax.set_ylabel("on-chip validation accuracy")
    ax.set_title(title)
    ax.legend()
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_report(study: optuna.Study, out: Path) -> dict[str, Path]:
    """The report's files in ``out``; a write that fails without naming its file (a full disk on flush)
    is re-raised naming the report folder."""
    try:
        return _write_report(study, out)
    except OSError as e:
        if e.filename is None and e.errno is not None:
            raise OSError(e.errno, e.strerror or str(e), str(out)) from e
        raise


def _write_report(study: optuna.Study, out: Path) -> dict[str, Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not done:
        raise ConfigError(f"study {study.study_name!r}: no completed trials to report")
    multi = len(study.directions) == 3
    paths = {}
    rows = _rows(done, multi)
    ok = [t for t in done if feasible(t)]
    pareto = {t.number for t in pareto_trials(study)}
    prow = [r for r in rows if r["trial"] in pareto]
    paths["csv"] = out / "pareto.csv"
    with open(paths["csv"], "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(prow)
    with open(out / "trials.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(_fmt(r[c]) for c in COLUMNS) + " |" for r in sorted(prow, key=lambda r: -r["val_accuracy"] if r["val_accuracy"] is not None else 0)]
    which = ("Pareto trials among the feasible:" if multi else "the best feasible trial:") if ok else \
        f"no feasible trial yet: no {'Pareto front' if multi else 'best trial'} to report (all trials are in trials.csv)."
    md = [f"# Study {study.study_name}", "", f"{len(done)} completed trials, {len(ok)} feasible (better than "
          f"the majority class); {which}", ""] + (lines if ok else []) + [
        "", "`fps_per_watt` and `energy_nj` are **estimates**: the chip's activity counters × the study's device "
        "profile (`sim/power.py`: fitted to the RTL's activity; which per-primitive figures are measured and which "
        "assumed is in `docs/power.md`). Latency is cycles (exact) at the profile's clock, or at the post-route "
        "Fmax with `[hardware] fits`."]
    if multi:
        acc = np.array([r["val_accuracy"] for r in rows])
        lat = np.array([r["latency_us"] for r in rows])
        fpw = np.array([r["fps_per_watt"] for r in rows])
        fig, ax = plt.subplots(figsize=(6.5, 4.5))
        sc = ax.scatter(lat, acc, c=fpw, cmap="viridis", s=30)
        pm = np.array([r["trial"] in pareto for r in rows])
        ax.scatter(lat[pm], acc[pm], facecolors="none", edgecolors="red", s=90, label="Pareto front (feasible)")
        fig.colorbar(sc, label="FPS/W (estimated)")
        paths["pareto_png"] = _save(fig, ax, out / "pareto.png", "latency per inference (µs)",
                                    f"{study.study_name}: accuracy vs latency")
        fig, ax = plt.subplots(figsize=(6.5, 4.5))
        for s in sorted({r["surrogate"] for r in rows}):
            sel = [r for r in rows if r["surrogate"] == s]
            ax.scatter([r["firing_rate"] for r in sel], [r["val_accuracy"] for r in sel], label=s, s=30)
        paths["firing_png"] = _save(fig, ax, out / "firing_rate_vs_accuracy.png",
                                    "mean firing rate (spikes / neuron / step)", "firing rate vs accuracy per surrogate")
        md += ["", "## Mean per surrogate", "", "| surrogate | trials | val accuracy | firing rate | synops |",
               "|---|---|---|---|---|"]
        for s in sorted({r["surrogate"] for r in rows}):
            sel = [r for r in rows if r["surrogate"] == s]
            md.append(f"| {s} | {len(sel)} | {np.mean([r['val_accuracy'] for r in sel]):.3f} | "
                      f"{np.mean([r['firing_rate'] for r in sel]):.4f} | {np.mean([r['synops'] for r in sel]):.0f} |")
        base = [t for t in done if t.user_attrs.get("baseline")]
        if base and not prow:
            md += ["", "No feasible trial yet (none beats the majority class): no trade-off to report."]
        if base and prow:
            b = _rows(base, True)[0]
            best = max(prow, key=lambda r: (r["val_accuracy"] >= b["val_accuracy"] - 0.03, -r["latency_us"]))
            md += ["", "## Against snnTorch defaults (beta 0.95, theta 1, arctan, BPTT)", "",
                   f"baseline trial {b['trial']}: accuracy {b['val_accuracy']:.3f}, latency {b['latency_us']:.2f} µs; "
                   f"best Pareto trade-off within 3 points of its accuracy: trial {best['trial']} accuracy "
                   f"{best['val_accuracy']:.3f} ({best['val_accuracy'] - b['val_accuracy']:+.3f}), latency "
                   f"{best['latency_us']:.2f} µs ({100 * (best['latency_us'] / b['latency_us'] - 1):+.1f} %)"]
    nb_rows = [t for t in done if "nb_synops" in t.user_attrs]
    nb_which = "Pareto trials" if any(t.number in pareto for t in nb_rows) else "all trials (no Pareto trial yet)"
    nb_rows = [t for t in nb_rows if t.number in pareto] or nb_rows
    if nb_rows:
        md += ["", f"## Chip counters beside NeuroBench 2.x ({nb_which}, validation set, per sample)", "",
               "synops: the chip counts every (event, neuron) pair; non-zero: only pairs with a non-zero weight, "
               "NeuroBench's definition (its Effective_ACs on the snnTorch mirror of the same weights and inputs).",
               "", "| trial | synops (chip) | synops non-zero (chip) | synops (NeuroBench) | activation sparsity "
               "(chip / NeuroBench) | footprint bytes (chip / NeuroBench float32) |", "|---|---|---|---|---|---|"]
        for t in sorted(nb_rows, key=lambda t: t.number):
            a = t.user_attrs
            md.append(f"| {t.number} | {a.get('synops', 0):.1f} | {a['synops_nonzero']:.1f} | {a['nb_synops']:.1f} | "
                      f"{a['activation_sparsity']:.5f} / {a['nb_activation_sparsity']:.5f} | "
                      f"{a['footprint_bytes']} / {a['nb_footprint_bytes']} |")
    if len(done) >= 4:
        try:
            target = (lambda t: t.values[0]) if multi else None
            imp = optuna.importance.get_param_importances(
                study, target=target, evaluator=optuna.importance.FanovaImportanceEvaluator(seed=0))
            md += ["", "## Parameter importances (accuracy)", "", "| parameter | importance |", "|---|---|"]
            md += [f"| {k} | {v:.3f} |" for k, v in imp.items()]
            fig, ax = plt.subplots(figsize=(6, 3.5))
            ax.barh(list(imp)[::-1], list(imp.values())[::-1])
            ax.set_xlabel("importance for accuracy (fANOVA)")
            fig.tight_layout()
            paths["importance_png"] = out / "importances.png"
            fig.savefig(paths["importance_png"], dpi=120)
            plt.close(fig)
        except (RuntimeError, ValueError) as e:
            md += ["", f"(parameter importances unavailable: {e})"]
    paths["markdown"] = out / "report.md"
    paths["markdown"].write_text("\n".join(md) + "\n")
    return paths


def export_trial(study: optuna.Study, number: int, out: Path, nir: bool = False) -> dict[str, Path]:
    """Write a trial's design (Verilog, memory images, config) and, with ``nir``, ``model.nir``."""
    from hw.export import export_design
    from train.common import TrainResult
    trials = [t for t in study.get_trials(deepcopy=False) if t.number == number]
    if not trials:
        raise ConfigError(f"trial {number}: not in study {study.study_name!r} "
                          f"(trials 0..{len(study.trials) - 1})")
    t = trials[0]
    if t.state != TrialState.COMPLETE or "artefacts" not in t.user_attrs:
        raise ConfigError(f"trial {number}: state {t.state.name}, has no artefacts to export")
    art = Path(t.user_attrs["artefacts"])
    if not (art / "result.json").exists():
        where = "" if art.is_absolute() else " (a relative path, from a study made before paths were stored " \
                                             "absolute: run this from the directory the study ran in)"
        raise ConfigError(f"trial {number}: its artefacts {art} are missing{where}")
    try:
        r = TrainResult.load(art / "result")
        cfg = ChipConfig.from_dict(r.chip_config)
        cfg.check_weights(r.chip_weights)
    except Exception as e:      # any damage to the files (truncated, edited, wrong arrays): name them
        from tune.errors import first_line
        raise ConfigError(f"trial {number}: its artefacts {art / 'result'}.* cannot be read "
                          f"({type(e).__name__}: {first_line(e, 200)}); run the trial again or export another") from e
    paths = export_design(cfg, Path(out), r.chip_weights)
    if nir:
        from train.nir import export_nir
        paths["nir"] = export_nir(Path(out) / "model.nir", cfg, r.chip_weights)
    (Path(out) / "trial.json").write_text(json.dumps({"trial": number, "params": t.params, "values": t.values,
                                                       "user_attrs": t.user_attrs}, indent=1))
    return paths
