"""Address events: the event payload and stream signature (the chip's input and output ports), the packed
AER coordinate of a spike on its way into a decoded layer (:func:`aer_fields`, :func:`event_index_bits`),
and :class:`EventList` — the spikes of one layer in one time step, written by UPDATE and read by the next
EVENT phase or by OUTPUT."""
from __future__ import annotations

from amaranth.hdl import Module, Mux, Signal, unsigned
from amaranth.lib import data, memory, stream, wiring
from amaranth.lib.wiring import In, Out

from hw.config import ChipConfig, clog2
from hw.core.shapes import _row_bits


def event_layout(cfg: ChipConfig) -> data.StructLayout:
    """Address-event payload: a neuron index, or ``end`` closing the time step."""
    return data.StructLayout({"index": unsigned(cfg.index_bits), "end": unsigned(1)})


def event_stream_signature(cfg: ChipConfig) -> stream.Signature:
    """Signature of an address-event stream: Amaranth's own :class:`amaranth.lib.stream.Signature` (a
    final class, so not subclassed here) with an :func:`event_layout` payload.

    Parameters
    ----------
    cfg : :class:`hw.config.ChipConfig`
        Chip whose ``index_bits`` size the payload.

    Members
    -------
    valid : :py:`Out(1)`
        The payload holds an event.
    ready : :py:`In(1)`
        The sink takes the payload at this clock edge.
    payload : :py:`Out(event_layout(cfg))`
        ``index`` (neuron index) and ``end`` (closes the time step; the index of an end token is 0).
    """
    return stream.Signature(event_layout(cfg))


def aer_fields(shape: tuple[int, int, int]) -> tuple[int, int, int]:
    """Bits of the c, x and y fields of a packed event ``(y << (bx + bc)) | (x << bc) | c`` for spikes of
    shape (C, H, W) (``ChipConfig.input_address``'s packing)."""
    C, H, W = shape
    return clog2(C), clog2(W), clog2(H)


def event_index_bits(cfg: ChipConfig) -> int:
    """Width of an event-list entry's index: a flat neuron index, or the packed coordinate of a spike
    on its way into a decoded layer."""
    bits = cfg.index_bits
    for l in range(1, cfg.num_layers):
        if cfg.decoded(l):
            bits = max(bits, sum(aer_fields(cfg.raw_in_shape(l))))
    return bits


