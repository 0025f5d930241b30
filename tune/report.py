"""Study report: Pareto-front plot, firing rate vs accuracy per surrogate, parameter importances and a
table of the Pareto trials (PNG + Markdown + CSV), and export of one trial for a board."""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

import numpy as np
import optuna
from optuna.trial import TrialState

from hw.config import ChipConfig, ConfigError
from hw.files import write_atomic, write_text
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
    try:
        write_atomic(path, lambda p: fig.savefig(p, dpi=120))
    finally:
        plt.close(fig)
    return path


def _write_csv(path: Path, rows: list[dict]) -> None:
    def write(p):
        with open(p, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=COLUMNS)
            w.writeheader()
            w.writerows(rows)
    write_atomic(path, write)


def _pm(v: tuple, fmt: str = ".3f") -> str:
    return f"{v[0]:{fmt}} ± {v[1]:{fmt.lstrip('+')}}"


def against_baseline(study: optuna.Study, b: dict, prow: list) -> list[str]:
    """The trade-off section: by the re-checked means over fresh seeds, paired with the baseline
    (:mod:`tune.recheck`), or — not re-checked — by the search's single draws, said so."""
    from tune.recheck import WITHIN, stored, summary
    rec = stored(study)
    pts = f"{100 * WITHIN:g}"
    md = ["", "## Against snnTorch defaults (beta 0.95, theta 1, arctan, BPTT)", ""]
    reb = summary(rec, b["trial"])
    re = {r["trial"]: (r, summary(rec, r["trial"], b["trial"])) for r in prow}
    re = {k: v for k, v in re.items() if v[1] is not None and k != b["trial"]}
    if reb:
        n = reb["n"]
        md += [f"Re-checked after the search on {n} fresh seeds (each seed: a new split, encoding, initial weights "
               "and fault instance, the same for every design: paired with the baseline); mean ± std over the seeds, "
               "validation set. The search's own single draw is in the last column.", "",
               "| trial | method / surrogate | seeds | val accuracy | Δ accuracy vs baseline (points, paired) | "
               "latency µs | Δ latency vs baseline (%, paired) | dead networks | search draw: accuracy, latency µs |",
               "|---|---|---|---|---|---|---|---|---|"]
        stopped = rec.get("stopped", {})
        for r, sm in [(b, reb)] + [re[k] for k in sorted(re)]:
            d = sm.get("d_val_accuracy")
            seeds = (f"{sm['n']} (stopped: below reach)" if str(r["trial"]) in stopped else f"{sm['n']}")
            md.append(f"| {r['trial']}{' (baseline)' if r is b else ''} | {r['method']} / {r['surrogate']} | "
                      f"{seeds} | {_pm(sm['val_accuracy'])} | "
                      f"{_pm((100 * d[0], 100 * d[1]), '+.1f') if d else '—'} | {_pm(sm['latency_us'], '.2f')} | "
                      f"{_pm(sm['d_latency_pct'], '+.1f') if d else '—'} | {sm['dead']} of {sm['n']} | "
                      f"{r['val_accuracy']:.3f}, {r['latency_us']:.2f} |")
        if stopped:
            md += ["", f"A trial marked *stopped* was re-run only until even a perfect accuracy on the remaining seeds "
                   f"could not bring its mean within {pts} points of the baseline's (`tune.recheck.out_of_reach`): "
                   "it cannot be the trade-off below, and its row rests on the seeds it ran."]
        ok = [k for k, (_, sm) in re.items() if sm["val_accuracy"][0] >= reb["val_accuracy"][0] - WITHIN
              and str(k) not in stopped]
        if not re:
            md += ["", "No Pareto trial besides the baseline was re-checked: no trade-off to report."]
        elif ok:
            k = min(ok, key=lambda k: re[k][1]["latency_us"][0])
            sm = re[k][1]
            md += ["", f"Best trade-off within {pts} points of the baseline's accuracy (by the re-checked means, "
                   f"{sm['paired_n']} seeds paired): trial {k}, accuracy {_pm(sm['val_accuracy'])} "
                   f"({100 * sm['d_val_accuracy'][0]:+.1f} ± {100 * sm['d_val_accuracy'][1]:.1f} points), latency "
                   f"{_pm(sm['latency_us'], '.2f')} µs ({_pm(sm['d_latency_pct'], '+.1f')} %)"
                   + (f"; dead on {sm['dead']} of {sm['n']} seeds" if sm["dead"] else "") + "."]
        else:
            md += ["", f"No re-checked Pareto trial stays within {pts} points of the baseline's re-checked accuracy "
                   f"({_pm(reb['val_accuracy'])} over {n} seeds): no trade-off to report."]
        return md
    within = [r for r in prow if r["val_accuracy"] >= b["val_accuracy"] - WITHIN and r["trial"] != b["trial"]]
    md += [f"baseline trial {b['trial']}: accuracy {b['val_accuracy']:.3f}, latency {b['latency_us']:.2f} µs."]
    if within:
        best = min(within, key=lambda r: r["latency_us"])
        md[-1] += (f" Best Pareto trade-off within {pts} points of its accuracy: trial {best['trial']} accuracy "
                   f"{best['val_accuracy']:.3f} ({best['val_accuracy'] - b['val_accuracy']:+.3f}), latency "
                   f"{best['latency_us']:.2f} µs ({100 * (best['latency_us'] / b['latency_us'] - 1):+.1f} %).")
    else:
        md[-1] += f" No other Pareto trial within {pts} points of its accuracy."
    md += ["", "**One draw each** (one split, one initialisation, one chip instance; not re-checked on fresh seeds: "
           "`[report] recheck_seeds` is 0, or the study was not run with `spikeloop study run`): a trade-off "
           "measured on one draw may not survive another seed."]
    return md


