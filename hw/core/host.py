"""The host side of the core: the word write and read bus signatures, :class:`RuntimeRegisters` (beta,
threshold and reset-mode registers; decodes the write bus into them, into the weight and threshold-offset
memories' write ports and into clear requests) and :class:`ReadBus` (the registered read mux over the
membrane memories' host ports and the counters). The address map itself is :mod:`hw.bus`."""
from __future__ import annotations

from amaranth.hdl import Array, Module, Mux, Signal, signed
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.bus import (COMMAND_FLUSH, READ_COUNTERS, READ_MEMBRANES, REGION_BIAS, REGION_LEAK, REGION_OFFSETS, REGION_REGS,
                    REGION_WEIGHTS, BusMap)
from hw.config import COUNTER_BITS, ChipConfig
from hw.core.shapes import _bank_addr, _lanes_of


class _WordBusSignature(wiring.Signature):
    """What the two host buses share: equal when their widths are, shown with them."""
    addr_width: int
    data_width: int

    def __eq__(self, other):
        return (type(self) is type(other) and self.addr_width == other.addr_width and
                self.data_width == other.data_width)

    def __repr__(self):
        return f"{type(self).__name__}(addr_width={self.addr_width}, data_width={self.data_width})"


class WriteBusSignature(_WordBusSignature):
    """Signature of the host's word write bus (host's view: all outputs). See :mod:`hw.bus` for the map.

    Parameters
    ----------
    bus : :class:`hw.bus.BusMap`
        Address map that sizes the bus.

    Members
    -------
    addr : :py:`Out(bus.addr_bits)`
        ``region << offset_bits | offset``.
    data : :py:`Out(bus.write_data_bits)`
        Word to write.
    en : :py:`Out(1)`
        Write strobe: one word is written at each clock edge it is high.
    """

    def __init__(self, bus: BusMap):
        self.addr_width, self.data_width = bus.addr_bits, bus.write_data_bits
        super().__init__({"addr": Out(self.addr_width), "data": Out(self.data_width), "en": Out(1)})


class ReadBusSignature(_WordBusSignature):
    """Signature of the host's word read bus (host's view). See :mod:`hw.bus` for the map.

    Parameters
    ----------
    bus : :class:`hw.bus.BusMap`
        Address map that sizes the bus.

    Members
    -------
    addr : :py:`Out(bus.read_addr_bits)`
        ``region << read_offset_bits | offset``.
    data : :py:`In(bus.read_data_bits)`
        The word at the ``addr`` of the previous cycle (registered read).
    """

    def __init__(self, bus: BusMap):
        self.addr_width, self.data_width = bus.read_addr_bits, bus.read_data_bits
        super().__init__({"addr": Out(self.addr_width), "data": In(self.data_width)})


class RuntimeRegisters(wiring.Component):
    """Beta, threshold and reset-mode registers, and the decoder of the host write bus.

    Register writes update the registers; weight and offset writes go straight to the memories' write
    ports; a command write with bit 0 set raises ``clear`` for one cycle, the cycle after the write (a
    register: the host bus's decoder stays out of the core's paths). The registers power up with
    ``cfg``'s beta, threshold and reset mode. ``beta`` and ``threshold`` are registers that show the registers
    of ``layer`` one cycle later (the update pipeline reads them two or more cycles after its layer is set,
    and the leak multiplier's input comes from a register instead of through the layer mux).
    """

    def __init__(self, cfg: ChipConfig, bus: BusMap, weight_port: wiring.Signature,
                 offset_port: wiring.Signature, leak_port: wiring.Signature | None = None,
                 bias_port: wiring.Signature | None = None):
        self.cfg, self.bus = cfg, bus
        members = {
            "wr": In(WriteBusSignature(bus)),
            "weights": In(weight_port),            # drives the weight memory's write port
            "offsets": In(offset_port),            # drives the threshold-offset memory's write port
            "layer": In(range(cfg.num_layers)),
            "beta": Out(cfg.beta_frac_bits + 1, init=cfg.beta_int[0]),     # 2**f: no leak (IF)
            "threshold": Out(cfg.membrane_bits - 1, init=cfg.threshold[0]),
            "reset_zero": Out(1),
            "clear": Out(1),
        }
        if cfg.touched:                            # update by touch: the elapsed-leak table and the flush command
            members.update(leak=In(leak_port), flush=Out(1))
        if cfg.has_bias:                           # the bias memory's write port (region 3)
            members.update(bias=In(bias_port))
        super().__init__(members)

    def elaborate(self, platform):
        cfg, bus = self.cfg, self.bus
        m = Module()
        betas = Array(Signal(self.beta.shape(), name=f"beta_l{l}", init=cfg.beta_int[l])
                      for l in range(cfg.num_layers))
        thresholds = Array(Signal(self.threshold.shape(), name=f"threshold_l{l}", init=cfg.threshold[l])
                           for l in range(cfg.num_layers))
        reset_zero = Signal(init=int(cfg.reset == "zero"))
        m.d.sync += [self.beta.eq(betas[self.layer]), self.threshold.eq(thresholds[self.layer])]
        m.d.comb += self.reset_zero.eq(reset_zero)

        region = self.wr.addr[bus.offset_bits:]
        offset = self.wr.addr[:bus.offset_bits]
        for port, target in ((self.weights, REGION_WEIGHTS), (self.offsets, REGION_OFFSETS)):
            m.d.comb += [port.addr.eq(offset), port.data.eq(self.wr.data),
                         port.en.eq(self.wr.en & (region == target))]
        with m.If(self.wr.en & (region == REGION_REGS)):
            for l in range(cfg.num_layers):
                with m.If(offset == bus.reg_beta(l)):
                    m.d.sync += betas[l].eq(self.wr.data)
                with m.If(offset == bus.reg_threshold(l)):
                    m.d.sync += thresholds[l].eq(self.wr.data)
            with m.If(offset == bus.reg_reset):
                m.d.sync += reset_zero.eq(self.wr.data[0])
        m.d.sync += self.clear.eq(self.wr.en & (region == REGION_REGS) & (offset == bus.reg_command) &
                                  self.wr.data[0])
        if cfg.touched:
            m.d.comb += [self.leak.addr.eq(offset), self.leak.data.eq(self.wr.data),
                         self.leak.en.eq(self.wr.en & (region == REGION_LEAK))]
            m.d.sync += self.flush.eq(self.wr.en & (region == REGION_REGS) & (offset == bus.reg_command) &
                                      self.wr.data[COMMAND_FLUSH.bit_length() - 1])
        if cfg.has_bias:
            m.d.comb += [self.bias.addr.eq(offset), self.bias.data.eq(self.wr.data),
                         self.bias.en.eq(self.wr.en & (region == REGION_BIAS))]
        return m