class EventList(wiring.Component):
    """The spikes of one layer in one time step, in order: a memory of ``event_depth`` neuron indices.

    ``append`` writes ``append_index`` at the end. ``head`` is the entry at the read position (valid when
    not ``empty``: everything appended has been read); ``advance`` moves to the next entry. ``rewind``
    reads from the start again, ``restart`` also empties the list (these two win over the others).
    The read port is addressed one entry ahead and never beyond the memory; it is transparent to the
    write port, so an entry appended in one cycle is the ``head`` in the next. The address does not follow a
    ``rewind``: the first entry is the ``head`` from the second cycle after it (OUTPUT's rewind is followed by
    layer 0's events from the input stream and a ``restart`` before the list is read again).

    ``width = 2`` (an ``update = "touched"`` chip, :attr:`hw.config.ChipConfig.appends_per_cycle`): ``append_second``
    (with ``append``) writes ``append_second_index`` / ``append_second_row`` after ``append_index``, two entries in
    one cycle. The entries are then kept in two memories, the even-numbered in one and the odd in the other, each
    with one write port (entries ``count`` and ``count + 1`` are in different memories); each is read at its first
    entry at or after the read position (the entry at the read position in one, the one after it in the other,
    so whether the reader advances does not change the addresses) and the read position's lowest bit selects the
    ``head``, so the reader still takes one entry per cycle and an entry appended in one cycle is the ``head`` in
    the next.
    """

    class Signature(wiring.Signature):
        """Signature of an event list (the list's view).

        Parameters
        ----------
        index_bits : :class:`int`
            Width of a neuron index.
        row_bits : :class:`int`
            Width of a weight-memory address.

        Members
        -------
        append : :py:`In(1)`
            Write ``append_index`` after the last entry.
        append_index : :py:`In(index_bits)`
            The neuron index to append.
        append_row : :py:`In(row_bits)`
            Stored with it: the first weight word of its row in the next layer (so that reading an
            event back needs no arithmetic before the weight memory's address).
        advance : :py:`In(1)`
            Move the read position to the next entry.
        rewind : :py:`In(1)`
            Move the read position to the first entry.
        restart : :py:`In(1)`
            Empty the list.
        head : :py:`Out(index_bits)`
            The entry at the read position.
        head_row : :py:`Out(row_bits)`
            Its ``append_row``.
        empty : :py:`Out(1)`
            Every entry has been read (the read position is at the end).
        append_second, append_second_index, append_second_row : :py:`In(1)`, :py:`In(index_bits)`, :py:`In(row_bits)`
            (``width = 2`` only) a second entry, written after ``append_index`` in the same cycle (with ``append``).
        """

        def __init__(self, index_bits: int, row_bits: int, width: int = 1):
            if width not in (1, 2):
                raise ValueError(f"width={width}: allowed values are 1, 2")
            self.index_bits, self.row_bits, self.width = index_bits, row_bits, width
            second = {"append_second": In(1), "append_second_index": In(index_bits),
                      "append_second_row": In(row_bits)} if width == 2 else {}
            super().__init__({
                "append": In(1), "append_index": In(index_bits), "append_row": In(row_bits),
                "advance": In(1), "rewind": In(1), "restart": In(1),
                "head": Out(index_bits), "head_row": Out(row_bits), "empty": Out(1),
                **second,
            })

        def __eq__(self, other):
            return (type(self) is type(other) and self.index_bits == other.index_bits and
                    self.row_bits == other.row_bits and self.width == other.width)

        def __repr__(self):
            width = f", width={self.width}" if self.width != 1 else ""
            return f"EventList.Signature(index_bits={self.index_bits}, row_bits={self.row_bits}{width})"

    def __init__(self, cfg: ChipConfig, depth: int | None = None):
        self.cfg = cfg
        self.depth = cfg.event_depth if depth is None else depth     # entries (a wavefront chip's: its layer's)
        super().__init__(EventList.Signature(event_index_bits(cfg), _row_bits(cfg), cfg.appends_per_cycle))

    def elaborate(self, platform):
        if self.signature.width == 2:
            return self._elaborate_two_wide(platform)
        depth = self.depth
        m = Module()
        m.submodules.storage = storage = memory.Memory(shape=unsigned(self.signature.index_bits), depth=depth, init=[])
        # distributed RAM where there is (ECP5): a block RAM's read data is too slow for the path into the
        # weight memory's address
        distributed = getattr(platform, "family", None) == "ecp5"
        m.submodules.rows = rows = memory.Memory(shape=unsigned(_row_bits(self.cfg)), depth=depth, init=[],
                                                 attrs={"ram_style": "distributed"} if distributed else None)
        write, row_write = storage.write_port(), rows.write_port()
        read = storage.read_port(transparent_for=(write,))
        row_read = rows.read_port(transparent_for=(row_write,))
        read_pos = Signal(range(depth + 1))
        count = Signal(range(depth + 1))
        next_pos = Mux(read_pos == depth - 1, 0, read_pos + 1)   # past the last entry: anything in range
        m.d.comb += [self.head.eq(read.data), self.head_row.eq(row_read.data),
                     read.addr.eq(Mux(self.advance, next_pos, read_pos)), row_read.addr.eq(read.addr),
                     write.addr.eq(count), write.data.eq(self.append_index), write.en.eq(self.append),
                     row_write.addr.eq(count), row_write.data.eq(self.append_row), row_write.en.eq(self.append)]
        # the positions' next values, and `empty` as a register of them (`read_pos == count`: the engines'
        # decisions start at a register, not at a comparator)
        read_pos_next = Mux(self.rewind | self.restart, 0, Mux(self.advance, read_pos + 1, read_pos))
        count_next = Mux(self.restart, 0, Mux(self.append, count + 1, count))
        m.d.sync += [read_pos.eq(read_pos_next), count.eq(count_next)]
        self._empty(m, read_pos, count, {1: self.append})
        return m

    def _empty(self, m, read_pos, count, appended):
        """The ``empty`` register, ``read_pos_next == count_next``, without the next values' adders after the
        engines' late ``advance`` / ``append`` / ``restart``: each outcome is a compare of the registers
        (``read_pos + a == count + n``, ``a`` the advance, ``n`` the entries appended), chosen by the late signals
        at the last LUTs. ``appended`` maps each ``n > 0`` to its condition (exclusive conditions)."""
        same = read_pos == count
        stay, step = same, read_pos + 1 == count          # no entry appended: without / with advance
        for n, cond in sorted(appended.items()):
            stay = Mux(cond, read_pos == count + n, stay)
            step = Mux(cond, same if n == 1 else read_pos == count + (n - 1), step)
        rewound = (count == 0) & ~self.append             # after a rewind the read position is 0
        empty = Signal(init=1)
        m.d.sync += empty.eq(Mux(self.restart, 1, Mux(self.rewind, rewound, Mux(self.advance, step, stay))))
        m.d.comb += self.empty.eq(empty)

    def _elaborate_two_wide(self, platform):
        """``width = 2``: entries ``2i`` in the ``even`` memories, ``2i + 1`` in the ``odd`` ones (word ``i``)."""
        depth = self.depth
        m = Module()
        distributed = getattr(platform, "family", None) == "ecp5"
        index_shape, row_shape = unsigned(self.signature.index_bits), unsigned(_row_bits(self.cfg))
        # the entries' words in each; the read side's address at the end of a full, fully read list (one word past
        # them) wraps to word 0 where the words are a power of two (the address is as wide as the memory's: one
        # LUT-RAM block fewer in the read mux), else a word more keeps it inside the memory
        def words(n):
            return n if n and not n & (n - 1) else n + 1

        halves = {"even": words((depth + 1) // 2), "odd": words(depth // 2)}
        read_pos = Signal(range(depth + 1))
        count = Signal(range(depth + 2))
        # each memory is read at the word of its first entry at or after the read position, a register kept beside
        # the read position (from its value after an advance, read_pos + 1, computed from the register): the entry at
        # the read position in the next cycle, read_pos or (with `advance`) read_pos + 1, is that word of the memory
        # of its parity (read_pos + 1's memory holds no entry at read_pos), so no late signal comes before the
        # memories' read address; past the last entry anything in range
        def word(p, odd):                                         # the word of entry p in the even / odd memory
            return (p >> 1) if odd else ((p + 1) >> 1)

        advanced = (read_pos + 1)[:len(read_pos)]                 # read_pos after an advance
        moves = self.rewind | self.restart
        # entry `count` goes to the memory of its parity, `count + 1` to the other: the even memory's word is
        # (count + 1) >> 1 (count, or count + 1, whichever is even), the odd's count >> 1
        first_odd = count[0]
        ports = {}
        for half, words in halves.items():
            odd = half == "odd"
            store = memory.Memory(shape=index_shape, depth=words, init=[])
            rows = memory.Memory(shape=row_shape, depth=words, init=[],
                                 attrs={"ram_style": "distributed"} if distributed else None)
            m.submodules[f"storage_{half}"], m.submodules[f"rows_{half}"] = store, rows
            write, row_write = store.write_port(), rows.write_port()
            read = store.read_port(transparent_for=(write,))
            row_read = rows.read_port(transparent_for=(row_write,))
            takes_first = first_odd if odd else ~first_odd           # this memory holds entry `count`
            m.d.comb += [
                write.addr.eq((count >> 1) if odd else ((count + 1) >> 1)), row_write.addr.eq(write.addr),
                write.data.eq(Mux(takes_first, self.append_index, self.append_second_index)),
                row_write.data.eq(Mux(takes_first, self.append_row, self.append_second_row)),
                write.en.eq(Mux(takes_first, self.append, self.append & self.append_second)),
                row_write.en.eq(write.en),
                row_read.addr.eq(read.addr),
            ]
            first = word(0, odd)                                  # at read position 0
            reg = Signal.like(read.addr, name=f"{half}_word_now", init=first)
            m.d.sync += reg.eq(Mux(moves, first, Mux(self.advance, word(advanced, odd), reg)))
            m.d.comb += read.addr.eq(reg)
            ports[half] = (read, row_read)
        odd_now = read_pos[0]                                     # the head's memory
        m.d.comb += [self.head.eq(Mux(odd_now, ports["odd"][0].data, ports["even"][0].data)),
                     self.head_row.eq(Mux(odd_now, ports["odd"][1].data, ports["even"][1].data))]
        read_pos_next = Mux(self.rewind | self.restart, 0, Mux(self.advance, read_pos + 1, read_pos))
        appended = Mux(self.append, Mux(self.append_second, 2, 1), 0)
        count_next = Mux(self.restart, 0, count + appended)
        m.d.sync += [read_pos.eq(read_pos_next), count.eq(count_next)]
        self._empty(m, read_pos, count, {1: self.append & ~self.append_second, 2: self.append & self.append_second})
        return m


def wavefront_lists(cfg: ChipConfig) -> list[int]:
    """The entries of each list of a :attr:`~hw.config.ChipConfig.wavefront` chip (:class:`WavefrontLists`): list
    ``2·l + p`` holds layer ``l``'s spikes of the steps of parity ``p`` (``l < L − 1``), the last list the output
    layer's (``docs/chip.md``, "Wavefront")."""
    L = cfg.num_layers
    return [cfg.fan_out(l) for l in range(L - 1) for _ in range(2)] + [cfg.fan_out(L - 1)]


class WavefrontLists(wiring.Component):
    """The event lists of a :attr:`~hw.config.ChipConfig.wavefront` chip (``docs/chip.md``, "Wavefront"): two per
    layer but the last (one per step parity: the next layer reads one while this layer's next UPDATE writes the
    other) and the *output list* (the last layer's spikes, read by the output sender), each an :class:`EventList`
    of its layer's ``fan_out`` entries (:func:`wavefront_lists`).

    The update engine's side (``append``…, ``restart``) goes to list ``write_list``, the event engine's (``advance``,
    ``rewind``, ``head``, ``head_row``, ``empty``) to list ``read_list``, as on one :class:`EventList`; the sender reads
    the output list through ``output_head``, ``output_empty`` and ``output_advance``.

    Members
    -------
    (every member of :class:`EventList.Signature`)
        Of list ``write_list`` (the append side and ``restart``) and ``read_list`` (the read side).
    write_list, read_list : :py:`In(range(lists))`
        The lists the two sides address (registers of the sequencer).
    output_head : :py:`Out(index_bits)`
        The output list's entry at its read position.
    output_empty : :py:`Out(1)`
        Every entry of the output list has been read.
    output_advance : :py:`In(1)`
        Move the output list's read position to its next entry.
    """

    @staticmethod
    def signature_of(cfg: ChipConfig) -> wiring.Signature:
        """The lists' signature for ``cfg`` (see Members)."""
        n, bits = len(wavefront_lists(cfg)), event_index_bits(cfg)
        members = dict(EventList.Signature(bits, _row_bits(cfg), cfg.appends_per_cycle).members)
        members.update({"write_list": In(range(n)), "read_list": In(range(n)), "output_head": Out(bits),
                        "output_empty": Out(1), "output_advance": In(1)})
        return wiring.Signature(members)

    def __init__(self, cfg: ChipConfig):
        self.cfg = cfg
        self.depths = wavefront_lists(cfg)
        super().__init__(WavefrontLists.signature_of(cfg))

    def elaborate(self, platform):
        m = Module()
        lists = [EventList(self.cfg, depth) for depth in self.depths]
        for k, one in enumerate(lists):
            m.submodules[f"list{k}"] = one
            write, read = self.write_list == k, self.read_list == k
            m.d.comb += [one.append_index.eq(self.append_index), one.append_row.eq(self.append_row),
                         one.append.eq(self.append & write), one.restart.eq(self.restart & write)]
            if k < len(lists) - 1:
                m.d.comb += [one.advance.eq(self.advance & read), one.rewind.eq(self.rewind & read)]
            if self.cfg.appends_per_cycle == 2:
                m.d.comb += [one.append_second.eq(self.append_second & write),
                             one.append_second_index.eq(self.append_second_index),
                             one.append_second_row.eq(self.append_second_row)]
        out = lists[-1]
        m.d.comb += [self.output_head.eq(out.head), self.output_empty.eq(out.empty), out.advance.eq(self.output_advance)]
        with m.Switch(self.read_list):                    # the event engine reads the layers' lists only
            for k, one in enumerate(lists[:-1]):
                with m.Case(k):
                    m.d.comb += [self.head.eq(one.head), self.head_row.eq(one.head_row), self.empty.eq(one.empty)]
        return m
