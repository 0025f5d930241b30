"""The performance counters: :func:`increment_layout` (each counter's increment in a cycle, as the
sequencer reports it) and :class:`PerformanceCounters` (registered, saturating, cleared by the host)."""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.config import COUNTER_BITS, ChipConfig


def increment_layout(cfg: ChipConfig) -> data.StructLayout:
    """One field per counter of :attr:`hw.config.ChipConfig.counter_names`: its increment this cycle."""
    return data.StructLayout({name: range(max(cfg.lanes, 2) + 1) for name in cfg.counter_names})


class PerformanceCounters(wiring.Component):
    """The per-sample counters (:attr:`hw.config.ChipConfig.counter_names`): each adds its field of
    ``increments`` every cycle (one cycle later: the increments are registered) and saturates at
    ``2**COUNTER_BITS - 1``; ``clear`` zeroes them all."""

    def __init__(self, cfg: ChipConfig):
        self.cfg = cfg
        super().__init__({
            "increments": In(increment_layout(cfg)),
            "clear": In(1),
            "counts": Out(data.ArrayLayout(COUNTER_BITS, len(cfg.counter_names))),
        })

    def elaborate(self, platform):
        m = Module()
        top = (1 << COUNTER_BITS) - 1
        # the increments are registered first (the counters lag the activity by one cycle; LifCore stays
        # busy one cycle longer): the paths that decide them end at this register, not at the adders
        pending = Signal.like(self.increments)
        m.d.sync += pending.eq(Mux(self.clear, 0, self.increments))
        for k, name in enumerate(self.cfg.counter_names):
            count = Signal(COUNTER_BITS, name=f"count_{name}")
            total = count + pending[name]
            with m.If(self.clear):
                m.d.sync += count.eq(0)
            with m.Else():
                m.d.sync += count.eq(Mux(total > top, top, total))
            m.d.comb += self.counts[k].eq(count)
        return m

