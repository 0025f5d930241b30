"""Latency, throughput and energy of an inference from the chip's cycle and activity counters.

``latency = cycles / f_clk``; the chip processes one sample at a time, so ``FPS = f_clk / cycles``.
``energy = Σ_op count_op · E_op + P_static · latency``; ``FPS/W = FPS / P_avg = 1 / energy``.

Per-operation energies and static power come from a :class:`DeviceProfile`. Static power is reported apart
from dynamic energy in :class:`Performance`. The built-in profiles say what they rest on:

* ``ice40up5k`` and ``ecp5-25k``: per-counter energies fitted (``bench/power_calibration.py``, non-negative
  least squares) to the activity-based estimate of the RTL (:mod:`sim.activity`: BRAM port enables, DSP
  activations and register toggles counted in simulation of the design, times per-primitive energies) on
  the structure 30,16,2 / 4 lanes / w8 / m16. On held-out inputs of that structure the fitted counters are
  within a few per cent of the RTL estimate; on other structures they are tens of per cent off (the per-cycle
  energy grows with the lanes; on large chips the update pipeline also toggles on event cycles) — use
  :func:`sim.activity.structural_profile` there, fitted and validated leave-one-structure-out on several
  structures up to 784-128-10 (the errors: record ``docs/results/power_calibration.json``, rendered in
  ``docs/power.md``). iCE40 per-primitive energies and static power (0.104 mW) derive from measured
  core-rail currents of a UP5K (tinyvision-ai-inc/ice40_power), except the block-RAM access energy (assumed);
  every ECP5 figure, static 30 mW included, is **assumed** (see :data:`sim.activity.ECP5_25K`).
* ``artix7`` (Xilinx 7-series, 28 nm): **assumed**, not calibrated — static ~60 mW for a small Artix-7 and
  BRAM read ~5 pJ per word, of the order the Xilinx Power Estimator (XPE, UG440) gives for 7-series at
  100 MHz; fabric/DSP op energies scaled from Horowitz, "Computing's energy problem", ISSCC 2014. Its static
  power is most of its modelled energy: FPS/W figures with it rest on that assumption.

Override any field with ``DeviceProfile.from_dict`` / a study's ``[device]`` table once a board has been
measured.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from hw.config import ConfigError
from sim.model import ChipResult


@dataclass(frozen=True)
class DeviceProfile:
    """Energies in picojoules per event; static power in milliwatts; default clock in MHz."""
    name: str
    clock_mhz: float
    static_mw: float
    synop_pj: float            # one synaptic accumulate (per weight)
    weight_read_pj: float      # one weight-memory word read (``lanes`` weights)
    state_read_pj: float       # one membrane-memory word read
    state_write_pj: float      # one membrane-memory word write
    neuron_update_pj: float    # one leak / compare / reset
    event_pj: float            # one address event moved (in, out, or an internal spike)
    cycle_pj: float            # clock tree and control, per busy cycle
    source: str = ""

    def __post_init__(self):
        for f in fields(self):
            v = getattr(self, f.name)
            if f.name in ("name", "source"):
                if not isinstance(v, str):
                    raise ConfigError(f"device.{f.name}={v!r}: expected a string")
            elif isinstance(v, bool) or not isinstance(v, (int, float)) or not (np.isfinite(v) and v >= 0):
                raise ConfigError(f"device.{f.name}={v!r}: allowed range is numbers >= 0")
        if self.clock_mhz <= 0:
            raise ConfigError(f"device.clock_mhz={self.clock_mhz}: allowed range is > 0")

    @classmethod
    def from_dict(cls, d: dict) -> "DeviceProfile":
        """``base`` (a profile name) plus overrides; ``synth_report`` (a ``spikeloop synth`` JSON) sets
        ``clock_mhz`` to the Fmax found for that design."""
        d = dict(d)
        if "synth_report" in d:
            from hw.synth import fmax_from_report
            d["clock_mhz"] = fmax_from_report(d.pop("synth_report"))
        if "base" in d and d["base"] not in PROFILES:
            raise ConfigError(f"device.base={d['base']!r}: allowed values are {sorted(PROFILES)}")
        base = dict(asdict(PROFILES[d["base"]])) if "base" in d else {}
        known = {f.name for f in fields(cls)}
        extra = set(d) - known - {"base"}
        if extra:
            raise ConfigError(f"device: unknown fields {sorted(extra)}; allowed: {sorted(known)}")
        base.update({k: v for k, v in d.items() if k != "base"})
        return cls(**base)


#: where ``bench/power_calibration.py --write`` puts the fitted energies (of the RTL as it was then): the
#: per-counter profiles below and the per-unit energies of :func:`sim.activity.structural_profile`
POWER_FIT = Path(__file__).with_name("power_fit.json")


def power_fit() -> dict:
    """The fitted energies (``sim/power_fit.json``)."""
    return json.loads(POWER_FIT.read_text())


def _fitted(name: str, clock_mhz: float, static_mw: float, note: str) -> DeviceProfile:
    fit = power_fit()
    return DeviceProfile(name, clock_mhz=clock_mhz, static_mw=static_mw, **fit["profiles"][name],
                         source=f"fitted to the RTL activity estimate (sim.activity, {fit['fitted_on']}); {note}")


PROFILES = {
    # fitted to sim.activity on 30,16,2 / 4 lanes / w8 / m16 (sim/power_fit.json; errors: docs/results/power_calibration.json)
    "ice40up5k": _fitted("ice40up5k", 24.0, 0.104, "iCE40 figures measured, BRAM assumed"),
    "ecp5-25k": _fitted("ecp5-25k", 100.0, 30.0, "ECP5 per-primitive energies and static power assumed"),
    "artix7": DeviceProfile("artix7", clock_mhz=100.0, static_mw=60.0, synop_pj=0.5, weight_read_pj=5.0,
                            state_read_pj=5.0, state_write_pj=5.0, neuron_update_pj=2.0, event_pj=1.0,
                            cycle_pj=20.0, source="assumed (XPE-order estimates), not calibrated"),
}


@dataclass(frozen=True)
class Performance:
    """Per-inference figures (means over the samples given). Units in the field names."""
    cycles: float
    clock_mhz: float
    latency_us: float
    fps: float
    dynamic_energy_nj: float
    static_energy_nj: float
    energy_nj: float
    power_mw: float
    fps_per_watt: float

    def to_dict(self) -> dict:
        return asdict(self)


def performance(counters: dict[str, np.ndarray] | ChipResult, profile: DeviceProfile,
                clock_mhz: float | None = None) -> Performance:
    """Latency/FPS/energy from per-sample counters (a ChipResult or its ``counters``)."""
    c = counters.counters if isinstance(counters, ChipResult) else counters
    mean = lambda k: float(np.mean(c[k]))
    f = float(clock_mhz or profile.clock_mhz)
    if f <= 0:
        raise ConfigError(f"clock_mhz={f}: allowed range is > 0")
    cycles = mean("cycles")
    spikes = sum(mean(k) for k in c if k.startswith("spikes_l"))
    dyn_pj = (mean("synops") * profile.synop_pj + mean("weight_reads") * profile.weight_read_pj
              + mean("state_reads") * profile.state_read_pj + mean("state_writes") * profile.state_write_pj
              + mean("neuron_updates") * profile.neuron_update_pj
              + (mean("in_events") + spikes) * profile.event_pj + cycles * profile.cycle_pj)
    latency_us = cycles / f
    static_nj = profile.static_mw * latency_us          # mW * us = nJ
    energy_nj = dyn_pj / 1000.0 + static_nj
    return Performance(cycles=cycles, clock_mhz=f, latency_us=latency_us,
                       fps=1e6 / latency_us if latency_us > 0 else float("inf"),
                       dynamic_energy_nj=dyn_pj / 1000.0, static_energy_nj=static_nj, energy_nj=energy_nj,
                       power_mw=energy_nj / latency_us if latency_us > 0 else 0.0,
                       fps_per_watt=1e9 / energy_nj if energy_nj > 0 else float("inf"))
