"""``spikeloop`` — the one command in front of hw, sim, train and tune.

It lives in the top floor (``tune``), the only package that may import all the others; each package
registers its own subcommands (:func:`hw.cli.register`: ``verilog``, ``synth``; :func:`sim.cli.register`:
``run``; :func:`train.cli.register`: ``train``; this module: ``study`` and ``dse`` (:mod:`tune.dse`)).
A user's mistake ends in one line on stderr and exit code 2; nothing the user did wrong ends in a traceback.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from hw.cli import nonempty, number, on_off
from hw.config import ConfigError


def _study_config(a: argparse.Namespace):
    from tune.config import StudyConfig
    sc = StudyConfig.load(a.config, {"storage": a.storage, "name": a.name, "n_trials": getattr(a, "n_trials", None),
                                     "out": getattr(a, "out", None),
                                     "max_consecutive_failures": getattr(a, "max_failures", None)})
    a.storage_url = sc.storage                  # for the one-line storage errors of main()
    return sc


def _no_feasible_line(study) -> str | None:
    from tune.objective import feasible
    done = [t for t in study.get_trials(deepcopy=False) if t.state.name == "COMPLETE"]
    if done and not any(feasible(t) for t in done):
        return (f"spikeloop: study {study.study_name!r}: no feasible trial yet ({len(done)} complete, none beats "
                "the majority class by the margin): the report lists them, without a best trial or Pareto front")
    return None


def cmd_study_run(a: argparse.Namespace) -> int:
    """`spikeloop study run`: run (or resume) the study, print its Pareto trials, write the report."""
    from hw.cli import check_writable
    if a.out:
        check_writable(a.out, "--out")          # as given: resolving it would follow a symbolic link to nothing
    global FAST_EXIT
    from contextlib import nullcontext
    from tune.workers import _thread_env, start_fork_server, thread_share
    started = False
    if a.jobs > 1:
        # before this command's own imports (torch, for the config) and data: the fork server's imports, the
        # head of the other workers, overlap them (tune.workers imports the standard library only)
        started = start_fork_server(a.jobs)
    try:
        # with --jobs N this command is worker 0: its thread pools (numba's and OpenMP's sized from the
        # environment when imported, below) are one worker's share of the cores, as the other workers' are
        with _thread_env(thread_share(a.jobs)) if a.jobs > 1 else nullcontext():
            code = _study_run(a)
        if started:                             # its workers and report process have ended; one that started none
            from tune.workers import stop_fork_server   # (a finished study resumed) still imports: not after exit
            stop_fork_server()
        FAST_EXIT = True                        # done: no interpreter teardown (entry)
        return code
    except BaseException:
        if started:                             # refused or stopped: the server, maybe still importing, ends now
            from tune.workers import stop_fork_server
            stop_fork_server()
        raise


def _study_run(a: argparse.Namespace) -> int:
    from tune.report import ReportProcess
    sc = _study_config(a)
    # with several workers the report is written by a process of its own that imports its modules beside them
    report = ReportProcess(sc) if a.jobs > 1 else None
    try:
        return _study_run_report(a, sc, report)
    finally:
        if report is not None:
            report.close()


def _study_run_report(a: argparse.Namespace, sc, report) -> int:
    from hw.cli import writing
    from tune.report import pareto_trials, write_report
    from tune.study import missing_trials, run_study
    study = run_study(sc, jobs=a.jobs, new=a.new, report=report)
    if sc.recheck_seeds and sc.objective == "multi" and not missing_trials(study, sc.n_trials):
        from tune.recheck import candidates, recheck
        n = len(candidates(study, sc))
        if n:
            print(f"re-checking {n} trial(s) (the baseline and the best Pareto trials) on {sc.recheck_seeds} fresh "
                  "seeds, paired ([report] recheck_seeds / recheck_trials)", flush=True)
            recheck(study, sc, jobs=a.jobs)
    done = [t for t in study.trials if t.state.name == "COMPLETE"]
    print(f"study {sc.name!r} in {sc.storage}: {len(done)} complete, "
          f"{sum(t.state.name == 'PRUNED' for t in study.trials)} pruned, "
          f"{sum(t.state.name == 'FAIL' for t in study.trials)} failed")
    for t in pareto_trials(study):
        vals = ", ".join(f"{v:.4g}" for v in t.values)
        theta = t.params.get("theta", t.params.get("threshold", 0))
        print(f"  Pareto trial {t.number}: {t.params.get('method')}/{t.params.get('surrogate')} "
              f"beta={t.params.get('beta', 0):.3f} theta={theta:.3f} -> ({vals})")
    line = _no_feasible_line(study)
    if line:
        print(line, file=sys.stderr)
    short = missing_trials(study, sc.n_trials)
    if done:
        with writing(sc.out / "report", "--out" if a.out else "[study] out"):
            paths = (report.write(sc.out / "report") if report else None) or write_report(study, sc.out / "report")
        print(f"report: {paths['markdown']}")
    elif study.trials and not short:                # (a study stopped short says so below)
        dead = sum("dead_network" in t.user_attrs for t in study.trials)
        print(f"spikeloop: study {sc.name!r}: no complete trial, so no report"
              + (f" ({dead} pruned as dead networks: see their dead_network attribute)" if dead else "")
              + "; run more trials with --n-trials", file=sys.stderr)
    if short:
        print(f"spikeloop: study {sc.name!r} stopped {short} trial(s) short of n_trials = {sc.n_trials}; completed "
              "trials are kept (run the same command again to go on)", file=sys.stderr)
        return 1
    return 0


def cmd_study_report(a: argparse.Namespace) -> int:
    """`spikeloop study report`: write the report of an existing study."""
    from hw.cli import check_writable, writing
    from tune.report import write_report
    from tune.study import existing_study
    sc = _study_config(a)
    study = existing_study(sc)                    # before any folder is made
    out = check_writable(a.report_dir or sc.out / "report", "--report-dir")
    line = _no_feasible_line(study)
    if line:
        print(line, file=sys.stderr)
    with writing(out, "--report-dir"):
        paths = write_report(study, out)
    for kind, p in paths.items():
        print(f"{kind:15s} {p}")
    return 0


def cmd_study_export(a: argparse.Namespace) -> int:
    """`spikeloop study export N`: trial N's weights, config, Verilog (and NIR with --nir)."""
    from hw.cli import check_writable, writing
    from tune.report import export_trial
    from tune.study import existing_study
    sc = _study_config(a)
    study = existing_study(sc)
    out = check_writable(a.dest or sc.out / f"export_{a.trial}", "--dest")
    with writing(out, "--dest"):
        paths = export_trial(study, a.trial, out, nir=a.nir)
    for kind, p in paths.items():
        print(f"{kind:18s} {p}")
    return 0


