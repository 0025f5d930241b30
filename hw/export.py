"""Everything a board flow needs for one programmed chip: Verilog, memory images, config, port map."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

from hw.bus import BusMap, bias_words, offset_words, weight_words, write_hex_image
from hw.config import ChipConfig, ConfigError, clog2

TOPLEVEL = "spikeloop_core"


#: FPGA families whose vendor primitives the core can be elaborated with outside a build (``family=``), and the
#: device assumed for each (the iCE40 UltraPlus has the SPRAM)
FAMILIES = {"ecp5": "LFE5U-25F", "ice40": "iCE40UP5K"}


def check_family(family: str | None) -> str | None:
    """``family`` if it is None or one of :data:`FAMILIES`, else a ValueError naming the allowed values."""
    if family is not None and family not in FAMILIES:
        raise ValueError(f"family={family!r}: allowed values are None, {', '.join(FAMILIES)}")
    return family


#: the most memory bits (weights and membranes, :func:`memory_bits`) a design is elaborated with. Amaranth's
#: elaboration and Verilog conversion take about 3 s and 5 MB per Mbit of memory (measured here: 1024x1024
#: at 8 lanes, 8.4 Mbit, 29 s and 190 MB; 256x256 7 s), so this cap is about 6 minutes and 1 GB; the largest
#: target part (the ECP5-85F) holds 4.4 Mbit in all, a 30th of it
MAX_ELABORATION_BITS = 1 << 27


def memory_bits(cfg: ChipConfig) -> dict[str, int]:
    """The bits of the design's two large memories, a lower bound of what a build must store:
    ``weights`` (:attr:`ChipConfig.weight_depth` words of ``lanes * weight_bits``) and ``membranes``
    (:attr:`ChipConfig.state_depth` words of ``lanes * acc_bits``); ``total`` is their sum."""
    w = cfg.weight_depth * cfg.lanes * cfg.weight_bits
    m = cfg.state_depth * cfg.lanes * cfg.acc_bits
    return {"weights": w, "membranes": m, "total": w + m}


def describe_size(cfg: ChipConfig) -> str:
    """``layer_sizes=(...) lanes=L w8 m16: memories of 8.4 Mbit (weights 8.4, membranes 0.02)``."""
    b = memory_bits(cfg)
    mb = lambda n: f"{n / 2**20:.3g}"
    return (f"layer_sizes={cfg.layer_sizes} lanes={cfg.lanes} w{cfg.weight_bits} m{cfg.membrane_bits}: memories of "
            f"{mb(b['total'])} Mbit (weights {mb(b['weights'])}, membranes {mb(b['membranes'])})")


def check_elaboration_size(cfg: ChipConfig) -> None:
    """Refuse, before elaboration starts, a design whose memories exceed :data:`MAX_ELABORATION_BITS`."""
    if memory_bits(cfg)["total"] > MAX_ELABORATION_BITS:
        raise ConfigError(f"{describe_size(cfg)}; a design is elaborated with at most "
                          f"{MAX_ELABORATION_BITS / 2**20:.0f} Mbit (about 6 min and 1 GB; docs/guides/run_and_build.md#size-estimates) "
                          "— use fewer or smaller layers, or fewer weight bits")


def verilog_text(cfg: ChipConfig, weights: Sequence[np.ndarray] | None = None,
                 threshold_offsets: Sequence[np.ndarray] | None = None, family: str | None = None) -> str:
    """Verilog of :class:`hw.core.LifCore` (module ``spikeloop_core``); weights become memory contents.
    ``family="ecp5"`` elaborates it as a build for that family does (the weight banks as ``DP16KD`` block
    RAMs, :class:`hw.core.WeightBank`); :func:`sim.cocotb_sim.primitive_models` simulates those."""
    from types import SimpleNamespace
    from amaranth.back import verilog
    from hw.core import LifCore
    check_elaboration_size(cfg)
    platform = SimpleNamespace(family=family, device=FAMILIES[check_family(family)]) if family else None
    return verilog.convert(LifCore(cfg, weights, threshold_offsets), name=TOPLEVEL, platform=platform)


def export_design(cfg: ChipConfig, out: Path, weights: Sequence[np.ndarray] | None = None,
                  threshold_offsets: Sequence[np.ndarray] | None = None) -> dict[str, Path]:
    """Write ``spikeloop_core.v``, ``weights.hex``, ``threshold_offsets.hex``, ``config.json`` and
    ``ports.md`` (and ``bias.hex`` on a chip with a bias: the bias memory's power-up image, ``cfg.bias``) into
    ``out``; returns the paths by kind."""
    out = Path(out)
    check_elaboration_size(cfg)
    out.mkdir(parents=True, exist_ok=True)
    if weights is not None:
        weights = cfg.check_weights(weights)
    threshold_offsets = cfg.check_offsets(threshold_offsets)
    bus = BusMap(cfg)
    paths = {"verilog": out / f"{TOPLEVEL}.v", "config": out / "config.json", "ports": out / "ports.md",
             "threshold_offsets": out / "threshold_offsets.hex"}
    from hw.files import write_atomic, write_text
    write_text(paths["verilog"], verilog_text(cfg, weights, threshold_offsets))
    if weights is not None:
        paths["weights"] = out / "weights.hex"
        write_hex_image(paths["weights"], weight_words(cfg, weights), cfg.lanes * cfg.weight_bits)
        write_atomic(out / "weights.npz", lambda p: np.savez(p, **{f"w{l}": w for l, w in enumerate(weights)}))
    write_hex_image(paths["threshold_offsets"], offset_words(cfg, threshold_offsets),
                    cfg.lanes * cfg.threshold_offset_bits)
    if cfg.has_bias:
        paths["bias"] = out / "bias.hex"
        write_hex_image(paths["bias"], bias_words(cfg), cfg.lanes * cfg.membrane_bits)
    write_text(paths["config"], json.dumps(cfg.to_dict(), indent=2))
    write_text(paths["ports"], port_map(cfg, bus))
    return paths


def port_map(cfg: ChipConfig, bus: BusMap) -> str:
    L = cfg.num_layers
    return f"""# spikeloop_core ports ({cfg.layer_sizes}, lanes={cfg.lanes})

| port | dir | width | meaning |
|---|---|---|---|
| clk, rst | in | 1 | clock; synchronous active-high reset |
| events_in__valid / __ready | in / out | 1 | input address-event stream handshake |
| events_in__payload | in | {cfg.index_bits + 1} | bits [{cfg.index_bits - 1}:0] {_input_index_text(cfg)}, bit {cfg.index_bits} end of time step |
| events_out__valid / __ready | out / in | 1 | output address-event stream handshake |
| events_out__payload | out | {cfg.index_bits + 1} | bits [{cfg.index_bits - 1}:0] output-layer neuron index (HWC flat for a conv layer), bit {cfg.index_bits} end of time step |
| wr__addr / __data / __en | in | {bus.addr_bits} / {bus.write_data_bits} / 1 | word writes: region = addr[{bus.addr_bits - 1}:{bus.offset_bits}] (0 weights, 1 threshold offsets, 2 registers) |
| rd__addr / rd__data | in / out | {bus.read_addr_bits} / {bus.read_data_bits} | word reads, data one cycle after addr: region = addr[{bus.read_addr_bits - 1}:{bus.read_offset_bits}] (0 membranes, 1 counters) |
| busy | out | 1 | low while waiting for the first token of a time step |

Registers (region 2): beta_int of layer l at {bus.reg_beta(0)}+l, threshold of layer l at {bus.reg_threshold(0)}+l,
reset mode at {bus.reg_reset} (0 subtract, 1 zero), command at {bus.reg_command} (write 1: clear membranes and counters).
Layers: {L}. Weight words: {cfg.weight_depth} x {cfg.lanes * cfg.weight_bits} bits (`weights.hex`).
State words: {cfg.state_depth} x {cfg.lanes * cfg.acc_bits} bits.
""" + (f"""
Update by touch (`update = "touched"`, max_steps = {cfg.max_steps}): region 3 holds the elapsed-leak table, word
l*{cfg.max_steps + 1}+k = B_(l,k) ({cfg.beta_frac_bits + 1} bits; written with the registers by the drivers); command
value 2 flushes (every membrane's pending leak applied). A sample runs at most {cfg.max_steps} steps.
""" if cfg.touched else "") + ("""
Wavefront (`wavefront = true`): the layers run as a dataflow (docs/chip.md, "Wavefront"). The host may send the input
of later steps before it has the output of earlier ones; the output of each step still arrives in order, closed by an
end token. `busy` is low only when no step is under way anywhere (read the membranes or flush then).
""" if cfg.wavefront else "") + (f"""
Bias (`bias`): region 3 holds the bias memory, word bias_base(l)+g = the biases of channels (fc: neurons)
g*{cfg.lanes}.. of layer l, {cfg.membrane_bits} bits each ({cfg.bias_depth} x {cfg.lanes * cfg.membrane_bits} bits, `bias.hex`; powered up with
the config's biases, written with the registers by the drivers). The UPDATE pipeline is {cfg.update_latency} stages deep.
""" if cfg.has_bias else "")


def _input_index_text(cfg) -> str:
    """What an input event's index carries: the flat input address, or a conv chip's packed (y, x, c)."""
    if not cfg.packed_input:
        return "input address"
    C, H, W = cfg.input_shape
    bc, bx = clog2(C), clog2(W)
    return (f"packed input coordinate (y << {bx + bc}) \\| (x << {bc}) \\| c of the "
            f"{C}x{H}x{W} input (ChipConfig.input_address)")
