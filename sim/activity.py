"""Activity-based energy of the RTL: what switched, counted in simulation of the real design, times
per-primitive energies of the part.

:func:`measure_activity` runs the Amaranth design (:class:`hw.core.LifCore`, every cycle, as the
``amaranth`` backend does) with an observer on the simulator's signal commits and counts, per sample and
only in cycles where the core is ``busy``:

* **BRAM port enables** — for every memory port, the clock edges at which its enable is high (read ports
  whose enable is not driven read on every edge: that is what the RTL asks the block RAM to do), times
  the number of physical RAM slices the word spans (``ceil(width / slice_bits)``: 16-bit iCE40 EBR,
  18-bit ECP5 DP16KD);
* **multiplier (DSP) activations** — the leak multiply ``potential · beta`` of each lane: edges at which its
  operand register ``potential<k>`` changed (an unchanged operand leaves the DSP quiet);
* **register toggles** — bit flips of every register (every signal the design drives in the ``sync``
  domain), the proxy for logic and routing activity (each register bit is a logic cell whose LUT and net
  switch with it);
* **cycles** and the number of register bits (clock load).

:func:`estimate_energy` multiplies these by a :class:`PartEnergy`. Static power is reported apart from
dynamic energy. Which figure is measured and which is assumed is written next to each number below; the
one source of measured iCE40 UltraPlus figures is the core-rail current measurements of
tinyvision-ai-inc/ice40_power (iCE40 UltraPlus breakout board, Joulescope JS110, 1.219 V core).

``sim.power`` keeps the fast, counter-based estimate; :func:`calibrate_profile` fits its per-counter
energies to this RTL estimate (non-negative least squares) so that studies and the DSE can use the fast
model; ``docs/power.md`` reports how well it matches on held-out inputs.
"""
from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Sequence

import numpy as np

from hw.config import ChipConfig, ConfigError


@dataclass(frozen=True)
class PartEnergy:
    """Per-primitive energies of one FPGA family (pJ per event) and its static power (mW)."""
    name: str
    static_mw: float
    clock_cycle_pj: float        # clock network, per cycle, independent of the design size
    clock_ff_pj: float           # clock load of one register bit, per cycle
    toggle_pj: float             # one register bit flip (with the LUT and routing it drives)
    bram_access_pj: float        # one enabled port access of one RAM slice
    bram_slice_bits: int         # data bits of one RAM slice (a word wider than this uses several)
    dsp_pj: float                # one multiplier activation (operands changed)
    source: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


# iCE40 UltraPlus UP5K (40 nm, 1.2 V core). Measured on the part (tinyvision-ai-inc/ice40_power, core rail):
#   static: blank design 85.6 uA x 1.219 V = 0.104 mW (the iCE40 UltraPlus data sheet, FPGA-DS-02008, gives
#     a typical core standby current of the same order, ~75-100 uA; the measured figure is used);
#   clock: HFOSC 6 -> 48 MHz with a 28-LC counter, 388.4 -> 2184 uA: 42.8 uA/MHz x 1.219 V = 52 pJ/cycle
#     (clock network and oscillator of a nearly empty design);
#   register bit: 28x8- vs 28x1-bit counters at 12 MHz, +27.8 uA for +196 LCs: 2.8 pJ/cycle; the counters flip
#     ~14 more bits per cycle -> 0.20 pJ per bit flip; spread over the 196 cells instead it is an upper
#     bound of 0.0144 pJ per register per cycle of clock load (used as such: the two overlap, on the safe side);
#   DSP: an 8x8 multiply of two counters every cycle in one SB_MAC16 at 12 MHz, 882 - 645 uA (counter only)
#     = 237 uA -> 24 pJ per multiply (incl. its ~44 LCs of operand counters: an upper bound).
#   BRAM: not in the measurements; 12 pJ per 16-bit EBR access is ASSUMED (order of 10 uA/MHz per active
#     block at 1.2 V).
ICE40UP5K = PartEnergy("ice40-up5k", static_mw=0.104, clock_cycle_pj=52.0, clock_ff_pj=0.0144, toggle_pj=0.20,
                       bram_access_pj=12.0, bram_slice_bits=16, dsp_pj=24.0,
                       source="measured core-rail currents (tinyvision-ai-inc/ice40_power); BRAM assumed")

