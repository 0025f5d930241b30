"""The per-layer bias (``ChipConfig.bias``; ``docs/chip.md``, "Bias"): the parts of the
:class:`hw.core.sequencer.Sequencer` and :class:`hw.core.lanes.NeuronLanes` built only for a chip with a bias (a
chip without one has none of them).

* **The memory.** ``LifCore`` holds a bias memory of ``bias_depth`` words (one per layer and group: word
  ``bias_base(l) + g`` holds the ``lanes`` channels' — fc: neurons' — biases, ``membrane_bits`` each), written by the
  host on region 3 (:func:`hw.bus.bias_words`) and powered up with ``cfg.bias``.
* **The read.** The update engine addresses it beside the threshold offsets: a group fetched in cycle ``c`` (word
  ``pos·G + g``) reads bias word ``bias_base(l) + g`` — every position of a conv layer shares its channels' word —
  with the same registered address, hold and read enable as the offsets, so its data reaches the lanes with them.
* **The add.** One more pipeline stage before the saturate stage (:data:`hw.config.BIAS_UPDATE_STAGES`): the lanes
  register ``word + b`` (``acc_bits + 1`` bits, exact), which the saturate stage clamps as before.
"""
from __future__ import annotations

from amaranth.hdl import Mux, Signal, signed
from amaranth.lib import memory
from amaranth.lib.wiring import In

from hw.bus import bias_words
from hw.config import ChipConfig
from hw.core.shapes import _lanes_of, _per_layer


def bias_memory(cfg: ChipConfig) -> memory.Memory:
    """The bias memory (chips with a bias only), its power-up contents ``cfg.bias``."""
    return memory.Memory(shape=_lanes_of(signed(cfg.membrane_bits), cfg).size, depth=cfg.bias_depth,
                         init=bias_words(cfg))


def bias_members(cfg: ChipConfig, bias_port) -> dict:
    """The sequencer's bias read port member (none without a bias)."""
    return {"bias": In(bias_port)} if cfg.has_bias else {}


class BiasPath:
    """The bias methods of :class:`hw.core.sequencer.Sequencer` (``s``: its shared state)."""

    def _bias_datapath(self, m, s):
        """The bias memory's read address: ``bias_base(layer) + g`` of the group fetched, registered and held
        exactly as the offsets' (so the data enters stage 2 with them)."""
        cfg = self.cfg
        if not cfg.has_bias:
            return
        base = _per_layer(cfg, self.layer, cfg.bias_base, range(cfg.bias_depth + 1))
        group = s.fetch_g if s.spatial else s.fetch_group
        addr, addr_2 = (Signal(range(cfg.bias_depth + 1), name=f"bias_addr{i}") for i in ("", "_2"))
        with m.If(self.advance):
            m.d.sync += [addr.eq(base + group), addr_2.eq(addr)]
        m.d.comb += [self.bias.addr.eq(Mux(s.hold, addr_2, addr)), self.bias.en.eq(self.advance & s.valid[0])]


def bias_stage(cfg: ChipConfig, k: int, word, offset, bias_data, stage, first: int):
    """Lane ``k``: register the lane's bias with the word (stage ``first``), then ``word + b`` and the offset (the
    next stage). Returns (the biased word, the offset) as the saturate stage's inputs."""
    b = Signal(signed(cfg.membrane_bits), name=f"bias{k}_in")
    stage[first].append(b.eq(bias_data[k]))
    biased = Signal(signed(max(cfg.acc_bits, cfg.membrane_bits) + 1), name=f"biased{k}")
    offset_b = Signal.like(offset, name=f"offset_bias{k}")
    stage[first + 1] += [biased.eq(word + b), offset_b.eq(offset)]
    return biased, offset_b