def preload() -> None:
    """Import what :func:`write_report` imports (matplotlib with its Agg backend, Optuna's fANOVA importances:
    ~0.6 s) ahead of it: the command's worker, once it has no trial left to take while the last ones run in
    the other workers, does it then instead of after them (:func:`tune.study._run_parallel`)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot  # noqa: F401
    import optuna.importance._fanova  # noqa: F401


#: how long :meth:`ReportProcess.close` lets the process end by itself before it is terminated, s
CLOSE_WAIT_S = 0.2


class ReportProcess:
    """The report of a study with several workers, written by a process of its own.

    Started beside the workers (:func:`tune.study.run_study`'s ``report``), a fork of the workers' fork server,
    at a lower CPU priority than theirs (nice + 5: about a quarter of a core beside two busy workers), it imports
    what :func:`write_report` needs (matplotlib, and Optuna's fANOVA importances, which import scikit-learn:
    about as much CPU time as importing torch) while they train, then waits; :meth:`write` has it write the
    report of the finished study. Those imports then cost the study their CPU time spread over its cores instead of their whole time serially after
    the last trial, in the command. (At the lowest priority they waited for an idle core, and a study whose
    workers end together has none before its end: measured, no gain.) A report process that failed, or never
    started, writes nothing: :meth:`write` returns None and the caller writes the report itself (and says any
    error in its one line).
    """

    def __init__(self, sc):
        self.sc = sc
        self._proc = self._conn = None

    def start(self) -> None:
        """Start the process (blocks while the fork server imports: call it from a thread that may wait)."""
        from tune.study import parent_state
        from tune.workers import worker_context
        ctx = worker_context()
        if ctx.get_start_method() != "forkserver":
            return                          # spawned, it would import everything itself: no gain
        conn, child = ctx.Pipe()
        proc = ctx.Process(target=_report_process, args=(child, self.sc, parent_state(), os.getpid()),
                           name="spikeloop-report", daemon=True)
        proc.start()
        child.close()
        self._proc, self._conn = proc, conn

    def write(self, out: Path) -> dict[str, Path] | None:
        """The report of the study as it is now, written into ``out`` by the process; None if it could not."""
        if self._conn is None:
            return None
        try:
            self._conn.send(str(out))
            ok, value = self._conn.recv()
        except (EOFError, OSError):
            ok, value = False, None
        self.close()
        return {k: Path(v) for k, v in value.items()} if ok else None

    def close(self) -> None:
        """End the process (it writes nothing more): at once if it is still importing or writing (a study that
        ended without a report to write, or a Ctrl-C during the report), not after waiting for it."""
        if self._proc is None:
            return
        try:
            self._conn.send(None)
        except (OSError, ValueError):
            pass
        self._conn.close()
        self._proc.join(timeout=CLOSE_WAIT_S)   # one waiting for its order ends on the None at once
        if self._proc.exitcode is None:
            self._proc.terminate()
            self._proc.join()
        self._proc = self._conn = None


def _report_process(conn, sc, state: dict, parent: int) -> None:
    """:class:`ReportProcess`'s body: a lower priority, the imports, then one report when asked. Its process name
    (``/proc/PID/comm``, Linux) is ``spikeloop-repor`` (15 characters), which tells it from the study workers."""
    import signal
    try:
        import ctypes
        ctypes.CDLL(None).prctl(15, b"spikeloop-report", 0, 0, 0)      # PR_SET_NAME
    except (OSError, AttributeError):
        pass
    signal.signal(signal.SIGINT, signal.SIG_IGN)          # the command handles Ctrl-C and ends this process
    from tune.study import _adopt, _exit_with_parent, close_storages, open_study
    _adopt(dict(state, sigint_ignored=True))
    _exit_with_parent(parent)
    try:
        os.nice(5)
    except OSError:
        pass
    try:
        preload()
        out = conn.recv()
        if out is None:
            return
        import warnings
        optuna.logging.set_verbosity(optuna.logging.ERROR)
        warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        paths = write_report(open_study(sc), Path(out))
        conn.send((True, {k: str(v) for k, v in paths.items()}))
    except BaseException:                       # the command writes the report itself, and says what is wrong
        try:
            conn.send((False, None))
        except (OSError, ValueError):
            pass
    finally:
        close_storages()


def write_report(study: optuna.Study, out: Path) -> dict[str, Path]:
    """The report's files in ``out``; a write that fails without naming its file (a full disk on flush)
    is re-raised naming the report folder."""
    try:
        return _write_report(study, out)
    except OSError as e:
        if e.filename is None and e.errno is not None:
            raise OSError(e.errno, e.strerror or str(e), str(out)) from e
        raise


def heartbeat_lines(study: optuna.Study) -> list[str]:
    """The report's paragraph on heartbeat lapses (:func:`tune.study.heartbeat_lapses`): trials failed for a
    lapsed heartbeat and run again, those whose worker was alive (duplicate work), the longest gap measured."""
    from tune.study import heartbeat_lapses
    h = heartbeat_lapses(study)
    if not h["lapsed"] and not h["discarded"] and h["max_gap_s"] is None:
        return []                                   # a study from before heartbeats were timed
    grace = "/".join(map(str, h["grace_s"])) or "?"
    text = (f"Heartbeats: {len(h['lapsed'])} trial{'s' if len(h['lapsed']) != 1 else ''} failed for a lapsed "
            f"heartbeat and run again" + (f" (trials {', '.join(map(str, h['lapsed']))}; grace {grace} s)"
                                          if h["lapsed"] else ""))
    text += (f"; {len(h['discarded'])} of them were still running in a live worker, which dropped its result: "
             f"duplicate work" + (f" (trials {', '.join(map(str, h['discarded']))})" if h["discarded"] else ""))
    if h["max_gap_s"] is not None:
        text += f". Longest heartbeat gap measured in a trial: {h['max_gap_s']:.1f} s"
    return ["", text + "."]


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
    _write_csv(paths["csv"], prow)
    paths["trials_csv"] = out / "trials.csv"
    _write_csv(paths["trials_csv"], rows)
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
    md += heartbeat_lines(study)
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
        from tune.recheck import stored, summary
        rec = stored(study)
        seeds_of = {t.number: len(t.user_attrs.get("seeds", [0])) for t in done}
        k = sorted(set(seeds_of.values()))
        md += ["", "## Mean per surrogate", "",
               f"Over the search's trials, each scored on {'/'.join(map(str, k))} training seed"
               f"{'s' if k != [1] else ''} (`[study] seeds_per_trial`): a mean over different designs as the search "
               "drew them, each design one draw — which surrogate the search found good designs with, not a "
               "measured lever. The last column: the trials of that surrogate re-checked after the search "
               "(mean validation accuracy over their fresh seeds, seeds per trial in brackets).", "",
               "| surrogate | trials | seeds per trial | val accuracy | firing rate | synops | re-checked val accuracy |",
               "|---|---|---|---|---|---|---|"]
        for s in sorted({r["surrogate"] for r in rows}):
            sel = [r for r in rows if r["surrogate"] == s]
            re_s = [summary(rec, r["trial"]) for r in sel]
            re_s = [(r, x) for r, x in zip(sel, re_s) if x is not None]
            re_txt = (", ".join(f"trial {r['trial']}: {x['val_accuracy'][0]:.3f} ({x['n']})" for r, x in re_s)
                      if re_s else "—")
            ks = sorted({seeds_of[r["trial"]] for r in sel})
            md.append(f"| {s} | {len(sel)} | {'/'.join(map(str, ks))} | {np.mean([r['val_accuracy'] for r in sel]):.3f} | "
                      f"{np.mean([r['firing_rate'] for r in sel]):.4f} | {np.mean([r['synops'] for r in sel]):.0f} | "
                      f"{re_txt} |")
        base = [t for t in done if t.user_attrs.get("baseline")]
        if base and not prow:
            md += ["", "No feasible trial yet (none beats the majority class): no trade-off to report."]
        if base and prow:
            md += against_baseline(study, _rows(base, True)[0], prow)
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
            k = max(len(t.user_attrs.get("seeds", [0])) for t in done)
            md += ["", "## Parameter importances (accuracy)", "",
                   f"From the search's values: {len(done)} completed trials, {k} training seed{'s' if k > 1 else ''} "
                   "per trial (`[study] seeds_per_trial`): each design's value is "
                   + ("one draw" if k == 1 else f"the mean of {k} draws") + "; fANOVA over those values. "
                   "Which parameters moved accuracy in "
                   "this search, not a measured lever — the re-checked table above is.", "",
                   "| parameter | importance |", "|---|---|"]
            md += [f"| {k} | {v:.3f} |" for k, v in imp.items()]
            fig, ax = plt.subplots(figsize=(6, 3.5))
            ax.barh(list(imp)[::-1], list(imp.values())[::-1])
            ax.set_xlabel("importance for accuracy (fANOVA)")
            fig.tight_layout()
            paths["importance_png"] = out / "importances.png"
            try:
                write_atomic(paths["importance_png"], lambda p: fig.savefig(p, dpi=120))
            finally:
                plt.close(fig)
        except (RuntimeError, ValueError) as e:
            md += ["", f"(parameter importances unavailable: {e})"]
    paths["markdown"] = out / "report.md"
    write_text(paths["markdown"], "\n".join(md) + "\n")
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
    write_text(Path(out) / "trial.json", json.dumps({"trial": number, "params": t.params, "values": t.values,
                                                       "user_attrs": t.user_attrs}, indent=1))
    return paths
