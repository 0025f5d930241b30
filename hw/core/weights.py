"""The weight memory: :class:`WeightMemory` (banks, registered address and read enable, bank select) and
:class:`WeightBank` (one bank, built from an inferred memory, ECP5 ``DP16KD`` block RAMs or iCE40 UltraPlus
SPRAM)."""
from __future__ import annotations

from typing import Sequence

from amaranth.hdl import Array, C, ClockSignal, Const, Instance, Module, Mux, ResetSignal, Shape, Signal, signed, unsigned
from amaranth.lib import memory, wiring
from amaranth.lib.wiring import Out

from hw.config import ChipConfig
from hw.core.shapes import _lanes_of


class WeightBank(wiring.Component):
    """One bank of the weight memory: ``depth`` words of ``width`` bits, a write port and a read port whose
    data comes from a register after the RAM (reads take two cycles: ``read.data`` shows the word at the
    ``read.addr`` of two cycles before if ``read.en`` was high then, else it holds).

    Members
    -------
    write : ``Out(memory.WritePort.Signature(addr_width=ceil_log2(depth), shape=width))``
        The host's write port.
    read : ``Out(memory.ReadPort.Signature(addr_width=ceil_log2(depth), shape=width))``
        The read port; ``read.en`` low: no RAM read, ``read.data`` holds.

    ``kind`` (:data:`KINDS`) is what the bank is built from:

    * ``"memory"`` — an :class:`amaranth.lib.memory.Memory` and a register (simulation; block RAM inferred
      by Yosys on any FPGA);
    * ``"dp16kd"`` — ECP5: ``ceil(width / 36)`` ``DP16KD`` block RAMs in their 512 x 36 pseudo-dual-port mode
      (as Yosys maps the memory), the register being the block RAM's own output registers
      (``REGMODE_A = REGMODE_B = "OUTREG"``: in this mode the word's low half leaves on port A's pins through
      port A's register, the high half on port B's): the read data leaves the block RAM from a register, not
      from its array (nextpnr: 0.97 instead of 5.61 ns clock-to-output),
      and no fabric register has to sit between the block RAM and the bank select;
    * ``"spram"`` — iCE40 UltraPlus: ``ceil(width / 16)`` ``SB_SPRAM256KA`` (16K x 16 single-port RAMs, one
      port shared by the host's writes and the reads; a write wins) and a register. SPRAM is not
      initialised by the bitstream: such a bank starts undefined and the host writes the weights.

    ``sim/primitives/<family>`` models the primitives for simulating a build (:func:`hw.export.verilog_text`
    with ``family=``). A read in the cycle the host writes the same word is undefined in every kind."""

    KINDS = ("memory", "dp16kd", "spram")
    #: words per bank of each kind (a DP16KD in its 36-bit mode, an SPRAM)
    DEPTH = {"memory": 512, "dp16kd": 512, "spram": 16384}
    TILE_WIDTH = {"dp16kd": 36, "spram": 16}

    def __init__(self, width: int, depth: int, init: Sequence[int] = (), kind: str = "memory", name: str = "bank"):
        if kind not in self.KINDS:
            raise ValueError(f"kind={kind!r}: allowed values are {', '.join(self.KINDS)}")
        if not 1 <= depth <= self.DEPTH[kind]:
            raise ValueError(f"depth={depth}: a {kind} bank holds 1 to {self.DEPTH[kind]} words")
        self.width, self.depth, self.kind, self.bank_name = width, depth, kind, name
        self.init = list(init) + [0] * (depth - len(init))
        if kind == "spram" and any(self.init):
            raise ValueError("weights: SPRAM is not initialised by the bitstream; build without weights and "
                             "write them over the host link")
        addr_width = Shape.cast(range(depth)).width
        super().__init__({
            "write": Out(memory.WritePort.Signature(addr_width=addr_width, shape=width)),
            "read": Out(memory.ReadPort.Signature(addr_width=addr_width, shape=width)),
        })

    def elaborate(self, platform):
        m = Module()
        if self.kind == "dp16kd":
            self._dp16kd(m)
            return m
        data = Signal(self.width, name=f"{self.bank_name}_data")
        m.d.comb += self.read.data.eq(data)
        if self.kind == "spram":
            m.d.sync += data.eq(self._spram(m))
            return m
        mem = memory.Memory(shape=self.width, depth=self.depth, init=self.init)
        m.submodules[self.bank_name] = mem
        write, read = mem.write_port(), mem.read_port()
        m.d.comb += [write.addr.eq(self.write.addr), write.data.eq(self.write.data), write.en.eq(self.write.en),
                     read.addr.eq(self.read.addr), read.en.eq(self.read.en)]
        m.d.sync += data.eq(read.data)
        return m

    @classmethod
    def initvals(cls, words: Sequence[int]) -> list[int]:
        """The 64 ``INITVAL_xx`` of a ``DP16KD`` holding 36-bit ``words`` in its 512 x 36 mode: 18-bit halves
        (the low one first), 16 to a 320-bit row at a stride of 20 bits (Yosys's ``brams_map_16kd.v``)."""
        depth = cls.DEPTH["dp16kd"]
        halves = [(w >> (18 * h)) & 0x3FFFF for w in list(words) + [0] * (depth - len(words)) for h in (0, 1)]
        return [sum(halves[16 * r + i] << (20 * i) for i in range(16)) for r in range(64)]

    def _tiles(self):
        T = self.TILE_WIDTH[self.kind]
        return T, -(-self.width // T)

    def _dp16kd(self, m):
        T, tiles = self._tiles()
        write_data, read_data = Signal(T * tiles), Signal(T * tiles)
        m.d.comb += [write_data.eq(self.write.data), self.read.data.eq(read_data)]
        write_addr, read_addr = Signal(9), Signal(9)
        m.d.comb += [write_addr.eq(self.write.addr), read_addr.eq(self.read.addr)]
        for t in range(tiles):
            words = [(w >> (T * t)) & ((1 << T) - 1) for w in self.init]
            ports = {}
            for i in range(18):          # 36-bit words: bits 0-17 on port A's pins, 18-35 on port B's
                ports |= {f"i_DIA{i}": write_data[T * t + i], f"i_DIB{i}": write_data[T * t + 18 + i],
                          f"o_DOA{i}": read_data[T * t + i], f"o_DOB{i}": read_data[T * t + 18 + i]}
            for i in range(14):          # word address on bits 13..5; bits 3..0 of port A are the byte enables
                ports[f"i_ADA{i}"] = write_addr[i - 5] if i >= 5 else C(int(i < 4), 1)
                ports[f"i_ADB{i}"] = read_addr[i - 5] if i >= 5 else C(0, 1)
            m.submodules[f"{self.bank_name}_tile{t}"] = Instance(
                "DP16KD",
                p_DATA_WIDTH_A=T, p_DATA_WIDTH_B=T, p_REGMODE_A="OUTREG", p_REGMODE_B="OUTREG",
                p_RESETMODE="SYNC", p_ASYNC_RESET_RELEASE="SYNC", p_CSDECODE_A="0b000", p_CSDECODE_B="0b000",
                p_WRITEMODE_A="NORMAL", p_WRITEMODE_B="NORMAL", p_GSR="AUTO",
                **{f"p_INITVAL_{r:02X}": Const(v, 320) for r, v in enumerate(self.initvals(words))},
                i_CLKA=ClockSignal("sync"), i_WEA=C(1, 1), i_CEA=self.write.en, i_OCEA=C(1, 1),
                i_RSTA=ResetSignal("sync", allow_reset_less=True),
                i_CLKB=ClockSignal("sync"), i_WEB=C(0, 1), i_CEB=self.read.en, i_OCEB=C(1, 1),
                i_RSTB=ResetSignal("sync", allow_reset_less=True),
                **{f"i_CS{p}{i}": C(0, 1) for p in "AB" for i in range(3)}, **ports)

    def _spram(self, m):
        """The SPRAM tiles; returns their read data (a write wins the port)."""
        T, tiles = self._tiles()
        write_data, read_data, addr = Signal(T * tiles), Signal(T * tiles), Signal(14)
        m.d.comb += [write_data.eq(self.write.data),
                     addr.eq(Mux(self.write.en, self.write.addr, self.read.addr))]
        for t in range(tiles):
            m.submodules[f"{self.bank_name}_tile{t}"] = Instance(
                "SB_SPRAM256KA",
                i_ADDRESS=addr, i_DATAIN=write_data[T * t:T * (t + 1)], i_MASKWREN=C(0b1111, 4),
                i_WREN=self.write.en, i_CHIPSELECT=self.write.en | self.read.en, i_CLOCK=ClockSignal("sync"),
                i_STANDBY=C(0, 1), i_SLEEP=C(0, 1), i_POWEROFF=C(1, 1),
                o_DATAOUT=read_data[T * t:T * (t + 1)])
        return read_data[:self.width]


class WeightMemory(wiring.Component):
    """The weight memory in :class:`WeightBank` s. The read address and ``read.en`` are registered (they fan
    out to every bank) and each bank's read data comes from a register before the bank select: reads take
    three cycles (``read.data`` shows the word at the ``read.addr`` of three cycles before, if ``read.en`` was
    high then).

    Only the addressed bank's read port is enabled, and only if ``read.en`` was high: the other banks hold
    their data (no RAM read). ``read.en`` is high unless driven (its reset value): a reader that drives
    it with "a weight word is read this cycle" saves the RAM reads of the other cycles; on those
    cycles ``read.data`` is whatever the bank last read (not a new word).

    The banks' kind follows the platform (:meth:`bank_kind`): ``DP16KD`` block RAMs with output registers on
    an ECP5, SPRAM on an iCE40 UltraPlus whose block RAMs the weights would not leave room in, else inferred
    memories of ``BANK_DEPTH`` words.

    A bank read in the cycle the host writes the same word returns an undefined word (write weights between
    time steps): :data:`SYNTH_COLLISION_UNDEFINED` tells Yosys so, which spares the bypass it otherwise builds
    for that collision (the block RAMs leave it undefined) in front of each bank's read-data register."""

    BANK_DEPTH = WeightBank.DEPTH["memory"]
    #: iCE40 UltraPlus: the weights go to SPRAM if, in 256 x 16 block RAMs, they would need more than these of
    #: the UP5K's 30 (the rest of the chip — membranes, event list, offsets — needs up to 6)
    EBR_BUDGET = 24
    #: Yosys command (run after reading the design) marking the banks' read ports as undefined on a collision with
    #: their write port; the banks are the memories whose name starts with ``bank``
    SYNTH_COLLISION_UNDEFINED = r"setparam -set COLLISION_X_MASK 1 t:$memrd_v2 r:MEMID=\bank* %i"

    def __init__(self, cfg: ChipConfig, init: Sequence[int]):
        self.cfg, self.init = cfg, list(init)
        shape = unsigned(_lanes_of(signed(cfg.weight_bits), cfg).size)
        addr_width = Shape.cast(range(cfg.weight_depth)).width
        super().__init__({
            # the memory's view of a write port and a read port (``read.en``: 1 unless driven)
            "write": Out(memory.WritePort.Signature(addr_width=addr_width, shape=shape)),
            "read": Out(memory.ReadPort.Signature(addr_width=addr_width, shape=shape)),
        })

    @classmethod
    def bank_kind(cls, cfg: ChipConfig, platform) -> str:
        """The :class:`WeightBank` kind of ``cfg``'s weight memory on ``platform`` (None: simulation)."""
        family = str(getattr(platform, "family", "")).lower()          # Amaranth's: "ecp5", "iCE40", ...
        if family == "ecp5":
            return "dp16kd"
        if family == "ice40" and str(getattr(platform, "device", "")).startswith("iCE40UP"):
            depth, B = cfg.weight_depth, cls.BANK_DEPTH
            ebr = sum(-(-min(B, depth - base) // 256) for base in range(0, depth, B)) * -(-cfg.lanes * cfg.weight_bits // 16)
            if ebr > cls.EBR_BUDGET:
                return "spram"
        return "memory"

    def elaborate(self, platform):
        m = Module()
        kind = self.bank_kind(self.cfg, platform)
        depth, B = self.cfg.weight_depth, (self.BANK_DEPTH if kind == "memory" else WeightBank.DEPTH[kind])
        bank_bits = (B - 1).bit_length()
        banks = []
        addr = Signal.like(self.read.addr)
        en = Signal(init=1)
        m.d.sync += [addr.eq(self.read.addr), en.eq(self.read.en)]
        for b, base in enumerate(range(0, depth, B)):
            bank = WeightBank(self.read.data.shape().width, min(B, depth - base), self.init[base:base + B],
                              kind=kind, name=f"bank{b}")
            m.submodules[f"bank{b}"] = bank
            m.d.comb += [bank.write.addr.eq(self.write.addr), bank.write.data.eq(self.write.data),
                         bank.write.en.eq(self.write.en & (self.write.addr[bank_bits:] == b)),
                         bank.read.addr.eq(addr), bank.read.en.eq(en & (addr[bank_bits:] == b))]
            banks.append(bank.read.data)
        select = Signal(range(len(banks)))
        select_data = Signal.like(select)
        m.d.sync += [select.eq(addr[bank_bits:]), select_data.eq(select)]
        m.d.comb += self.read.data.eq(Array(banks)[select_data])
        return m

