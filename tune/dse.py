"""``spikeloop dse``: design-space exploration on synthesised area and Fmax.

A sweep is the product ``lanes x weight_bits x membrane_bits x overlap x update x wavefront`` (the wavefront for
touched chips only; a wavefront chip has no overlap, so its overlap values are one structure) for one network
(``layer_sizes``) and one or more parts (:data:`hw.synth.TARGETS`). Each distinct *structure* (``ChipConfig.structure_hash``) is
synthesised, placed and routed once per part; the result — nextpnr's resource counts and post-route Fmax,
or the reason it does not build — is cached on disk under ``<out>/synth-cache/<part>/<hash>.json`` and
reused by every later run (and by a study's ``fits`` constraint). Distinct structures are built by
``jobs`` worker processes.

A build that fails says why in one line: ``needs N <resource>, <part> has M`` from nextpnr's utilisation
report when the structure does not fit (:func:`hw.synth.over_capacity`), else the first error of nextpnr's or Yosys's log. On ECP5 a Yosys
0.70 assertion in ABC9 (seen on some structures) is answered by one more build with ``synth_ecp5 -dff``; the
record's ``synth_opts`` and ``message`` say so.

Each point is then scored: cycles per sample from the fast model (bit- and cycle-exact with the RTL) on
seeded sample inputs (for ``update = "touched"`` the touched schedule's cycles, :mod:`sim.lazy`, with or without
overlap as an ``"all"`` chip; with ``wavefront`` the wavefront schedule's, :func:`sim.lazy.wavefront_cycles`),
latency at the post-route Fmax (or at ``clock_mhz``, which must not exceed it), logic cells, BRAM, DSP, and energy / FPS/W from :func:`sim.activity.estimate_energy` (static from the part's
figure, dynamic from the design's activity; see :mod:`sim.activity` for what is measured and what is
assumed). :func:`fit_estimator` fits logic cells, LUTs, FFs and Fmax to the structures synthesised, with
its leave-one-out error against nextpnr.
"""
from __future__ import annotations

import itertools
import json
import os
import shutil
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from hw.config import MAX_STEPS_DEFAULT, ChipConfig, ConfigError

#: bump when the cached record's meaning changes (old entries are then rebuilt)
CACHE_VERSION = 1


def check_target(target: str) -> str:
    """``target`` if it is a part :mod:`hw.synth` builds for, else a one-line ConfigError listing them."""
    from hw.synth import TARGETS
    if target not in TARGETS:
        raise ConfigError(f"target={target!r}: unknown part; allowed values are {', '.join(TARGETS)}")
    return target