class ReadBus(wiring.Component):
    """The host read bus: region 0 reads membrane words (the host's address map, ``state_base(l) + word``)
    through the membrane memories' host read ports (``membrane_addr`` in bank ``ChipConfig.state_bank(l)``,
    data in ``membrane_data``), region 1 the ``counters``; ``rd.data`` follows ``rd.addr`` by one cycle.

    The host read ports read (``membrane_en``) only when their word can differ from the one they hold: the
    address is in region 0 and is another word than the last one read, or a membrane was written
    (``membrane_written``, any bank) in or after the cycle of the last read. ``rd.data`` is the same as with
    ports that read on every cycle; a host that is not reading, or keeps reading one word of a chip at rest,
    costs no block-RAM reads."""

    def __init__(self, cfg: ChipConfig, bus: BusMap):
        self.cfg, self.bus = cfg, bus
        word = _lanes_of(signed(cfg.acc_bits), cfg)
        bank_addr = _bank_addr(cfg)
        super().__init__({
            "rd": In(ReadBusSignature(bus)),
            "membrane_addr": Out(bank_addr),
            "membrane_en": Out(1),
            "membrane_written": In(1),
            "membrane_data": In(data.ArrayLayout(word, cfg.state_banks)),
            "counters": In(data.ArrayLayout(COUNTER_BITS, len(cfg.counter_names))),
        })

    def elaborate(self, platform):
        cfg, bus, n = self.cfg, self.bus, len(self.cfg.counter_names)
        m = Module()
        region = self.rd.addr[bus.read_offset_bits:]
        offset = self.rd.addr[:bus.read_offset_bits]
        last_region = Signal.like(region)
        counter = Signal(COUNTER_BITS)
        counters = Array(self.counters[k] for k in range(n))
        # the word's bank and its address there: from the layer whose words hold `offset`
        bank, last_bank = Signal(range(cfg.state_banks)), Signal(range(cfg.state_banks))
        m.d.comb += self.membrane_addr.eq(offset)
        for l in range(cfg.num_layers):
            with m.If(offset >= cfg.state_base(l)):
                m.d.comb += [bank.eq(cfg.state_bank(l)),
                             self.membrane_addr.eq(offset - cfg.state_base(l) + cfg.bank_base(l))]
        m.d.sync += [last_region.eq(region), last_bank.eq(bank),
                     counter.eq(counters[offset[:max(1, (n - 1).bit_length())]])]
        # the host ports' read enable: a new word, or a write since the last read (the ports are not transparent:
        # a write in the cycle of a read is not in that read's data)
        last_offset, dirty = Signal.like(offset, name="host_last_offset"), Signal(init=1, name="host_dirty")
        m.d.comb += self.membrane_en.eq((region == READ_MEMBRANES) & ((offset != last_offset) | dirty))
        with m.If(self.membrane_en):
            m.d.sync += last_offset.eq(offset)
        m.d.sync += dirty.eq(self.membrane_written | (dirty & ~self.membrane_en))
        membrane = Array(self.membrane_data[b] for b in range(cfg.state_banks))[last_bank]
        m.d.comb += self.rd.data.eq(Mux(last_region == READ_COUNTERS, counter, membrane))
        return m