# ECP5 LFE5U-25F (40 nm, 1.1 V core). No per-primitive vendor figure was found in the searched corpora (the
# ECP5 power calculator, TN1266, gives none in text); every number is ASSUMED: the iCE40 figures of the same
# 40 nm node scaled by (1.1/1.2)^2 = 0.84 for toggles and clock load, a larger clock tree (x2), an 18x18
# MULT18X18D at 1.5x the SB_MAC16 figure, 15 pJ per 18-bit DP16KD access, and 30 mW static (ASSUMED; the
# ECP5 family data sheet, FPGA-DS-02012, gives the typical static supply currents — check it for your part
# and override ``static_mw``).
ECP5_25K = PartEnergy("ecp5-25k", static_mw=30.0, clock_cycle_pj=88.0, clock_ff_pj=0.0121, toggle_pj=0.17,
                      bram_access_pj=15.0, bram_slice_bits=18, dsp_pj=36.0,
                      source="ASSUMED: iCE40 measurements scaled to 1.1 V; static 30 mW assumed")

PARTS = {p.name: p for p in (ICE40UP5K, ECP5_25K)}


def part_energy(name: str) -> PartEnergy:
    if name not in PARTS:
        raise ConfigError(f"part={name!r}: unknown part; allowed values are {', '.join(PARTS)}")
    return PARTS[name]


@dataclass
class Activity:
    """Per-sample activity of the RTL (arrays of length ``batch``) and the design's register bits."""
    cycles: np.ndarray
    toggles: np.ndarray
    dsp: np.ndarray
    bram: dict                     # memory name -> {"reads": array, "writes": array, "width": bits}
    register_bits: int
    counters: dict = field(default_factory=dict)   # the chip's own counters for the same samples

    def bram_slice_accesses(self, slice_bits: int) -> np.ndarray:
        total = np.zeros_like(self.cycles, dtype=float)
        for m in self.bram.values():
            total = total + (m["reads"] + m["writes"]) * math.ceil(m["width"] / slice_bits)
        return total


class _Counter:
    """A simulator observer (the interface of Amaranth's VCD writer): counts, between rising edges of
    ``clk`` at which ``busy`` was high, register bit flips, DSP operand changes and memory port enables."""

    fs_per_delta = 0

    def __init__(self, engine, clk, busy, registers, dsp_operands, ports):
        self.engine, self.clk, self.busy = engine, clk, busy
        self.registers = registers            # Signal -> None (a SignalDict-like set)
        self.dsp = dsp_operands
        self.ports = ports                    # [(memory name, "reads"/"writes", en value)]
        from amaranth.hdl._ast import SignalDict
        self.values = SignalDict()
        self.counting = False
        self.reset_sample()

    def reset_sample(self):
        self.cycles = self.toggles = self.dsp_count = 0
        self.port_counts = [0] * len(self.ports)

    def update_signal(self, timestamp, signal):
        get = self.engine.get_value
        if signal is self.clk:
            if get(signal):                    # a rising edge: values are still the pre-edge ones
                self.counting = bool(get(self.busy))
                if self.counting:
                    self.cycles += 1
                    for i, (_, _, en) in enumerate(self.ports):
                        if get(en):
                            self.port_counts[i] += 1
            return
        if signal in self.registers:
            new = get(signal)
            old = self.values[signal] if signal in self.values else int(signal.init)
            self.values[signal] = new
            if self.counting and new != old:
                width = signal.shape().width
                self.toggles += bin((new ^ old) & ((1 << width) - 1)).count("1")
                if signal in self.dsp:
                    self.dsp_count += 1

    def update_memory(self, timestamp, memory, addr):
        pass

    def close(self, timestamp):
        pass