def rtl_hash() -> str:
    """SHA-256 of the sources that define the synthesised design (the board top and all it contains): a
    cached record from other RTL is rebuilt. Tool options (``hw/synth.py``) are not part of it."""
    import hashlib
    import hw
    h = hashlib.sha256()
    root = Path(hw.__file__).parent
    for p in sorted(root.rglob("*.py")):          # hw/ and its subpackages (hw/core/ ...)
        if p.relative_to(root).as_posix() not in ("cli.py", "export.py", "synth.py", "__init__.py"):
            h.update(p.relative_to(root).as_posix().encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


def cache_path(cache: Path, cfg: ChipConfig, target: str, seed: int | None = None) -> Path:
    """``<cache>/<part>/<structure hash>.json`` (nextpnr's default seed) or ``...<hash>-seed<k>.json``."""
    return Path(cache) / target / f"{cfg.structure_hash}{'' if seed is None else f'-seed{seed}'}.json"


def _failure(logs: Path, target: str, error: str) -> tuple[str, str]:
    """``(status, one-line reason)`` of a failed build from its logs (nextpnr's, then yosys's)."""
    tim, rpt = logs / target / "top.tim", logs / target / "top.rpt"
    from hw.synth import device_of, over_capacity
    why = "; ".join(over_capacity(tim.read_text(errors="replace"), device_of(target))) if tim.exists() else ""
    if why:
        return "does_not_fit", why
    for log, tool in ((tim, "nextpnr"), (rpt, "yosys")):
        if log.exists():
            errs = [l.strip() for l in log.read_text(errors="replace").splitlines() if "ERROR" in l]
            if errs:
                return "failed", f"{tool}: {errs[0][:300]}"
    return ("does_not_fit" if "does not fit" in error else "failed"), error


def synth_cached(cfg: ChipConfig, target: str, cache: Path, synth: Callable | None = None,
                 seed: int | None = None) -> dict:
    """The synthesis record of ``cfg``'s structure on ``target``: from the cache, else built now and cached.

    A record has ``status`` ``"ok"`` (with the :class:`hw.synth.SynthReport` fields), ``"does_not_fit"`` or
    ``"failed"`` (with ``message``), ``cached`` (whether this call found it on disk) and ``seconds``.
    ``synth`` replaces :func:`hw.synth.synthesize` (tests); ``seed`` is nextpnr's placement seed (None: its default).
    The record is written atomically (a temporary file renamed over it), so a reader — or a worker killed
    mid-build — never leaves or sees a torn entry."""
    from hw.synth import SynthError, size_problem, synthesize
    check_target(target)
    too_big = size_problem(cfg, target)
    if too_big:                                     # found without a build: not cached
        return {"status": "does_not_fit", "message": too_big, "cached": False, "seconds": 0.0, "target": target,
                "seed": seed}
    path = cache_path(cache, cfg, target, seed)
    if path.exists():
        try:
            rec = json.loads(path.read_text())
            if rec.get("cache_version") == CACHE_VERSION and rec.get("rtl") == rtl_hash():
                if rec["status"] != "ok" and path.with_suffix("").exists():     # today's reading of its logs
                    rec["status"], rec["message"] = _failure(path.with_suffix(""), target, rec["message"])
                return rec | {"cached": True}
        except (json.JSONDecodeError, OSError):
            pass                                   # a torn write: build again
    # <hash>.<pid>/ while building (parallel workers may build the same structure), then <hash>/ (the logs)
    build = path.parent / f"{path.stem}.{os.getpid()}"
    t0 = time.perf_counter()
    structure = cfg.structure()
    rec, opts, first_error = None, "", ""
    for attempt in range(2):
        try:
            kw = ({"synth_opts": opts} if opts else {}) | ({"seed": seed} if seed is not None else {})
            rep = (synth or synthesize)(structure, target, build, **kw)
            rec = {"status": "ok"} | rep.to_dict() | {"bitstream": ""}     # the build is not kept
            rec["layer_sizes"] = list(rec["layer_sizes"])
            if opts:
                rec["message"] = f"built with yosys {opts} (default flow: {first_error})"
            break
        except SynthError as e:
            status, why = _failure(build, target, str(e).splitlines()[0] if str(e) else repr(e))
            rec = {"status": status, "message": why}
            # a Yosys 0.70 bug seen here on ECP5 (an assertion in ABC_OPS_REINTEGRATE after abc9; -nolutram and
            # -nowidelut do not avoid it, abc9 with -dff does): build once more with -dff, and say so
            # (also when Yosys died without a word: its ABC pass has overflowed the WebAssembly stack on ECP5 once)
            yosys_died = not (build / target / "top.tim").exists()
            if attempt == 0 and target.startswith("ecp5") and ("yosys: ERROR: Assert" in why or yosys_died):
                opts, first_error = "-dff", why
                shutil.rmtree(build, ignore_errors=True)
                continue
            break
    rec["synth_opts"] = opts
    rec |= {"cache_version": CACHE_VERSION, "rtl": rtl_hash(), "target": target, "seed": seed,
            "structure": structure.to_dict(),
            "structure_hash": cfg.structure_hash, "seconds": time.perf_counter() - t0}
    rec["structure"]["layer_sizes"] = list(rec["structure"]["layer_sizes"])
    rec["structure"]["beta"] = list(rec["structure"]["beta"])
    rec["structure"]["threshold"] = list(rec["structure"]["threshold"])
    # keep the logs (top.tim: nextpnr, top.rpt: yosys); drop netlists and bitstreams
    if build.exists():
        for p in build.rglob("*"):
            if p.is_file() and p.suffix not in (".tim", ".rpt"):
                p.unlink()
        logs = path.with_suffix("")
        shutil.rmtree(logs, ignore_errors=True)
        build.rename(logs)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(rec, indent=1))
    tmp.replace(path)
    return rec | {"cached": False}