def cmd_study_dashboard(a: argparse.Namespace) -> int:
    """`spikeloop study dashboard`: optuna-dashboard over the study's storage, on 127.0.0.1 only."""
    from tune.dashboard import HOST, make_dashboard
    sc = _study_config(a)
    server = make_dashboard(sc, a.port)
    print(f"optuna-dashboard for study {sc.name!r} in {sc.storage}: http://{HOST}:{server.server_port}/dashboard "
          "(loopback only; Ctrl-C stops it)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def cmd_study_template(a: argparse.Namespace) -> int:
    """`spikeloop study template [--conv]`: print a complete, commented study TOML (:func:`tune.config.template`)."""
    from tune.config import template
    sys.stdout.write(template(conv=a.conv))
    return 0


def register(sub) -> None:
    """Add `spikeloop study` and its subcommands to the command line."""
    study = sub.add_parser("study", help="Optuna co-design studies: template, run, report, export, dashboard",
                           description="Optuna co-design studies. Start from `spikeloop study template > my.toml` "
                                       "(every key, commented), then `spikeloop study run --config my.toml`. "
                                       "Guide: docs/guides/studies.md")
    ssub = study.add_subparsers(dest="study_command", required=True)
    p = ssub.add_parser("template", help="print a complete, commented study TOML (every key the loader accepts)",
                        description="Print a complete, commented study TOML: every section and key `study run "
                                    "--config` accepts, the defaults filled in, optional keys commented out. "
                                    "Redirect it to a file, edit it, run it.",
                        epilog="example: spikeloop study template --conv > conv.toml && "
                               "spikeloop study run --config conv.toml --n-trials 4; docs: docs/guides/studies.md")
    p.add_argument("--conv", action="store_true",
                   help="a conv chip (digits as 1x8x8 images: conv 8 k3 p1, pool 2, fc 10) instead of the fc default")
    p.set_defaults(func=cmd_study_template)
    for name, fn, hlp in (("run", cmd_study_run, "run (or resume) a study"),
                          ("report", cmd_study_report, "write Pareto/importance plots and tables"),
                          ("export", cmd_study_export, "write a trial's weights, config and Verilog"),
                          ("dashboard", cmd_study_dashboard, "serve optuna-dashboard on 127.0.0.1")):
        p = ssub.add_parser(name, help=hlp, epilog="docs: docs/guides/studies.md"
                            + (" (the dashboard: docs/guides/interchange.md)" if name == "dashboard" else ""))
        p.add_argument("--config", help="study TOML; `spikeloop study template` prints every key with its default "
                                            "(docs/guides/studies.md); without it: the default study", type=nonempty)
        p.add_argument("--storage", help="Optuna storage URL, e.g. sqlite:///runs/s.db or postgresql://...",
                       type=nonempty)
        p.add_argument("--name", help="study name")
        p.set_defaults(func=fn)
        if name == "run":
            p.add_argument("--n-trials", type=number(int, 1, 100000), dest="n_trials",
                           help="total trials the study should have (1..100000)")
            p.add_argument("--jobs", type=number(int, 1, 256), default=1, help="worker processes here (1..256)")
            p.add_argument("--out", type=nonempty, help="artefact directory (default runs/<name>)")
            p.add_argument("--max-consecutive-failures", dest="max_failures", type=number(int, 1, 100000),
                           help="stop after this many failed trials in a row (1..100000; "
                                "[study] max_consecutive_failures, default 3)")
            p.add_argument("--new", action="store_true",
                           help="delete an existing study of this name (its trials) and start again")
        elif name == "report":
            p.add_argument("--report-dir", help="where the report goes (default: the study's out/report)",
                           type=nonempty)
        elif name == "dashboard":
            p.add_argument("--port", type=number(int, 1, 65535), default=8080,
                           help="TCP port on 127.0.0.1 (1..65535; default 8080)")
        else:
            p.add_argument("trial", type=number(int, 0), help="trial number (0..)")
            p.add_argument("--dest", type=nonempty, help="output directory (default: the study's out/export_<trial>)")
            p.add_argument("--nir", action="store_true", help="also write the network as NIR (model.nir)")


def cmd_dse_worker(a: argparse.Namespace) -> int:
    """``spikeloop dse --worker``: build whatever the build study in ``--storage`` has queued, then exit."""
    import optuna
    from hw.cli import check_writable
    from tune.dse import _pnr_worker
    from tune.pnr import STUDY, default_storage
    from tune.study import storage_for
    storage = a.storage or default_storage(Path(a.out) / "synth-cache")
    name = a.study or STUDY
    # a worker only takes builds a sweep queued: a misspelt storage or study is refused, not created empty
    names = optuna.get_all_study_names(storage=storage_for(storage, create=False))
    if name not in names:
        raise ConfigError(f"--study {name!r}: no such build study in {storage} (studies there: {names}); a sweep "
                          f"queues its builds there first: spikeloop dse --storage {storage}")
    out = check_writable(a.out, "--out")
    if a.jobs > 1:
        from concurrent.futures import ProcessPoolExecutor
        with ProcessPoolExecutor(max_workers=a.jobs) as ex:
            built = sum(f.result() for f in [ex.submit(_pnr_worker, storage, name, str(out / "synth-cache"), None)
                                             for _ in range(a.jobs)])
    else:
        built = _pnr_worker(storage, name, str(out / "synth-cache"), None)
    print(f"dse worker: built {built} here; no build left queued or running in study {name!r} of {storage}")
    return 0


def cmd_dse(a: argparse.Namespace) -> int:
    """`spikeloop dse`: synthesise and score the sweep, print the table and the estimator's error."""
    from hw.cli import check_writable
    from hw.synth import TARGETS
    from tune.config import check_name
    from tune.dse import Sweep, format_table, run_dse
    if a.study is not None:             # an empty name would fall back to the default build study unseen
        check_name(a.study, "--study")
    if a.worker:
        return cmd_dse_worker(a)
    targets = tuple(a.target or (TARGETS[0],))
    sw = Sweep(layer_sizes=a.sizes, lanes=tuple(a.lanes), weight_bits=tuple(a.weight_bits),
               membrane_bits=tuple(a.membrane_bits), overlap=tuple(a.overlap), update=tuple(a.update),
               wavefront=tuple(a.wavefront), max_steps=a.max_steps,
               targets=targets, clock_mhz=a.clock_mhz, batch=a.batch,
               steps=a.steps, density=a.density, seed=a.seed, seeds=tuple(a.seeds or ()), power=a.power)
    from hw.synth import size_problem
    too_big = [size_problem(c, t) for c in sw.configs() for t in targets]
    if all(too_big):                    # nothing could be built: refuse before any synthesis or scoring
        raise ConfigError(min(too_big, key=len))
    out = check_writable(a.out, "--out")
    rows = run_dse(sw, out, jobs=a.jobs, progress=not a.no_progress, storage=a.storage, study=a.study)
    print("\n".join(format_table(rows)))
    bad = [r for r in rows if r["status"] != "ok"]
    for r in bad:
        print(f"spikeloop: dse: {','.join(map(str, sw.layer_sizes))} lanes={r['lanes']} w{r['weight_bits']} "
              f"m{r['membrane_bits']} overlap={'on' if r['overlap'] else 'off'} update={r['update']}"
              f"{' wavefront=on' if r['wavefront'] else ''} on {r['target']}: "
              f"{r['status']}: {r['message']}", file=sys.stderr)
    from tune.dse import estimator_lines, fit_estimator
    for line in estimator_lines(fit_estimator([r for r in rows if r["status"] in ("ok", "timing")])):
        print(line)
    print(f"table: {out / 'dse.csv'}, {out / 'dse.json'}; Pareto plot: {out / 'pareto.png'}; synthesis cache: "
          f"{out / 'synth-cache'}")
    print("latency, logic cells, BRAM, DSP and Fmax are measured (fast model, nextpnr); energy and FPS/W are "
          f"estimated ({'RTL activity' if sw.power == 'rtl' else 'counter profile'} x per-primitive energies, "
          "docs/power.md)")
    return 1 if len(bad) == len(rows) else 0


def register_dse(sub) -> None:
    """Add `spikeloop dse` to the command line."""
    from hw.cli import sizes
    p = sub.add_parser("dse", help="design-space exploration: synthesise lanes x weight bits x membrane bits x overlap "
                                   "x update x wavefront, "
                                   "score latency at Fmax, area and FPS/W, Pareto plot",
                       epilog="docs: docs/dse.md, docs/guides/fpga.md#design-space-exploration, "
                              "docs/guides/synthesis.md (seed sweeps, builds shared through --storage), "
                              "docs/power.md (energy)")
    p.add_argument("--sizes", type=sizes, default=(30, 16, 2), help="layer sizes, e.g. 30,16,2")
    p.add_argument("--lanes", type=number(int, 1, 64), nargs="+", default=[2, 4, 8], help="lane counts (1..64; default 2 4 8)")
    p.add_argument("--weight-bits", dest="weight_bits", type=number(int, 2, 16), nargs="+", default=[4, 8],
                   help="weight widths (2..16; default 4 8)")
    p.add_argument("--membrane-bits", dest="membrane_bits", type=number(int, 4, 32), nargs="+", default=[16],
                   help="membrane widths (4..32; default 16)")
    from hw.config import ChipConfig
    p.add_argument("--overlap", nargs="+", type=on_off, metavar="{on,off}", default=[ChipConfig.overlap],
                   help="a layer's UPDATE overlapping the next layer's EVENT phase (default on)")
    from hw.config import MAX_STEPS_DEFAULT, MAX_STEPS_RANGE, UPDATE_MODES
    p.add_argument("--update", nargs="+", choices=UPDATE_MODES, default=[ChipConfig.update],
                   help="UPDATE schedules to sweep: every word, or only touched/hot words (docs/chip.md, \"Update by "
                        "touch\"; default all)")
    p.add_argument("--wavefront", nargs="+", type=on_off, metavar="{on,off}", default=[ChipConfig.wavefront],
                   help="--update touched: the touched chips with the layers as a dataflow (a membrane memory per "
                        "layer, no overlap), without or with (docs/chip.md, \"Wavefront\"; default off)")
    p.add_argument("--max-steps", dest="max_steps", type=number(int, *MAX_STEPS_RANGE), default=MAX_STEPS_DEFAULT,
                   help=f"--update touched: the longest sample in steps, at least --steps ({MAX_STEPS_RANGE[0]}.."
                        f"{MAX_STEPS_RANGE[1]}; default {MAX_STEPS_DEFAULT})")
    from hw.synth import TARGETS
    p.add_argument("--target", nargs="+", help=f"parts: {', '.join(TARGETS)} (default ice40-up5k)")
    p.add_argument("--clock-mhz", dest="clock_mhz", type=number(float, 0, 10_000, open_low=True),
                   help="run every design at this clock, MHz (0..10000, above 0; must not exceed its Fmax); default: "
                        "its post-route Fmax")
    p.add_argument("--batch", type=number(int, 1, 10_000), default=4, help="sample inputs scored (1..10000; default 4)")
    p.add_argument("--steps", type=number(int, 1, 100_000), default=16, help="time steps (1..100000; default 16)")
    p.add_argument("--density", type=number(float, 0, 1), default=0.2, help="input spike probability (0..1; default 0.2)")
    p.add_argument("--seed", type=number(int, 0, 2**32 - 1), default=0,
                   help="seed of the random inputs (0..2^32-1; default 0)")
    p.add_argument("--power", choices=("rtl", "fast"), default="rtl",
                   help="energy from the RTL's activity (exact, slow for big nets) or the calibrated counter model")
    from hw.cli import seeds
    p.add_argument("--seeds", type=seeds, default=None,
                   help="nextpnr placement seeds per structure, e.g. 1-8 or 1,4,9: every (structure, part, seed) is a "
                        "build; a structure is scored at its minimum Fmax over them (default: nextpnr's seed)")
    p.add_argument("--jobs", type=number(int, 1, 256), default=1, help="synthesis worker processes (1..256; default 1)")
    p.add_argument("--storage", type=nonempty, default=None,
                   help="Optuna storage of the build queue (default sqlite:///<out>/synth-cache/pnr.db); a "
                        "postgresql:// URL lets `spikeloop dse --worker` on other machines share the builds")
    p.add_argument("--study", default=None, help="name of the build study in --storage (default spikeloop-pnr)")
    p.add_argument("--worker", action="store_true",
                   help="only build what the study has queued (from any machine's sweep), then exit")
    p.add_argument("--out", type=nonempty, default="runs/dse", help="output directory (table, plot, synthesis cache)")
    p.add_argument("--no-progress", dest="no_progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_dse)


def _test_inputs(*args):
    from train.run import test_inputs
    return test_inputs(*args)


class Parser(argparse.ArgumentParser):
    """argparse with a one-line error (the usage is one ``--help`` away); subcommand parsers inherit it."""

    def error(self, message: str):
        """One line on stderr naming the mistake, exit code 2."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def parse_args(self, args=None, namespace=None):
        """As argparse's, but unrecognised arguments are reported against the subcommand that was given
        (``spikeloop study report: error: unrecognized arguments: --out o (see spikeloop study report --help)``):
        argparse leaves them to the top parser, whose help does not list the subcommand's options."""
        a, extras = self.parse_known_args(args, namespace)
        if extras:
            words = [self.prog] + [c for c in (getattr(a, "command", None), getattr(a, "study_command", None)) if c]
            prog = " ".join(words)
            self.exit(2, f"{prog}: error: unrecognized arguments: {' '.join(extras)} (see {prog} --help)\n")
        return a


def _version() -> str:
    """The installed distribution's version (pyproject.toml), or "unknown" when run from a tree not installed."""
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("spikeloop")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """The `spikeloop` parser with every floor's subcommands."""
    import hw.cli
    import sim.cli
    import train.cli
    ap = Parser(prog="spikeloop", description=__doc__.split("\n\n")[0].replace("``", ""), allow_abbrev=False,
                epilog="`spikeloop COMMAND --help` lists every option with its allowed range. docs: "
                       "docs/getting-started.md (a tour of every command), docs/index.md (the site)")
    ap.add_argument("--version", action="version", version=f"spikeloop {_version()}")
    sub = ap.add_subparsers(dest="command", required=True)
    sim.cli.register(sub)
    sub.choices["run"].set_defaults(dataset_inputs=_test_inputs)   # the top floor hands `run` its dataset loader
    hw.cli.register(sub)
    train.cli.register(sub)
    register(sub)
    register_dse(sub)
    return ap


def _sigterm_interrupts() -> None:
    """SIGTERM ends the command as Ctrl-C does (the one line below, made folders removed), from its first moment,
    not only once a study's trials run (:func:`tune.study.run_study` has its own handler, which also stops its
    workers); only where SIGTERM has its default action, and only in the main thread."""
    import signal
    import threading
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def handler(signum, frame):
        raise KeyboardInterrupt("stopped by signal SIGTERM")
    signal.signal(signal.SIGTERM, handler)


#: main() runs as the console command (entry), not called from Python (the tests' ``cli``): its process ends with it
_AS_COMMAND: list[bool] = []


def _later_stops_end_the_process(code: int) -> None:
    """Interrupted, in the console command: a later SIGINT or SIGTERM (Ctrl-C pressed again, a supervisor's SIGTERM
    after a Ctrl-C) ends the process at once with ``code``. It raised its KeyboardInterrupt in the clean-up instead
    (a study's SQLAlchemy pool disposal at exit, the thread joins of :func:`exit_now`): a traceback under the
    command's one line, and exit -2 where it left the clean-up."""
    import signal
    import threading
    if not _AS_COMMAND or threading.current_thread() is not threading.main_thread():
        return

    def handler(signum, frame):
        for f in (sys.stdout, sys.stderr):
            try:
                f.flush()
            except (OSError, ValueError, RuntimeError):      # RuntimeError: a write it interrupted (reentrant)
                pass
        os._exit(code)
    for sig in (signal.SIGINT, signal.SIGTERM):
        if signal.getsignal(sig) is not signal.SIG_IGN:
            signal.signal(sig, handler)


def main(argv: list[str] | None = None) -> int:
    """Run `spikeloop ARGV`; a user's mistake (ConfigError) is one line on stderr and exit code 2."""
    _sigterm_interrupts()
    try:
        a = build_parser().parse_args(argv)
        if a.command in ("study", "dse"):          # both drive Optuna storages (dse: its build queue)
            import warnings
            import optuna
            optuna.logging.set_verbosity(optuna.logging.WARNING)
            warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
        from hw.cli import MADE_DIRS, remove_made_dirs
        from train.common import one_line_warnings
        from tune.errors import explain
    except KeyboardInterrupt as e:      # Ctrl-C or SIGTERM while the command still imports: the same one line
        _later_stops_end_the_process(130)
        from tune.errors import explain
        code, line = explain(e)
        print(line, file=sys.stderr)
        return code
    one_line_warnings()
    MADE_DIRS.clear()
    try:
        return a.func(a)
    except BaseException as e:            # the one place an exception becomes the line a user sees
        if isinstance(e, KeyboardInterrupt):
            _later_stops_end_the_process(130)
        remove_made_dirs()                # a refused or failed command leaves no empty output folder it made
        known = explain(e, getattr(a, "storage_url", None))
        if known is None:
            raise
        print(known[1], file=sys.stderr)
        return known[0]


#: set by a command whose work is done (today ``study run``): :func:`entry` then ends the process at once
FAST_EXIT = False


def exit_now(code: int) -> None:
    """End the process with ``code`` the quick way: non-daemon threads joined, the ``atexit`` handlers run (the
    fork server and worker clean-up of multiprocessing, temporary folders, logging), standard streams flushed,
    then ``os._exit`` without the interpreter's teardown: after a study that teardown (torch,
    numba, SQLAlchemy, Optuna modules and their objects) took 1.3 s of wall time, serial in every run, one worker
    or several (bench/bench_study.py)."""
    import atexit
    import threading
    for t in threading.enumerate():
        if t is not threading.current_thread() and not t.daemon:
            t.join()
    atexit._run_exitfuncs()
    for f in (sys.stdout, sys.stderr):
        try:
            f.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)


def entry() -> None:
    """The console command ``spikeloop`` and ``python -m tune.cli``: :func:`main`, then the exit (quick after a
    command that set :data:`FAST_EXIT`; an exception, e.g. argparse's exit or a traceback, leaves the usual way)."""
    _AS_COMMAND.append(True)
    try:
        code = main()
    except KeyboardInterrupt as e:      # a stop signal main() had not caught yet (in its first instructions)
        _later_stops_end_the_process(130)
        from tune.errors import explain
        code, line = explain(e)
        print(line, file=sys.stderr)
    if FAST_EXIT or code == 130:        # interrupted: its one line said, the exit code is 130 whatever the teardown
        exit_now(code)                  # meets (a later signal ends it at once: _later_stops_end_the_process)
    sys.exit(code)


if __name__ == "__main__":
    entry()