def _design_parts(fragment):
    """Registers (sync-driven signals), the DSP operand registers and memory ports of an elaborated design."""
    from amaranth.hdl._mem import MemoryInstance
    from amaranth.hdl import Shape
    from amaranth.hdl._ast import SignalSet
    registers, dsp, ports = SignalSet(), SignalSet(), []

    def walk(frag, path):
        if isinstance(frag, MemoryInstance):
            name = ".".join(path)
            width = Shape.cast(frag._data.shape).width
            for p in frag._read_ports:
                ports.append((name, "reads", p._en, width))
            for p in frag._write_ports:
                ports.append((name, "writes", p._en, width))
            return
        for domain, stmts in frag.statements.items():
            if domain != "sync":
                continue
            for s in stmts:
                for sig in s._lhs_signals():
                    registers.add(sig)
                    if path and path[-1] == "lanes" and re.fullmatch(r"potential\d+", sig.name):
                        dsp.add(sig)
        for sub, name, *_ in frag.subfragments:
            walk(sub, path + [name or "unnamed"])

    walk(fragment, [])
    return registers, dsp, ports


def measure_activity(cfg: ChipConfig, weights: Sequence[np.ndarray], spikes: np.ndarray,
                     offsets: Sequence[np.ndarray] | None = None) -> Activity:
    """Simulate the RTL on ``spikes`` ``(B, T, N0)`` and count its activity per sample (see module doc)."""
    from amaranth.hdl import Value
    from amaranth.sim import Simulator
    from hw.bus import READ_COUNTERS
    from hw.core import LifCore
    from sim.amaranth_sim import AmaranthPins
    from sim.driver import HostDriver
    weights = cfg.check_weights(weights)
    offsets = cfg.check_offsets(offsets)
    spikes = cfg.check_spikes(spikes)
    dut = LifCore(cfg.structure())
    sim = Simulator(dut)
    sim.add_clock(1e-8)
    engine = sim._engine                       # Amaranth 0.5's pysim engine: observers as its VCD writers do
    registers, dsp, ports = _design_parts(engine._design.fragment)
    clk = engine._design.lookup_domain("sync", None).clk
    counter = _Counter(engine, clk, Value.cast(dut.busy), registers, dsp, [(n, k, en) for n, k, en, _ in ports])
    per_sample = []

    async def testbench(ctx):
        drv = HostDriver(cfg.structure(), AmaranthPins(ctx, dut))
        await drv.load(cfg, weights, offsets)
        # a host that is not reading leaves its read address where its last read was: park it on a counter, as
        # after every sample (run_sample ends with the counters), so that every sample sees the same host
        await drv.read(drv.bus.read_addr(READ_COUNTERS, 0))
        for x in spikes:
            counter.reset_sample()
            s = await drv.run_sample(x, False)
            per_sample.append((counter.cycles, counter.toggles, counter.dsp_count, list(counter.port_counts),
                               s["counters"]))

    sim.add_testbench(testbench)
    engine._vcd_writers.append(counter)
    try:
        sim.run()
    finally:
        engine._vcd_writers.remove(counter)
    bram = {}
    for i, (name, kind, _, width) in enumerate(ports):
        m = bram.setdefault(name, {"reads": np.zeros(len(per_sample)), "writes": np.zeros(len(per_sample)),
                                   "width": width})
        m[kind] = m[kind] + np.array([p[3][i] for p in per_sample], float)
    counters = {n: np.array([p[4][n] for p in per_sample], np.int64) for n in cfg.counter_names}
    return Activity(cycles=np.array([p[0] for p in per_sample], float),
                    toggles=np.array([p[1] for p in per_sample], float),
                    dsp=np.array([p[2] for p in per_sample], float), bram=bram,
                    register_bits=sum(s.shape().width for s in registers), counters=counters)


@dataclass(frozen=True)
class Energy:
    """Mean energy per inference, in nJ, by component; ``static_mw`` is reported apart from the dynamic part."""
    part: str
    clock_nj: float
    registers_nj: float
    bram_nj: float
    dsp_nj: float
    dynamic_nj: float
    static_mw: float
    cycles: float

    def static_nj(self, clock_mhz: float) -> float:
        return self.static_mw * self.cycles / clock_mhz

    def total_nj(self, clock_mhz: float) -> float:
        return self.dynamic_nj + self.static_nj(clock_mhz)

    def fps_per_watt(self, clock_mhz: float) -> float:
        return 1e9 / self.total_nj(clock_mhz)

    def to_dict(self) -> dict:
        return asdict(self)