def _pnr_worker(storage: str, name: str, cache: str, keys: list[str]) -> int:
    from tune.pnr import open_queue, work
    return work(open_queue(storage, name), Path(cache), keys=keys)


def synth_all(cfgs: Sequence[ChipConfig], targets: Sequence[str], cache: Path, jobs: int = 1,
              progress: bool = True, synth: Callable | None = None, seeds: Sequence[int | None] = (None,),
              storage: str | None = None, study: str | None = None) -> dict[tuple[str, str, int | None], dict]:
    """Synthesis records keyed by ``(structure_hash, target, seed)``: every distinct build of the sweep queued once
    as a trial of the build study (:mod:`tune.pnr`; ``storage`` default ``sqlite:///<cache>/pnr.db``) and built by
    ``jobs`` processes here plus any ``spikeloop dse --worker`` on other machines sharing the storage; returns when
    all of them are done. A build done before this call (in the study or the on-disk cache) has ``cached`` true.
    ``synth`` — a test double — runs in this process."""
    from tune.pnr import STUDY, build_key, default_storage, enqueue, open_queue, results, work
    cache = Path(cache)
    cache.mkdir(parents=True, exist_ok=True)
    storage = storage or default_storage(cache)
    name = study or STUDY
    rtl = rtl_hash()
    todo, seen = [], set()
    for cfg in cfgs:
        for t in targets:
            for seed in seeds:
                key = (cfg.structure_hash, t, seed)
                if key not in seen:
                    seen.add(key)
                    todo.append((cfg, t, seed))
    keys = {k: build_key(k[0], k[1], k[2], rtl) for k in seen}
    q = open_queue(storage, name)
    before = set(results(q))
    enqueue(q, todo, rtl)
    from tqdm import tqdm
    bar = tqdm(total=len(todo), desc="synthesis", unit="build", disable=not progress, dynamic_ncols=True)

    def tick(n_done: int):
        bar.n = n_done
        bar.refresh()
    try:
        if jobs <= 1 or synth is not None or len(todo) <= 1:
            work(q, cache, synth, keys=list(keys.values()), progress=tick)
        else:
            with ProcessPoolExecutor(max_workers=jobs - 1) as ex:
                futs = [ex.submit(_pnr_worker, storage, name, str(cache), list(keys.values())) for _ in range(jobs - 1)]
                work(q, cache, keys=list(keys.values()), progress=tick)
                for f in futs:
                    f.result()
    finally:
        bar.close()
    done = results(q)
    return {k: done[v] | {"cached": v in before or done[v].get("cached", False)} for k, v in keys.items()}


# -- the sweep ------------------------------------------------------------------------------------------

#: columns of the DSE table, in order
COLUMNS = ("target", "lanes", "weight_bits", "membrane_bits", "overlap", "update", "wavefront", "status", "fmax_mhz", "fmax_median_mhz",
           "fmax_max_mhz", "n_seeds", "clock_mhz", "cycles",
           "latency_us", "logic_cells", "logic_cells_total", "luts", "ffs", "bram", "bram_total", "dsp",
           "dynamic_nj", "static_mw", "static_nj", "energy_nj", "power_mw", "fps_per_watt", "pareto",
           "structure_hash", "synth_seconds", "cached", "message")


