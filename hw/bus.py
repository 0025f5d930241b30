"""Host-visible address map and word packing of the accelerator (pure Python; no Amaranth).

The RTL (:mod:`hw.core`) decodes these addresses and every host driver (simulators, cocotb, a board)
encodes them, so the map is written down once, here.

Write bus (``wr.addr = region << offset_bits | offset``, one word per cycle when ``wr.en``):

* region 0, weights: word ``weight_base(l) + r*groups(l) + g`` holds ``W[l][r, g*lanes : (g+1)*lanes]``
  (conv: ``W[l]`` of shape ``(C_in, kh, kw, C_out)`` reshaped to rows ``r = (c*kh + ky)*kw + kx``)
* region 1, threshold offsets: word ``state_base(l) + pos*groups(l) + g`` holds offsets of neurons
  ``pos*C_out + g*lanes ...`` (``pos`` = output position of a conv layer, always 0 for fc)
* region 2, registers: ``l`` beta_int of layer l; ``L + l`` threshold of layer l; ``2L`` reset mode
  (0 subtract, 1 zero); ``2L + 1`` command (write 1: clear membranes and counters; ``update = "touched"``
  chips: write 2: *flush*, apply every word's pending leak)
* region 3 (``update = "touched"`` chips only), the elapsed-leak table: word ``l*(max_steps + 1) + k`` holds
  ``B_{l,k}`` (:func:`leak_table_words`; the registers' beta and this table must agree, :meth:`BusMap.register_writes`
  writes both)
* region 3 (chips with a bias, ``ChipConfig.bias``; never ``update = "touched"``), the bias memory: word
  ``bias_base(l) + g`` holds the biases of channels (fc: neurons) ``g*lanes ...`` of layer ``l``, ``membrane_bits``
  per lane (:func:`bias_words`; :meth:`BusMap.register_writes` writes them from the config)

Read bus (``rd.addr = region << read_offset_bits | offset``; ``rd.data`` valid one cycle later):

* region 0, membranes: word ``state_base(l) + pos*groups(l) + g`` (``lanes`` signed ``acc_bits`` values)
* region 1, counters: index into :attr:`hw.config.ChipConfig.counter_names` (``spikes_l0..``, then
  the fixed names)

Lane ``k`` of a word occupies bits ``[k*bits, (k+1)*bits)``, two's complement.
Event payload: ``index`` in bits ``[0, index_bits)``, ``end`` (end of time step) at bit ``index_bits``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from hw.config import COUNTER_BITS, ChipConfig, clog2

REGION_WEIGHTS, REGION_OFFSETS, REGION_REGS, REGION_LEAK = 0, 1, 2, 3
#: the bias memory's region (a chip with a bias is never ``update = "touched"``, whose region 3 is the leak table)
REGION_BIAS = 3

#: command register bits: clear (membranes, stamps and counters), flush (``update = "touched"``: every word's
#: pending leak applied; docs/chip.md, "Update by touch")
COMMAND_CLEAR, COMMAND_FLUSH = 1, 2
READ_MEMBRANES, READ_COUNTERS = 0, 1


@dataclass(frozen=True)
class BusMap:
    cfg: ChipConfig

    @property
    def num_counters(self) -> int:
        return len(self.cfg.counter_names)

    @property
    def offset_bits(self) -> int:
        c = self.cfg
        if c.touched:
            return clog2(max(c.weight_depth, c.state_depth, 2 * c.num_layers + 2, c.leak_table_depth))
        return clog2(max(c.weight_depth, c.state_depth, 2 * c.num_layers + 2, c.bias_depth))

    @property
    def addr_bits(self) -> int:
        return self.offset_bits + 2

    @property
    def read_offset_bits(self) -> int:
        return clog2(max(self.cfg.state_depth, self.num_counters))

    @property
    def read_addr_bits(self) -> int:
        return self.read_offset_bits + 1

    @property
    def write_data_bits(self) -> int:
        c = self.cfg
        return max(c.lanes * c.weight_bits, c.lanes * c.threshold_offset_bits, c.membrane_bits,
                   c.beta_frac_bits + 1, 2, c.lanes * c.membrane_bits if c.has_bias else 0)

    @property
    def read_data_bits(self) -> int:
        return max(self.cfg.lanes * self.cfg.acc_bits, COUNTER_BITS)

    def reg_beta(self, layer: int) -> int:
        return layer

    def reg_threshold(self, layer: int) -> int:
        return self.cfg.num_layers + layer

    @property
    def reg_reset(self) -> int:
        return 2 * self.cfg.num_layers

    @property
    def reg_command(self) -> int:
        return 2 * self.cfg.num_layers + 1

    def write_addr(self, region: int, offset: int) -> int:
        return (region << self.offset_bits) | offset

    def read_addr(self, region: int, offset: int) -> int:
        return (region << self.read_offset_bits) | offset

    # -- payloads ------------------------------------------------------------------------------------
    def pack_event(self, index: int, end: bool = False) -> int:
        return int(index) | (int(end) << self.cfg.index_bits)

    def unpack_event(self, word: int) -> tuple[int, bool]:
        ib = self.cfg.index_bits
        return word & ((1 << ib) - 1), bool((word >> ib) & 1)

    # -- images --------------------------------------------------------------------------------------
    def register_writes(self) -> list[tuple[int, int]]:
        """(address, data) pairs that program beta, threshold and reset mode from the config."""
        c = self.cfg
        out = []
        for l in range(c.num_layers):
            out.append((self.write_addr(REGION_REGS, self.reg_beta(l)), c.beta_int[l]))
            out.append((self.write_addr(REGION_REGS, self.reg_threshold(l)), c.threshold[l]))
        out.append((self.write_addr(REGION_REGS, self.reg_reset), int(c.reset == "zero")))
        out += [(self.write_addr(REGION_LEAK, k), v) for k, v in enumerate(leak_table_words(c))]
        out += [(self.write_addr(REGION_BIAS, k), v) for k, v in enumerate(bias_words(c))]
        return out


def pack_lanes(values: Iterable[int], bits: int) -> int:
    """Pack signed integers into one word, lane 0 in the least significant bits."""
    word, mask = 0, (1 << bits) - 1
    for k, v in enumerate(values):
        word |= (int(v) & mask) << (k * bits)
    return word


def unpack_lanes(word: int, bits: int, lanes: int) -> list[int]:
    """Inverse of :func:`pack_lanes` (sign-extends every lane)."""
    out, mask, sign = [], (1 << bits) - 1, 1 << (bits - 1)
    for k in range(lanes):
        v = (word >> (k * bits)) & mask
        out.append(v - (1 << bits) if v & sign else v)
    return out


def _padded_rows(cfg: ChipConfig, mat: np.ndarray, layer: int) -> np.ndarray:
    """``mat`` (..., C_out) with its last axis padded to ``groups*lanes`` and split: (..., G, lanes)."""
    g = cfg.groups(layer)
    pad = g * cfg.lanes - mat.shape[-1]
    return np.pad(mat, [(0, 0)] * (mat.ndim - 1) + [(0, pad)]).reshape(mat.shape[:-1] + (g, cfg.lanes))


def weight_words(cfg: ChipConfig, weights: Sequence[np.ndarray]) -> list[int]:
    """The weight memory image, one packed word per address (validated weights; conv kernels
    ``(C_in, kh, kw, C_out)`` as rows ``(c*kh + ky)*kw + kx``)."""
    words = []
    for l, w in enumerate(cfg.check_weights(weights)):
        rows = _padded_rows(cfg, w.reshape(cfg.weight_rows(l), -1), l)     # (rows, G, lanes)
        words += [pack_lanes(rows[i, g], cfg.weight_bits) for i in range(rows.shape[0]) for g in range(rows.shape[1])]
    return words


def leak_table_words(cfg: ChipConfig) -> list[int]:
    """The elapsed-leak table of an ``update = "touched"`` chip (empty otherwise): ``B_{l,k}`` for ``k = 0 ..
    max_steps`` per layer (``sim.event_bound.elapsed_leak_table`` of the layer's ``beta_int``), layer by layer."""
    if not cfg.touched:
        return []
    out = []
    f, S = cfg.beta_frac_bits, cfg.max_steps
    for b in cfg.beta_int:
        if b == 1 << f:                                  # IF: no leak, B_k = 2^f
            out += [1 << f] * (S + 1)
            continue
        row, p = [1 << f], 1
        for k in range(1, S + 1):                        # B_k falls with k: 0 once, 0 for good
            p, s = p * b, f * (k - 1)
            row.append((p + ((1 << s) >> 1)) >> s)
            if row[-1] == 0:
                break
        out += row + [0] * (S + 1 - len(row))
    return out


def bias_words(cfg: ChipConfig) -> list[int]:
    """The bias memory image of a chip with a bias (empty otherwise): per layer, one word per group, the
    biases of its ``lanes`` channels (fc: neurons) in ``membrane_bits`` each, the last group zero-padded."""
    if not cfg.has_bias:
        return []
    words = []
    for l, b in enumerate(cfg.bias):
        rows = _padded_rows(cfg, np.asarray(b, np.int64)[None, :], l)[0]       # (G, lanes)
        words += [pack_lanes(r, cfg.membrane_bits) for r in rows]
    return words


def offset_words(cfg: ChipConfig, offsets: Sequence[np.ndarray] | None) -> list[int]:
    """The threshold-offset memory image (validated offsets; ``None`` = zeros)."""
    words = []
    for l, o in enumerate(cfg.check_offsets(offsets)):
        rows = _padded_rows(cfg, o.reshape(cfg.positions(l), cfg.out_channels(l)), l)   # (pos, G, lanes)
        words += [pack_lanes(r, cfg.threshold_offset_bits) for r in rows.reshape(-1, cfg.lanes)]
    return words


def membranes_from_words(cfg: ChipConfig, words: Sequence[int]) -> list[np.ndarray]:
    """Split membrane words (``state_depth`` of them) into one vector per layer (HWC), padding dropped."""
    out = []
    for l in range(cfg.num_layers):
        b, n = cfg.state_base(l), cfg.state_words(l)
        vals = np.array([v for w in words[b:b + n] for v in unpack_lanes(w, cfg.acc_bits, cfg.lanes)], np.int64)
        vals = vals.reshape(cfg.positions(l), cfg.groups(l) * cfg.lanes)[:, :cfg.out_channels(l)]
        out.append(vals.reshape(-1))
    return out


def write_hex_image(path, words: Sequence[int], bits: int) -> None:
    """A ``$readmemh`` image: one hexadecimal word per line."""
    from hw.files import write_text
    digits = -(-bits // 4)
    write_text(path, "".join(f"{w:0{digits}x}\n" for w in words))