def energy_per_sample(a: Activity, part: PartEnergy) -> dict[str, np.ndarray]:
    """Dynamic energy per sample (pJ arrays) by component."""
    return {"clock": a.cycles * (part.clock_cycle_pj + part.clock_ff_pj * a.register_bits),
            "registers": a.toggles * part.toggle_pj,
            "bram": a.bram_slice_accesses(part.bram_slice_bits) * part.bram_access_pj,
            "dsp": a.dsp * part.dsp_pj}


def estimate_energy(a: Activity, part: PartEnergy | str) -> Energy:
    """Mean dynamic energy per inference by component, and the part's static power."""
    part = part_energy(part) if isinstance(part, str) else part
    e = {k: float(np.mean(v)) / 1000 for k, v in energy_per_sample(a, part).items()}
    return Energy(part=part.name, clock_nj=e["clock"], registers_nj=e["registers"], bram_nj=e["bram"],
                  dsp_nj=e["dsp"], dynamic_nj=sum(e.values()), static_mw=part.static_mw,
                  cycles=float(np.mean(a.cycles)))


#: the counters a :class:`sim.power.DeviceProfile` prices, in the order of its fields
PROFILE_FEATURES = ("synops", "weight_reads", "state_reads", "state_writes", "neuron_updates", "events", "cycles")
_PROFILE_FIELDS = ("synop_pj", "weight_read_pj", "state_read_pj", "state_write_pj", "neuron_update_pj",
                   "event_pj", "cycle_pj")


def counter_features(counters: dict) -> np.ndarray:
    """``(B, 7)`` matrix of the counters :func:`sim.power.performance` prices (events = in + spikes)."""
    spikes = sum(np.asarray(v, float) for k, v in counters.items() if k.startswith("spikes_l"))
    cols = {k: np.asarray(counters[k], float) for k in ("synops", "weight_reads", "state_reads", "state_writes",
                                                        "neuron_updates", "cycles")}
    cols["events"] = np.asarray(counters["in_events"], float) + spikes
    return np.stack([cols[k] for k in PROFILE_FEATURES], axis=1)


def calibrate_profile(activity: Activity, part: PartEnergy | str, name: str | None = None,
                      clock_mhz: float = 12.0):
    """A :class:`sim.power.DeviceProfile` whose per-counter energies best fit (non-negative least squares,
    relative error) the RTL estimate of ``activity``'s samples. Returns ``(profile, max relative error on
    these samples)``."""
    from scipy.optimize import nnls
    from sim.power import DeviceProfile
    part = part_energy(part) if isinstance(part, str) else part
    target = sum(energy_per_sample(activity, part).values())
    X = counter_features(activity.counters)
    # relative least squares: each sample weighted by 1/target; columns scaled for conditioning
    scale = np.maximum(X.max(axis=0), 1.0)
    coef, _ = nnls((X / scale) / target[:, None], np.ones_like(target))
    coef = coef / scale
    pred = X @ coef
    prof = DeviceProfile(name or part.name, clock_mhz=clock_mhz, static_mw=part.static_mw,
                         **{f: float(c) for f, c in zip(_PROFILE_FIELDS, coef)},
                         source=f"fitted to the RTL activity estimate ({part.source})")
    return prof, float(np.max(np.abs(pred - target) / target))


# -- the structure-aware counter model ------------------------------------------------------------------

@dataclass(frozen=True)
class DesignFacts:
    """What elaboration alone (no simulation) tells about a structure's energy: register bits, and the RAM
    slices its read ports and its membrane / event-list writes touch."""
    register_bits: int
    read_slices: int               # RAM slices read on every cycle outside the weight memory (enables not driven)
    offset_read_slices: int        # slices of one threshold-offset read, if its enable is driven (one per UPDATE fetch)
    weight_word_slices: int        # RAM slices of one weight-memory read (one bank's word)
    weight_reads_gated: bool       # WeightMemory.read.en is driven: a bank reads per weight read (else every cycle)
    membrane_write_slices: int     # slices of one membrane-word write
    event_write_slices: int        # slices of one event-list append (index + row)
    # the update pipeline follows the event engine's reads: between UPDATE phases the update engine's membrane
    # bank (the last layer's) reads at the event engine's address; with two or more words there (or one bank
    # for both engines) its read data, and so the pipeline's registers and the leak multiplier's operand, change
    # on EVENT cycles (see :func:`follows_events`)
    update_follows_events: bool = False