@dataclass(frozen=True)
class Sweep:
    """What to explore: one network, the products of the knob lists, on each target."""
    layer_sizes: tuple
    lanes: tuple = (2, 4, 8)
    weight_bits: tuple = (4, 8)
    membrane_bits: tuple = (16,)
    overlap: tuple = (ChipConfig.overlap,)   # the UPDATE -> next EVENT overlap (its default): a pipeline knob
    update: tuple = (ChipConfig.update,)     # UPDATE schedules (hw.config.UPDATE_MODES)
    wavefront: tuple = (ChipConfig.wavefront,)   # the touched chips' wavefront (docs/chip.md, "Wavefront")
    max_steps: int = MAX_STEPS_DEFAULT       # a touched chip's longest sample (ChipConfig.max_steps; >= steps)
    targets: tuple = ("ice40-up5k",)
    clock_mhz: float | None = None      # None: run each design at its post-route Fmax
    batch: int = 4
    steps: int = 16
    density: float = 0.2
    seed: int = 0
    seeds: tuple = ()                   # nextpnr placement seeds per build (): its default seed; else Fmax = min
    power: str = "rtl"                  # "rtl": activity of the RTL (sim.activity); "fast": fast-model counters x
    #                                     sim.activity.structural_profile (for networks too big to simulate)

    def __post_init__(self):
        for t in self.targets:
            check_target(t)
        if self.power not in ("rtl", "fast"):
            raise ConfigError(f"power={self.power!r}: allowed values are rtl, fast")
        from hw.synth import SEED_MAX
        if not all(isinstance(k, int) and 1 <= k <= SEED_MAX for k in self.seeds):
            raise ConfigError(f"seeds={list(self.seeds)}: allowed values are integers 1 to {SEED_MAX}")
        if self.clock_mhz is not None and not self.clock_mhz > 0:
            raise ConfigError(f"clock_mhz={self.clock_mhz}: allowed range is > 0")
        if not self.wavefront or not all(isinstance(v, (bool, np.bool_)) for v in self.wavefront):
            raise ConfigError(f"wavefront={list(self.wavefront)}: allowed values are on and off (true, false)")
        if any(self.wavefront) and "touched" not in self.update:
            raise ConfigError(f"wavefront={['on' if v else 'off' for v in self.wavefront]}: a wavefront chip needs "
                              f"update='touched', which update={list(self.update)} does not sweep; allowed: "
                              "wavefront off, or touched in update (--update all touched)")
        self.configs()                  # every combination must be a valid chip (ConfigError otherwise)

    def configs(self) -> list[ChipConfig]:
        """Every chip of the sweep (lanes x weight bits x membrane bits x overlap x update x wavefront; weights no
        wider than the membrane; a wavefront on touched chips only, each once: it has no overlap)."""
        out = []
        for l, w, m, u, f, o in itertools.product(self.lanes, self.weight_bits, self.membrane_bits, self.update,
                                                  self.wavefront, self.overlap):
            if w > m:
                continue                # weights wider than the membrane are not a chip (ChipConfig refuses)
            if f and u != "touched":
                continue                # only a touched chip has a wavefront
            # the sample network's threshold: ChipConfig's default, or the largest a narrower membrane holds (the
            # sample weights scale with it); the default alone made every membrane under 8 bits a ConfigError
            thr = min(ChipConfig.threshold, (1 << (m - 1)) - 1)
            # (max_steps means nothing to an "all" chip: ChipConfig keeps its default there)
            cfg = ChipConfig(layer_sizes=tuple(self.layer_sizes), lanes=l, weight_bits=w, membrane_bits=m,
                             threshold=thr, update=u, overlap=o, max_steps=self.max_steps, wavefront=bool(f))
            if cfg.touched and cfg.max_steps < self.steps:
                raise ConfigError(f"steps={self.steps}: a chip with update='touched' runs at most "
                                  f"max_steps={cfg.max_steps} steps per sample; allowed range is 1..{cfg.max_steps}")
            if cfg not in out:
                out.append(cfg)
        if not out:
            raise ConfigError(f"weight_bits={list(self.weight_bits)} x membrane_bits={list(self.membrane_bits)}: "
                              "no combination has weight_bits <= membrane_bits")
        return out


def _score_structure(cfg: ChipConfig, sw: Sweep) -> dict:
    """Cycles (fast model) and activity/energy per part (RTL or counter model) of one structure on the sweep's
    seeded sample network and inputs."""
    from sim.activity import PARTS, estimate_energy, measure_activity, structural_profile
    from sim.chip import make_chip
    from sim.sample import random_spikes, random_weights
    weights = random_weights(cfg, sw.seed, sw.density)
    x = random_spikes(cfg, sw.batch, sw.steps, sw.density, sw.seed + 1)
    chip = make_chip(cfg)
    chip.load(weights)
    r = chip.run(x)
    cycles = float(np.mean(r.cycles))
    energy = {}
    if sw.power == "rtl":
        act = measure_activity(cfg, weights, x)
        for t in sw.targets:
            energy[t] = estimate_energy(act, PARTS[t]).dynamic_nj
    else:
        from sim.power import performance
        for t in sw.targets:
            energy[t] = performance(r, structural_profile(cfg, t)).dynamic_energy_nj
    return {"cycles": cycles, "dynamic_nj": energy}