def follows_events(cfg: ChipConfig) -> bool:
    """Whether the update pipeline's registers follow the event engine's membrane reads in the EVENT phase.

    A membrane bank the update engine does not own reads at the event engine's address (``hw.core.sequencer``).
    Between UPDATE phases the update engine's bank is the last layer's: if it holds one word, the address does
    not matter and the data stands still; with two or more, consecutive event reads return different words of
    it (with one membrane bank, no overlap, the update bank is the event engine's own). Lanes that register
    that read data whenever the pipeline advances (every cycle outside a hold) then toggle ``word``,
    ``potential``, ``product`` ... with it, the DSP's operand included: the term the counter model lacked on
    784-128-10 / 8 lanes, whose last layer is two words. ``hw.core.lanes.NeuronLanes`` loads a stage's registers
    only when a valid group moves in (:func:`update_stages_hold`, read from the elaborated lanes), so on this
    RTL the pipeline follows nothing; the rule stays for lanes that do not hold."""
    if update_stages_hold(cfg):
        return False
    if cfg.state_banks == 1:
        return True
    return cfg.bank_depth(cfg.state_bank(cfg.num_layers - 1)) >= 2


def update_stages_hold(cfg: ChipConfig) -> bool:
    """Whether the elaborated ``NeuronLanes`` load the leak multiplier's operand register (``potential0``)
    only under an enable that includes the sequencer's stage valid bits (``valid``): then the update pipeline
    stands still between groups instead of registering whatever the update bank reads."""
    from amaranth.hdl import Fragment
    from amaranth.hdl._ast import Switch
    from hw.core import NeuronLanes
    lanes = NeuronLanes(cfg)
    drivers = _drivers(Fragment.get(lanes, None))
    stmts = next((st for sig, st in drivers.items() if sig.name == "potential0"), [])
    valid = getattr(lanes, "valid", None)
    return bool(stmts) and valid is not None and all(isinstance(st, Switch) and valid in st.test._rhs_signals()
                                                     for st in stmts)


def _drivers(fragment):
    """Every signal of an elaborated design -> the statements (any domain) that assign it."""
    from amaranth.hdl._ast import SignalDict
    from amaranth.hdl._mem import MemoryInstance
    drivers = SignalDict()

    def walk(frag):
        if isinstance(frag, MemoryInstance):
            return
        for stmts in frag.statements.values():
            for st in stmts:
                for sig in st._lhs_signals():
                    drivers.setdefault(sig, []).append(st)
        for sub, *_ in frag.subfragments:
            walk(sub)

    walk(fragment)
    return drivers


def _follows_logic(drivers, signal) -> bool:
    """Whether ``signal`` is driven by logic: not undriven (its reset value) and not a plain copy, through
    signals, of an undriven signal or a constant (``wiring.connect`` of an enable no one drives)."""
    from amaranth.hdl._ast import Assign, Const, Signal
    for _ in range(64):
        stmts = drivers.get(signal, [])
        if not stmts:
            return False
        if len(stmts) == 1 and isinstance(stmts[0], Assign) and isinstance(stmts[0].lhs, Signal):
            rhs = stmts[0].rhs
            if isinstance(rhs, Const):
                return False
            if isinstance(rhs, Signal):
                signal = rhs
                continue
        return True
    return True


def design_facts(cfg: ChipConfig, slice_bits: int) -> DesignFacts:
    from amaranth.hdl import Fragment, Signal
    from hw.core import LifCore, WeightMemory
    fragment = Fragment.get(LifCore(cfg.structure()), None)
    registers, _, ports = _design_parts(fragment)
    weight_memory = next(sub.origins[0] for sub, *_ in fragment.subfragments
                         if isinstance((getattr(sub, "origins", None) or (None,))[0], WeightMemory))
    sl = lambda width: math.ceil(width / slice_bits)
    drivers = _drivers(fragment)
    writes = {name: sl(width) for name, kind, _, width in ports if kind == "writes"}
    weights = [width for name, kind, _, width in ports if kind == "reads" and name.startswith("weight_memory.")]
    # read ports outside the weight memory: an undriven enable reads on every cycle; a driven one reads when
    # used — the threshold offsets once per UPDATE fetch, the membranes' host ports on host reads only (not
    # charged: a sample's busy cycles have none)
    # A read port without a clock (its enable the constant 1: LUT RAM, e.g. the touched chip's stamp copy) is no
    # block-RAM port and is not charged as one.
    other = [(name, en, width) for name, kind, en, width in ports
             if kind == "reads" and not name.startswith("weight_memory.") and isinstance(en, Signal)]
    return DesignFacts(register_bits=sum(s.shape().width for s in registers),
                       read_slices=sum(sl(width) for name, en, width in other if not _follows_logic(drivers, en)),
                       offset_read_slices=sum(sl(width) for name, en, width in other
                                              if name == "offset_memory" and _follows_logic(drivers, en)),
                       weight_word_slices=sl(max(weights)),
                       weight_reads_gated=_follows_logic(_drivers(fragment), weight_memory.read.en),
                       membrane_write_slices=max((w for name, w in writes.items()     # any bank: equal words
                                                  if name.startswith("membrane_memory")), default=0),
                       # an append writes one entry: of a two-wide list (touched chip: ``storage_even`` /
                       # ``storage_odd``, ``rows_even`` / ``rows_odd``, equal words) one memory of each kind
                       event_write_slices=sum(max((w for name, w in writes.items()
                                                   if name.startswith(f"event_list.{kind}")), default=0)
                                              for kind in ("storage", "rows")),
                       update_follows_events=follows_events(cfg))


def _read_pj(part: PartEnergy, facts: DesignFacts) -> tuple[float, float]:
    """Block-RAM read energy (pJ) per cycle and per weight read: the read ports outside the weight memory
    read on every cycle; the weight memory reads one bank's word per weight read if its reader drives
    ``read.en``, else on every cycle (only the addressed bank)."""
    weight_word = part.bram_access_pj * facts.weight_word_slices
    per_cycle = part.bram_access_pj * facts.read_slices + (0.0 if facts.weight_reads_gated else weight_word)
    return per_cycle, (weight_word if facts.weight_reads_gated else 0.0)


#: part-independent activity per counted unit, fitted by ``bench/power_calibration.py --write`` (sim/power_fit.json,
#: "structural"): register toggles and DSP activations per
#:   cycle, lane_cycle (lanes x cycles), lane_weight_bit (lanes x weight bits x weight reads: the event datapath),
#:   follow (lanes x weight reads, where the update pipeline follows the event reads: :func:`follows_events`),
#:   neuron_update (the ``neuron_updates`` counter), event (address events moved)
STRUCTURAL_TERMS = {"toggles": ("cycle", "lane_cycle", "lane_weight_bit", "follow", "neuron_update", "event"),
                    "dsp": ("lane_read", "follow", "neuron_update")}


def structural_units() -> dict:
    """The fitted activity rates (:data:`STRUCTURAL_TERMS`: register toggles and DSP activations per unit) —
    part-independent counts, priced by each part's ``toggle_pj`` / ``dsp_pj``; fitted by
    ``bench/power_calibration.py --write`` on several structures (30,16,2 at 2/4/8 lanes and w4/w8, 100,64,10
    and 64,128,10 at 8 lanes, 784-128-10 / 8 lanes on MNIST-like images) and stored in ``sim/power_fit.json``
    (errors, leave-one-structure-out: the record docs/results/power_calibration.json, docs/power.md)."""
    from sim.power import power_fit
    return power_fit()["structural"]


def structural_features(cfg: ChipConfig, counters: dict, facts: DesignFacts | None = None) -> dict[str, np.ndarray]:
    """``{"toggles": (B, 6), "dsp": (B, 3)}``: the units of :data:`STRUCTURAL_TERMS` of each sample."""
    f = counter_features(counters)          # synops, weight_reads, state_reads, state_writes, nu, events, cycles
    follow = (facts.update_follows_events if facts is not None else follows_events(cfg))
    L, reads, cycles = cfg.lanes, f[:, 1], f[:, 6]
    units = {"cycle": cycles, "lane_cycle": L * cycles, "lane_weight_bit": L * cfg.weight_bits * reads,
             "follow": L * reads * float(follow), "neuron_update": f[:, 4], "event": f[:, 5], "lane_read": L * reads}
    return {k: np.stack([units[t] for t in terms], axis=1) for k, terms in STRUCTURAL_TERMS.items()}