def _pareto(rows: list[dict]) -> None:
    """Mark, per target, the rows not dominated in (latency_us, luts) — both minimised."""
    for t in {r["target"] for r in rows}:
        ok = [r for r in rows if r["target"] == t and r["status"] == "ok"]
        for r in ok:
            r["pareto"] = not any(o is not r and o["latency_us"] <= r["latency_us"] and o["luts"] <= r["luts"]
                                  and (o["latency_us"] < r["latency_us"] or o["luts"] < r["luts"]) for o in ok)


def over_seeds(recs: Sequence[dict]) -> dict:
    """One structure's records on one part over placement seeds as one: ``ok`` only if every seed built, then
    ``fmax_mhz`` the **minimum** over seeds (the clock every placement reaches), ``fmax_median_mhz`` and
    ``fmax_max_mhz`` beside it; resources from the first seed (same netlist); ``seconds`` summed."""
    import statistics
    bad = [r for r in recs if r["status"] != "ok"]
    first = dict(bad[0] if bad else recs[0])
    first |= {"seconds": sum(r["seconds"] for r in recs), "cached": all(r["cached"] for r in recs),
              "seeds": [r.get("seed") for r in recs]}
    if bad and len(recs) > 1:
        first["message"] = f"seed {bad[0].get('seed')}: {bad[0].get('message', '')}"
    if not bad:
        f = [float(r["fmax_mhz"]) for r in recs]
        first |= {"fmax_mhz": min(f), "fmax_median_mhz": statistics.median(f), "fmax_max_mhz": max(f)}
    return first


def run_dse(sw: Sweep, out: Path, jobs: int = 1, progress: bool = True, synth: Callable | None = None,
            storage: str | None = None, study: str | None = None) -> list[dict]:
    """Synthesise (through the build study, cached) and score every point of ``sw``; write ``dse.csv``,
    ``dse.json`` and ``pareto.png`` under ``out``; return the rows. With ``sw.seeds``, each structure is built
    once per placement seed and scored at its minimum Fmax over them."""
    from sim.activity import PARTS
    out = Path(out)
    cfgs = sw.configs()
    seeds = tuple(sw.seeds) or (None,)
    per_seed = synth_all(cfgs, sw.targets, out / "synth-cache", jobs, progress, synth, seeds, storage, study)
    recs = {(c.structure_hash, t): over_seeds([per_seed[(c.structure_hash, t, s)] for s in seeds])
            for c in cfgs for t in sw.targets}
    from tqdm import tqdm
    scores = {}
    for cfg in tqdm(cfgs, desc="activity", unit="design", disable=not progress, dynamic_ncols=True):
        if any(recs[(cfg.structure_hash, t)]["status"] == "ok" for t in sw.targets):
            scores[cfg.structure_hash] = _score_structure(cfg, sw)
    rows = []
    for cfg in cfgs:
        for t in sw.targets:
            rec = recs[(cfg.structure_hash, t)]
            row = dict.fromkeys(COLUMNS, "")
            row |= {"target": t, "lanes": cfg.lanes, "weight_bits": cfg.weight_bits,
                    "membrane_bits": cfg.membrane_bits, "overlap": cfg.overlap, "update": cfg.update,
                    "wavefront": cfg.wavefront, "status": rec["status"], "message": rec.get("message", ""),
                    "structure_hash": cfg.structure_hash[:12], "synth_seconds": round(rec["seconds"], 1),
                    "cached": rec["cached"], "pareto": False}
            if rec["status"] == "ok":
                fmax = rec["fmax_mhz"]
                clock = sw.clock_mhz or fmax
                row |= {k: rec.get(k, rec["fmax_mhz"]) for k in ("fmax_median_mhz", "fmax_max_mhz")}
                row["n_seeds"] = len(seeds)
                row |= {k: rec[k] for k in ("fmax_mhz", "logic_cells", "logic_cells_total", "luts", "ffs", "bram",
                                            "bram_total", "dsp")}
                if clock > fmax:
                    row |= {"status": "timing", "message": f"--clock-mhz {clock:g} is above the post-route Fmax "
                                                           f"{fmax:.2f} MHz of this design on {t}"}
                else:
                    s = scores[cfg.structure_hash]
                    latency = s["cycles"] / clock
                    static_mw = PARTS[t].static_mw
                    dyn = s["dynamic_nj"][t]
                    energy = dyn + static_mw * latency
                    row |= {"clock_mhz": clock, "cycles": s["cycles"], "latency_us": latency, "dynamic_nj": dyn,
                            "static_mw": static_mw, "static_nj": static_mw * latency, "energy_nj": energy,
                            "power_mw": energy / latency, "fps_per_watt": 1e9 / energy}
            rows.append(row)
    _pareto(rows)
    out.mkdir(parents=True, exist_ok=True)
    write_table(rows, sw, out, fit_estimator([r for r in rows if r["status"] in ("ok", "timing")]))
    pareto_plot(rows, out / "pareto.png", sw)
    return rows