def _fixed_pj(cfg: ChipConfig, counters: dict, part: PartEnergy, facts: DesignFacts) -> np.ndarray:
    """The part of the energy elaboration fixes: clock and always-on reads per cycle, RAM reads and writes."""
    f = counter_features(counters)
    read_cycle, read_weight = _read_pj(part, facts)
    per_cycle = part.clock_cycle_pj + part.clock_ff_pj * facts.register_bits + read_cycle
    fetches = f[:, 2] - f[:, 1]
    return (f[:, 6] * per_cycle + f[:, 1] * read_weight + f[:, 3] * part.bram_access_pj * facts.membrane_write_slices
            + fetches * part.bram_access_pj * facts.offset_read_slices
            + f[:, 5] * part.bram_access_pj * facts.event_write_slices)


def fit_structural(runs: Sequence[tuple[ChipConfig, Activity]]) -> dict:
    """The rates of :data:`STRUCTURAL_TERMS` (non-negative least squares of the RTL's register toggles and DSP
    activations, relative error, each structure weighted alike) over ``runs`` of several structures."""
    from scipy.optimize import nnls
    out = {}
    for kind, terms in STRUCTURAL_TERMS.items():
        X, y, w = [], [], []
        for cfg, a in runs:
            X.append(structural_features(cfg, a.counters)[kind])
            t = np.asarray(a.toggles if kind == "toggles" else a.dsp, float)
            y.append(t)
            w.append(np.full(len(t), 1 / np.sqrt(len(t))))
        X, y, w = np.concatenate(X), np.concatenate(y), np.concatenate(w)
        w = w / np.maximum(y, 1.0)
        scale = np.maximum(X.max(axis=0), 1.0)
        coef, _ = nnls((X / scale) * w[:, None], y * w)
        out[kind] = dict(zip(terms, (coef / scale).tolist()))
    return out


def structural_profile(cfg: ChipConfig, part: str, units: dict | None = None, clock_mhz: float = 12.0):
    """A :class:`sim.power.DeviceProfile` for ``cfg``'s structure on ``part``: the clock and block-RAM energies
    from elaboration (register bits, RAM slices, gated ports), the register toggles and DSP activations from
    the fitted rates (:func:`structural_units`, or ``units``) times the part's ``toggle_pj`` / ``dsp_pj``. The
    fast model's counters times this profile is the DSE's ``--power fast`` estimate."""
    from sim.power import DeviceProfile
    p = part_energy(part)
    u = units or structural_units()
    facts = design_facts(cfg, p.bram_slice_bits)
    read_cycle, read_weight = _read_pj(p, facts)
    t, d = u["toggles"], u["dsp"]
    L, follow = cfg.lanes, float(facts.update_follows_events)
    tog, dsp = p.toggle_pj, p.dsp_pj
    per_read = (tog * (t["lane_weight_bit"] * L * cfg.weight_bits + t["follow"] * L * follow)
                + dsp * (d["lane_read"] * L + d["follow"] * L * follow))
    # the threshold-offset read of an UPDATE fetch (one per ``lanes`` neuron updates)
    offset_read = p.bram_access_pj * facts.offset_read_slices / L
    return DeviceProfile(
        f"{part}:{cfg.structure_hash[:8]}", clock_mhz=clock_mhz, static_mw=p.static_mw, synop_pj=0.0,
        weight_read_pj=read_weight + per_read, state_read_pj=0.0,
        state_write_pj=p.bram_access_pj * facts.membrane_write_slices,
        neuron_update_pj=tog * t["neuron_update"] + dsp * d["neuron_update"] + offset_read,
        event_pj=tog * t["event"] + p.bram_access_pj * facts.event_write_slices,
        cycle_pj=p.clock_cycle_pj + p.clock_ff_pj * facts.register_bits + read_cycle
        + tog * (t["cycle"] + t["lane_cycle"] * L),
        source=f"sim.activity.structural_profile ({p.source})")