def write_table(rows: list[dict], sw: Sweep, out: Path, estimator: dict | None = None) -> dict[str, Path]:
    """Write ``dse.csv`` and ``dse.json`` (the sweep, every row, what is estimated, the fitted estimator)."""
    import csv
    paths = {"csv": out / "dse.csv", "json": out / "dse.json"}
    with open(paths["csv"], "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        for r in rows:
            w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()})
    meta = asdict(sw) | {"estimated": "energy and FPS/W are estimates (sim.activity: RTL activity x per-primitive "
                                      "energies, measured for iCE40 UP5K, assumed for ECP5); latency, area and Fmax "
                                      "are measured (fast model cycles, nextpnr post-route)"}
    paths["json"].write_text(json.dumps({"sweep": meta, "rows": rows, "estimator": estimator or {}}, indent=1,
                                        default=str))
    return paths


def pareto_plot(rows: list[dict], path: Path, sw: Sweep) -> Path | None:
    """Latency against LUT4 per part, coloured by FPS/W, the Pareto front marked; None without a built row."""
    ok = [r for r in rows if r["status"] == "ok"]
    if not ok:
        return None
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(7, 4.5))
    markers = {t: m for t, m in zip(sorted({r["target"] for r in ok}), "os^D")}
    fpw = np.array([r["fps_per_watt"] for r in ok])
    norm = matplotlib.colors.LogNorm(vmin=fpw.min(), vmax=max(fpw.max(), fpw.min() * 1.01))
    for t, mk in markers.items():
        pts = [r for r in ok if r["target"] == t]
        sc = ax.scatter([r["luts"] for r in pts], [r["latency_us"] for r in pts], c=[r["fps_per_watt"] for r in pts],
                        cmap="viridis", norm=norm, marker=mk, s=70, edgecolors="black", label=t)
        front = sorted((r for r in pts if r["pareto"]), key=lambda r: r["luts"])
        ax.step([r["luts"] for r in front], [r["latency_us"] for r in front], where="post", color="grey", lw=1)
        for r in pts:
            ax.annotate(f"{r['lanes']}L w{r['weight_bits']}" + (" touched" if r.get("update") == "touched" else "")
                        + (" wavefront" if r.get("wavefront") else ""),
                        (r["luts"], r["latency_us"]), fontsize=7,
                        xytext=(4, 3), textcoords="offset points")
    fig.colorbar(sc, ax=ax, label="FPS/W (estimated)")
    ax.set_xlabel("LUT4 (yosys)")
    ax.set_ylabel("latency per sample at post-route Fmax (µs)" if sw.clock_mhz is None
                  else f"latency per sample at {sw.clock_mhz:g} MHz (µs)")
    ax.set_yscale("log")
    ax.legend(fontsize=8)
    ax.set_title(f"{','.join(map(str, sw.layer_sizes))}: {sw.steps} steps, input density {sw.density:g}", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return Path(path)


def format_table(rows: list[dict]) -> list[str]:
    """Markdown table of the rows (what ``spikeloop dse`` prints and the README shows)."""
    lines = ["| part | lanes | w bits | m bits | overlap | update | wavefront | logic cells | LUT4 | FF | BRAM | DSP | "
             "Fmax (MHz) | cycles | latency (µs) | dynamic (nJ) | static (mW) | FPS/W (est.) | Pareto |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        knobs = f"| {r['target']} | {r['lanes']} | {r['weight_bits']} | {r['membrane_bits']} | " \
                f"{'on' if r.get('overlap', True) else 'off'} | {r.get('update') or ChipConfig.update} | " \
                f"{'on' if r.get('wavefront') else 'off'} | "
        if r["status"] == "ok":
            lines.append(knobs +
                         f"{r['logic_cells']}/{r['logic_cells_total']} | {r['luts']} | {r['ffs']} | "
                         f"{r['bram']}/{r['bram_total']} | {r['dsp']} | {r['fmax_mhz']:.1f}{'†' if r['message'] else ''} | "
                         f"{r['cycles']:.0f} | "
                         f"{r['latency_us']:.2f} | {r['dynamic_nj']:.0f} | {r['static_mw']:g} | "
                         f"{r['fps_per_watt']:.3g} | {'yes' if r['pareto'] else ''} |")
        else:
            lines.append(knobs + f"{r['status']}: {r['message']} |||||||||||| |")
    notes = [f"† {r['target']}, {r['lanes']} lanes, w{r['weight_bits']}: {r['message']}" for r in rows
             if r["status"] == "ok" and r["message"]]
    return lines + ([""] + notes if notes else [])


# -- a fitted area / Fmax estimator, checked against nextpnr --------------------------------------------

ESTIMATED = ("logic_cells", "luts", "ffs", "fmax_mhz")


def _est_features(lanes, weight_bits, membrane_bits, overlap=True, touched=None, wavefront=None) -> np.ndarray:
    """The estimator's features; ``touched`` (``update = "touched"``, None: a sweep without touched chips) adds
    one column, ``touched`` (its step stamps, elapsed-leak table and deeper pipeline: per structure);
    ``wavefront`` (None: a sweep without wavefront chips) two more, ``wavefront`` (the per-layer step counters,
    event lists and hand-over logic: per structure) and ``lanes*wavefront`` (the lanes' read data muxed from a
    membrane memory per layer instead of one or two). One sweep is one network, so the layer count is in the
    coefficients: a model fitted on one network does not predict another's wavefront."""
    lanes, w, m, o = (np.asarray(v, float) for v in (lanes, weight_bits, membrane_bits, overlap))
    cols = [np.ones_like(lanes), lanes, lanes * w, lanes * m, lanes * o]
    if touched is not None:
        cols.append(np.asarray(touched, float))
    if wavefront is not None:
        f = np.asarray(wavefront, float)
        cols += [f, lanes * f]
    return np.stack(np.broadcast_arrays(*cols), axis=-1)


#: the estimator's feature names (:func:`_est_features`); with touched chips in the sweep, ``TOUCHED_FEATURE`` too,
#: with wavefront chips ``WAVEFRONT_FEATURES`` after it
FEATURES = "1, lanes, lanes*weight_bits, lanes*membrane_bits, lanes*overlap"
TOUCHED_FEATURE = "touched"
WAVEFRONT_FEATURES = "wavefront, lanes*wavefront"


def estimator_features(rows: Sequence[dict]) -> tuple[np.ndarray, str]:
    """The feature matrix of synthesised rows (one part's) and its feature names: ``touched`` only when a row is
    touched, the wavefront's only when a row has one (rows of sweeps from before it have no ``wavefront``)."""
    touched = [r.get("update") == "touched" for r in rows]
    touched = touched if any(touched) else None
    wave = [bool(r.get("wavefront", False)) for r in rows]
    wave = wave if any(wave) else None
    X = _est_features([r["lanes"] for r in rows], [r["weight_bits"] for r in rows], [r["membrane_bits"] for r in rows],
                      [bool(r.get("overlap", True)) for r in rows], touched, wave)
    return X, FEATURES + (f", {TOUCHED_FEATURE}" if touched else "") + (f", {WAVEFRONT_FEATURES}" if wave else "")


def fit_estimator(rows: Sequence[dict]) -> dict:
    """Per part, least-squares models of logic cells, LUTs, FFs and Fmax on ``[1, lanes, lanes*w, lanes*m,
    lanes*overlap]`` (the overlap's second membrane register per lane; minimum-norm when a sweep has one value;
    with touched chips ``touched``, with wavefront chips ``wavefront, lanes*wavefront`` too: :func:`_est_features`)
    from the synthesised rows, each with its leave-one-out error against nextpnr (each structure predicted by a
    model fitted without it) **and the baseline's**: predicting each structure by the mean of the others. A model
    earns its place only if its leave-one-out mean error is below the baseline's: ``estimates`` lists those
    metrics, ``no_estimate`` says why each other one is left out (:func:`estimate` predicts only the former).
    Needs at least 3 synthesised structures per part."""
    out = {}
    for t in sorted({r["target"] for r in rows}):
        ok = [r for r in rows if r["target"] == t and r.get("fmax_mhz") not in ("", None)]
        if len(ok) < 3:
            continue
        X, features = estimator_features(ok)
        entry = {"n": len(ok), "features": features, "estimates": [], "no_estimate": {}}
        for k in ESTIMATED:
            y = np.array([float(r[k]) for r in ok])
            coef = np.linalg.lstsq(X, y, rcond=None)[0]
            loo, base = [], []
            for i in range(len(ok)):
                keep = np.arange(len(ok)) != i
                c = np.linalg.lstsq(X[keep], y[keep], rcond=None)[0]
                loo.append((X[i] @ c - y[i]) / y[i])
                base.append((y[keep].mean() - y[i]) / y[i])
            loo, base = np.abs(np.array(loo)), np.abs(np.array(base))
            beats = bool(loo.mean() < base.mean())
            entry[k] = {"coef": coef.tolist(), "loo_mean_abs_rel": float(loo.mean()),
                        "loo_max_abs_rel": float(loo.max()), "baseline_loo_mean_abs_rel": float(base.mean()),
                        "baseline_loo_max_abs_rel": float(base.max()), "beats_baseline": beats}
            if beats:
                entry["estimates"].append(k)
            else:
                entry["no_estimate"][k] = (f"no {k} estimate: the model's leave-one-out error ({loo.mean():.1%}) is "
                                           f"not below predicting the mean of the other structures ({base.mean():.1%})")
        out[t] = entry
    return out


def estimate(model: dict, target: str, lanes: int, weight_bits: int, membrane_bits: int,
             overlap: bool = True, update: str = "all", wavefront: bool = False) -> dict:
    """Predicted logic cells, LUTs, FFs and Fmax of a structure from :func:`fit_estimator`'s model — only the
    metrics whose model beat the mean-of-others baseline (``model[target]["estimates"]``). A touched structure
    needs a model fitted on a sweep with touched chips, a wavefront structure one fitted with wavefront chips (a
    ConfigError otherwise); a wavefront chip has no overlap (``overlap`` is then taken as off)."""
    m = model[target]
    names = [f.strip() for f in m.get("features", FEATURES).split(",")]
    fitted, fitted_wave = TOUCHED_FEATURE in names, WAVEFRONT_FEATURES.split(", ")[0] in names
    if update == "touched" and not fitted:
        raise ConfigError("update='touched': the estimator was fitted without touched chips; sweep --update "
                          "all touched to fit one")
    if wavefront and update != "touched":
        raise ConfigError("wavefront=true: built for update='touched' only; set update='touched' (or wavefront=false)")
    if wavefront and not fitted_wave:
        raise ConfigError("wavefront=true: the estimator was fitted without wavefront chips; sweep --update "
                          "touched --wavefront off on to fit one")
    x = _est_features(lanes, weight_bits, membrane_bits, overlap and not wavefront,
                      (update == "touched") if fitted else None, bool(wavefront) if fitted_wave else None)
    return {k: float(x @ np.array(m[k]["coef"])) for k in m.get("estimates", ESTIMATED)}


def estimator_lines(model: dict) -> list[str]:
    """What ``spikeloop dse`` prints about the estimator: per part, each metric's leave-one-out error beside the
    mean-of-others baseline, and "no Fmax estimate" (etc.) where the model does not beat it."""
    lines = []
    for t, m in model.items():
        cmp = ", ".join(f"{k} {m[k]['loo_mean_abs_rel']:.1%} (baseline {m[k]['baseline_loo_mean_abs_rel']:.1%})"
                        for k in ESTIMATED)
        lines.append(f"fitted estimator on {t} ({m['n']} structures), leave-one-out mean error vs nextpnr: {cmp}")
        lines.append(f"  {t}: estimates {', '.join(m['estimates']) or 'nothing'}"
                     + "".join(f"; {'no Fmax estimate' if k == 'fmax_mhz' else f'no {k} estimate'} (does not beat "
                               "the mean of the other structures)" for k in m["no_estimate"]))
    return lines
