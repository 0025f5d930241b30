"""Update by touch (``ChipConfig.update = "touched"``; ``docs/chip.md``, "Update by touch"): the parts of the
:class:`hw.core.sequencer.Sequencer` built only for such a chip (a default chip's RTL has none of them).

* **The word.** A membrane word holds, per lane, the step's synaptic sum ``h`` (what the event engine
  accumulates into, in the place a default chip's membrane has), the stored membrane ``u``, and the word's
  step stamp (``last + 1``: 0 after a clear, ``t + 1`` after its visit in step ``t``). The event engine writes
  ``h + W`` with ``u`` and the stamp as it read them; the update engine writes ``h = 0``, the new ``u`` and
  ``t + 1``.
* **Which words.** Two bit vectors over the state words: *touched* (set by every issue of the event engine,
  cleared by the word's write-back) and *hot* (written by the write-back: a lane of the new ``u`` is above
  its firing level, ``NeuronLanes.hot``). The fetch takes, every cycle the pipeline moves, the first word at or
  after its pointer (a mask register: all ones again when the fetch ends, and after a clear) that is touched or
  hot (a find-first tree), so words that are neither cost no cycle; when
  none is left it sends an *end* token down the pipeline, and the layer's UPDATE ends in the cycle the token
  is in stage ``P - 1`` and the pipeline moves (the cycle the last word's last spike leaves, or ``P`` cycles
  after the fetch began when no word is visited): ``P + sum_visited max(1, ceil(pc / 2))`` cycles.
* **The leak.** The stamp of the word the memory presents to the pipeline addresses the elapsed-leak table
  (``B_{l,k}``, ``k = now - stamp``, written by the host, :func:`hw.bus.leak_table_words`; the address chosen
  from registers, from a LUT-RAM copy of the stamps read a cycle ahead, :meth:`TouchedUpdate._leak_address`); the
  lanes apply ``L_k(u) + h`` in two extra stages (:meth:`hw.core.lanes.NeuronLanes._elapsed_leak`).
* **Where the spikes go.** The fetch skips words, so the append registers (neuron index, next-layer row,
  position) are computed from the word number of the group moving into the last stage (constant divides as
  reciprocal multiplies, :func:`hw.core.conv.divide_by_constant`) instead of being stepped group by group.
* **Two spikes per cycle.** The last stage appends the lowest two unsent spikes of its group (one-hot registers
  ``fired_second`` / ``pending_second`` beside the lowest's) into a two-wide :class:`hw.core.events.EventList`;
  the pipeline holds while more than two are left after this cycle's, so a word costs ``max(1, ceil(pc / 2))``
  cycles in the last stage.
* **Flush** (command bit 1): every word's pending leak applied, ``u = L_{now - stamp}(u)``, stamp ``= now``,
  one word at a time (``FLUSH`` state, 5 cycles per word, not counted).
"""
from __future__ import annotations

import functools
import operator

from amaranth.hdl import Array, C, Cat, Mux, Signal, Value, signed, unsigned
from amaranth.lib import memory

from hw.core.bits import at_least, lowest_one
from hw.core.conv import const_mul, divide_by_constant
from hw.core.events import aer_fields
from hw.core.lanes import NeuronLanes, registered_multiply
from hw.core.shapes import _per_layer


def _first_set(bits: list, values: list):
    """(any, value) of the first of ``bits`` (a list of 1-bit values) that is set, ``values`` its constant
    (same-width :class:`Const`) per bit: a balanced tree."""
    if len(bits) == 1:
        return bits[0], values[0]
    half = len(bits) // 2
    a_any, a_val = _first_set(bits[:half], values[:half])
    b_any, b_val = _first_set(bits[half:], values[half:])
    return a_any | b_any, Mux(a_any, a_val, b_val)


def _after_first(bits: list) -> list:
    """Bit ``w``: some bit before ``w`` is set (``bits`` shifted one up, prefix-ORed; Kogge–Stone, depth
    ``log2 n``)."""
    out, d = list(bits), 1
    while d < len(out):
        out = [out[i] | out[i - d] if i >= d else out[i] for i in range(len(out))]
        d *= 2
    return [C(0, 1)] + out[:-1]


def _second_one(m, x, name: str):
    """The second lowest set bit of ``x``, one-hot (0 for fewer than two): the lowest of ``x`` without its lowest.
    The lowest and the rest are wires ``{name}_lowest`` / ``{name}_rest`` of ``m``: as one nested expression
    Amaranth emits the inner prefix chain again for every bit of the outer one (the touched chip's netlist 10x at 8
    lanes, 80x at 16; hardware tools merge the copies, Amaranth's simulator runs them all)."""
    lowest, rest = Signal(len(x), name=f"{name}_lowest"), Signal(len(x), name=f"{name}_rest")
    m.d.comb += [lowest.eq(lowest_one(x)), rest.eq(x & ~lowest)]
    return lowest_one(rest)


def flat_start(cfg, layer: int) -> int:
    """The first bit of ``layer``'s words in the touched / hot bit vectors and the flush's walk: the membrane
    memories' words one after another, bank 0's, then bank 1's, … (``bank_base`` in its bank; with one bank the
    state address)."""
    return bank_starts(cfg)[cfg.state_bank(layer)] + cfg.bank_base(layer)


def bank_starts(cfg) -> list[int]:
    """The first bit of each membrane memory's words in the bit vectors and the flush's walk (:func:`flat_start`),
    and the end of the last: ``state_banks + 1`` offsets."""
    starts = [0]
    for b in range(cfg.state_banks):
        starts.append(starts[-1] + cfg.bank_depth(b))
    return starts


class TouchedUpdate:
    """The update-by-touch methods of :class:`hw.core.sequencer.Sequencer` (``s``: its shared state)."""

    def _flat(self, bank, addr):
        """Word ``addr`` of membrane memory ``bank`` as an index of the bit vectors (:func:`flat_start`): ``addr``
        with one bank (the chip without overlap), after bank 0's words for bank 1."""
        cfg = self.cfg
        if cfg.state_banks == 1:
            return addr
        if cfg.state_banks == 2:
            return addr + Mux(bank, cfg.bank_depth(0), 0)
        return addr + Array(C(v, range(cfg.state_depth + 1)) for v in bank_starts(cfg)[:-1])[bank]

    def _touched_second(self, m, s):
        """The second spike of a cycle: the second lowest unsent spike, one-hot, from registers as the lowest
        (``fired_second`` registered from ``fired_next``, ``pending_second`` with the pending spikes), and what is
        left after the two (a wire: its lowest and second lowest are registered while the pipeline holds)."""
        lanes = self.cfg.lanes
        s.fired_second = Signal(lanes, name="fired_second")
        s.pending_second = Signal(lanes, name="pending_second")
        s.unsent_second = Mux(s.emitting, s.pending_second, s.fired_second)
        s.unsent_after_two = Signal(lanes, name="unsent_after_two")
        m.d.comb += s.unsent_after_two.eq(s.unsent_after & ~s.unsent_second)
        # the second lowest of the spikes moving into the last stage / of those left (its wires outside any If)
        s.fired_next_second = _second_one(m, self.fired_next, "fired_next")
        s.after_two_second = _second_one(m, s.unsent_after_two, "unsent_after_two")
        # whether there is a first / a second unsent spike (the appends' enables), registered with them: `fired`'s
        # from `fired_next`, the pending spikes' from what is left
        s.fired_any, s.fired_two = Signal(name="fired_any"), Signal(name="fired_two")
        s.pending_any, s.pending_two = Signal(name="pending_any"), Signal(name="pending_two")
        s.unsent_any = Mux(s.emitting, s.pending_any, s.fired_any)            # = unsent != 0
        s.unsent_two = Mux(s.emitting, s.pending_two, s.fired_two)            # = unsent_second != 0
        # each lane's neuron index and next-layer row (`nbase + k`, `row + k·G`), registered with `nbase` and
        # `row` as a group moves into the last stage (:meth:`_touched_lane_values`), so the picks of the two
        # spikes only select registers (no adder on the path to the event list's write data)
        s.nbase_lanes = [Signal(len(self.events.append_index), name=f"append_nbase_{k}") for k in range(lanes)]
        s.row_lanes = [Signal(len(self.events.append_row), name=f"append_row_{k}") for k in range(lanes)]

    def _touched_hold(self, m, s):
        """``hold`` (a register): the group in the last stage has more than two spikes left after this cycle's —
        3+ in the group moving in, or 3+ left after the two sent now (5+ unsent)."""
        m.d.sync += s.hold.eq(Mux(self.advance, s.valid[-2] & at_least(self.fired_next, 3, m, "fired_next_count"),
                                 at_least(s.unsent_after_two, 3, m, "unsent_count")))
        with m.If(self.advance):
            m.d.sync += [s.fired_second.eq(s.fired_next_second), s.fired_any.eq(self.fired_next.any()),
                         s.fired_two.eq(s.fired_next_second.any())]

    def _touched_append_second(self, m, s):
        """The second spike's entry (index, next-layer row or packed coordinate), picked as the first's."""
        cfg, lanes = self.cfg, self.cfg.lanes

        def pick(values):                                 # lane k's value where the second spike is
            out = C(0, 1)
            for k in range(lanes):
                out = out | Mux(s.unsent_second[k], values[k], 0)
            return out
        m.d.comb += self.events.append_second_index.eq(pick(s.nbase_lanes))
        with m.Switch(self.layer):
            for l in range(cfg.num_layers - 1):
                with m.Case(l):
                    if cfg.decoded(l + 1):
                        bc, bx, by = aer_fields(cfg.out_shape(l))
                        m.d.comb += self.events.append_second_index.eq(
                            Cat(pick([s.cbase + k for k in range(lanes)])[:bc], s.out_x[:bx], s.out_y[:by]))
                    else:
                        m.d.comb += self.events.append_second_row.eq(pick(s.row_lanes))

    def _touched_state(self, m, s, word_range):
        cfg, P = self.cfg, self.cfg.update_latency
        s.now = Signal(range(cfg.max_steps + 1), name="step_now")          # steps since the clear
        s.touched_words = Signal(cfg.state_depth, name="touched_words")
        s.hot_words = Signal(cfg.state_depth, name="hot_words")
        s.scan_word = Signal(word_range, name="scan_word")     # the first visited word at or after the pointer
        s.scan_any = Signal(name="scan_any")
        # the fetch's pointer as a mask: bit w, the layer's word w is at or after it (all ones while not fetching;
        # a fetch of word v leaves the bits after v), so the scan masks with a register instead of comparing
        W = max(cfg.state_words(l) for l in range(cfg.num_layers))
        s.scan_from = Signal(W, init=(1 << W) - 1, name="scan_from")
        s.scan_after = Signal(W, name="scan_after")            # the words after scan_word
        s.end_token = Signal(name="update_end_token")          # no word left: the end token enters the pipeline
        s.stage_end = [Signal(name=f"stage{i}_end") for i in range(1, P + 1)]
        s.event_stored = Signal.like(self.event_stored, name="event_stored")   # u, stamp of the accumulated word
        s.fetch_word = s.scan_word
        s.flush_pending = Signal(name="flush_pending")         # a flush command waits for the step to end
        s.flush_addr = Signal(range(cfg.state_depth + 1), name="flush_addr")   # in the walk (flat_start)
        if cfg.state_banks == 1:
            s.flush_bank, s.flush_word = C(0, 1), s.flush_addr
        else:
            # its membrane memory and the word there, registers stepped with flush_addr (_flush_phase, set by
            # flush_go): always flush_addr >= bank_depth(0) and flush_addr - (bank_depth(0) if so), without the
            # compare and subtract before the memories' addresses
            s.flush_bank = Signal(range(cfg.state_banks), name="flush_bank")
            s.flush_word = Signal(range(max(cfg.bank_depth(b) for b in range(cfg.state_banks)) + 1),
                                  name="flush_word")
            # the flush's write (cycle 4) into bank b, registered in cycle 3 (no flush_cycle decode before the
            # write enable; a clear in cycle 3 leaves FLUSH, so no write)
            s.flush_write = [Signal(name=f"flush_write{b}") for b in range(cfg.state_banks)]
        s.flush_cycle = Signal(3, name="flush_cycle")           # read, table read, B_k, multiply, write
        s.flush_u = Signal(cfg.lanes * cfg.acc_bits, name="flush_stored")
        s.flush_b = Signal(cfg.beta_frac_bits + 1, name="flush_elapsed")
        s.flush_new = Signal(cfg.lanes * cfg.acc_bits, name="flush_leaked")
        last = Signal(name="fetch_last_touched")
        s.fetch_last = last
        with m.Switch(self.layer):
            for l in range(cfg.num_layers):
                with m.Case(l):
                    base, n = flat_start(cfg, l), cfg.state_words(l)
                    bits = [(s.touched_words[base + w] | s.hot_words[base + w]) & s.scan_from[w] for w in range(n)]
                    G, wb = cfg.groups(l), len(s.scan_word)
                    # the word and whether it is the last group of its position, both constants per bit
                    found, value = _first_set(bits, [C(w | (int(w % G == G - 1) << wb), wb + 1) for w in range(n)])
                    m.d.comb += [s.scan_any.eq(found), s.scan_word.eq(value[:wb]), last.eq(value[wb]),
                                 s.scan_after.eq(Cat(*_after_first(bits)))]

    def _touched_datapath(self, m, s):
        """The word's other fields on the write ports, the word bits, the leak table's address, the end token
        and the append registers of the group moving into the last stage."""
        cfg, lanes, P = self.cfg, self.cfg.lanes, self.cfg.update_latency
        m.d.sync += s.event_stored.eq(self.event_stored)    # beside the lanes' sum register, every cycle
        if cfg.state_banks > 1:                       # a decoder per membrane memory's bits, chosen by the bank
            self._touched_bits_by_bank(m, s)          # (no adder of the bank's offset before the decoder)
        else:
            with m.If(s.issue):
                m.d.sync += s.touched_words.bit_select(self._flat(s.ev.bank, s.issue_state_addr), 1).eq(1)
            with m.If(s.write_back):
                written = self._flat(s.update_bank, s.write_back_addr)
                m.d.sync += [s.touched_words.bit_select(written, 1).eq(0),
                             s.hot_words.bit_select(written, 1).eq(self.hot)]
        with m.If(self.advance):
            m.d.sync += [s.stage_end[0].eq(s.end_token)] + [a.eq(b) for a, b in zip(s.stage_end[1:], s.stage_end[:-1])]
        self._touched_append_registers(m, s)
        self._flush_datapath(m, s)
        self._leak_address(m, s)

    def _touched_bits_by_bank(self, m, s):
        """Two or more membrane memories: the issue's touched bit and the write-back's touched / hot bits, as the
        one-bank chip's but the bit ``_flat(bank, addr)`` set through a decoder of ``addr`` over each memory's bits
        (:func:`flat_start`: bank 0's, then bank 1's, …), enabled by the bank."""
        cfg = self.cfg
        starts = bank_starts(cfg)
        spans = list(zip(starts[:-1], starts[1:]))
        with m.If(s.issue):
            for b, (lo, hi) in enumerate(spans):
                with m.If(s.ev.bank == b):
                    m.d.sync += s.touched_words[lo:hi].bit_select(s.issue_state_addr, 1).eq(1)
        with m.If(s.write_back):
            for b, (lo, hi) in enumerate(spans):
                with m.If(s.update_bank == b):
                    m.d.sync += [s.touched_words[lo:hi].bit_select(s.write_back_addr, 1).eq(0),
                                 s.hot_words[lo:hi].bit_select(s.write_back_addr, 1).eq(self.hot)]

    def _leak_address(self, m, s):
        """The elapsed-leak table's address, ``l·(S+1) + now - stamp``, computed a cycle ahead: the stamps are also
        kept in a memory per membrane memory read without a clock (LUT RAM; written as it is), read at the update
        engine's two read addresses (``update_addr``, and ``update_addr_2`` while the pipeline holds) and at the
        flush's (``flush_word``, in ``flush_bank``'s copy), registers all; the address from each read is a register,
        and the one for the word the membrane memory presents is chosen after them (by ``hold`` and the flush,
        registered beside them) instead of read from the block RAM's data. ``l·(S+1) + now`` is a register (the
        update engine's layer is set the cycle before its first read address; the flush's a word ahead). The table's
        word is used only where the update engine (or the flush) owns the membrane memory's read port. No write
        bypass: a write in the cycle of a read of the same word never changes its stamp where the table's word is
        used (the event engine writes the stamp as read; the update engine writes a word back P cycles after its
        read and reads no word twice in a layer; the flush reads a word after writing the one before)."""
        cfg, S, LA = self.cfg, self.cfg.max_steps, self.cfg.lanes * self.cfg.acc_bits
        s.leak_base = Signal(range(cfg.leak_table_depth + 1), name="leak_base")
        m.d.sync += s.leak_base.eq(_per_layer(cfg, self.layer, lambda l: l * (S + 1), range(cfg.leak_table_depth))
                                   + s.now)
        with m.If(s.flush_go):                        # the flush's first word: layer 0's
            m.d.sync += s.leak_base.eq(s.now)
        with m.If(s.flush_active):                    # word flush_addr's (the next word's in its cycle 4)
            m.d.sync += s.leak_base.eq(s.flush_layer_base + s.now)
        per_bank = []                                 # a copy per membrane memory (overlap: two), written with it
        for b in range(cfg.state_banks):
            stamps = memory.Memory(shape=unsigned(cfg.stamp_bits), depth=cfg.bank_depth(b), init=[])
            m.submodules[f"stamp_memory{b}"] = stamps
            write = stamps.write_port()
            m.d.comb += [write.en.eq(self.membrane_write_en[b]), write.addr.eq(self.membrane_write_addr[b]),
                         write.data.eq(self.membrane_write_data[b][2 * LA:])]
            reads = []                                # the update engine's two reads, the flush's word's
            for addr in (s.update_addr, s.update_addr_2, s.flush_word):
                port = stamps.read_port(domain="comb")
                m.d.comb += port.addr.eq(addr)
                reads.append(port.data)
            per_bank.append(reads)
        # each read's address into a register of its own (from the read's memory), the choice (`hold`, the flush,
        # registered beside them) after the registers: a choice before them would let Yosys's `share` merge the
        # three reads into one port behind an address mux (the ports are used under exclusive conditions), whose
        # mux then precedes the read
        addrs = []
        for i, bank in enumerate((s.update_bank, s.update_bank, s.flush_bank)):
            if cfg.state_banks <= 2:
                stamp = per_bank[0][i] if cfg.state_banks == 1 else Mux(bank, per_bank[1][i], per_bank[0][i])
            else:
                stamp = Array(reads[i] for reads in per_bank)[bank]
            reg = Signal.like(self.leak_addr, name=f"leak_addr_ahead{i}")
            m.d.sync += reg.eq(s.leak_base - stamp)
            addrs.append(reg)
        flushed, held = Signal(name="leak_addr_flush"), Signal(name="leak_addr_hold")
        m.d.sync += [flushed.eq(s.flush_active), held.eq(s.hold)]
        m.d.comb += [self.leak_addr.eq(Mux(flushed, addrs[2], Mux(held, addrs[1], addrs[0]))),
                     self.leak_en.eq(self.advance)]

    def _flush_datapath(self, m, s):
        """The flush's memory ports (overriding the engines', idle then) and its leak: word ``flush_addr``'s u and
        stamp are read (cycle 0), the stamp addresses the table (1), the table's ``B_k`` is registered (2),
        ``u·B_k`` is registered (3: on an ECP5 in the ``MULT18X18D``'s own output register, as the lanes' leak,
        :func:`hw.core.lanes.registered_multiply`; a width of ``u`` above 18 bits: a generic register), the word
        is written back with ``h = 0``, ``L_k(u)`` (the product rounded) and the stamp ``now`` (4)."""
        cfg, A, F = self.cfg, self.cfg.acc_bits, self.cfg.beta_frac_bits
        S = cfg.max_steps
        with m.If(self.flush):
            m.d.sync += s.flush_pending.eq(1)
        flushing = Signal(name="flushing")
        m.d.comb += flushing.eq(s.flush_addr < cfg.state_depth)
        s.flush_layer_base = layer_base = Signal(range(cfg.leak_table_depth + 1), name="flush_layer_base")
        # the layers in the order of the walk (flat_start: bank 0's words, then bank 1's)
        for l in sorted(range(cfg.num_layers), key=lambda l: flat_start(cfg, l)):
            start = flat_start(cfg, l)                # the word read in the next cycle's (the next word's in cycle 4)
            with m.If(Mux(s.flush_cycle == 4, s.flush_addr >= start - 1, s.flush_addr >= start)):
                m.d.comb += layer_base.eq(l * (S + 1))
        s.flush_active = Signal(name="flush_active")              # set by the FLUSH state
        leaked = []
        for k in range(cfg.lanes):                    # u·B_k registered (3), then rounded on the way to the write
            u = s.flush_u[k * A:k * A + cfg.membrane_bits].as_signed()     # u is within the membrane range
            product = Signal(signed(A + F + 1), name=f"flush_product{k}")
            if NeuronLanes.dsp_kind(cfg, self._platform) == "mult18x18d":
                registered_multiply(m, "flush", k, u, s.flush_b, product, s.flush_cycle == 3)
            else:
                with m.If(s.flush_cycle == 3):
                    m.d.sync += product.eq(u * s.flush_b)
            leaked.append(((product + (1 << (F - 1))) >> F)[:A])
        m.d.comb += s.flush_new.eq(Cat(*leaked))
        with m.If(s.flush_active):
            if cfg.state_banks == 1:
                m.d.comb += [self.membrane_read_addr[0].eq(s.flush_addr), self.leak_en.eq(1)]
            else:                                     # the flush's word's memory; its read data for the lanes
                m.d.comb += [self.leak_en.eq(1), self.update_bank.eq(s.flush_bank)]
                for b in range(cfg.state_banks):
                    with m.If(s.flush_bank == b):
                        m.d.comb += self.membrane_read_addr[b].eq(s.flush_word)
            with m.If(s.flush_cycle == 1):
                m.d.sync += s.flush_u.eq(self.stored)
            with m.If(s.flush_cycle == 2):             # the table's word, registered (nothing follows a block
                m.d.sync += s.flush_b.eq(self.elapsed)   # RAM read without an output register but a register)
            with m.If(s.flush_cycle == 4):
                if cfg.state_banks == 1:
                    m.d.comb += [self.membrane_write_en[0].eq(1), self.membrane_write_addr[0].eq(s.flush_addr),
                                 self.membrane_write_data[0].eq(Cat(C(0, cfg.lanes * A), s.flush_new,
                                                                    s.now[:cfg.stamp_bits]))]
        if cfg.state_banks > 1:                       # cycle 4's write, by the registers of cycle 3
            with m.If(s.flush_go):
                m.d.sync += [s.flush_bank.eq(0), s.flush_word.eq(0)]
            for b in range(cfg.state_banks):
                m.d.sync += s.flush_write[b].eq(s.flush_active & (s.flush_cycle == 3) & (s.flush_bank == b) &
                                                ~self.clear)
                word = Cat(C(0, cfg.lanes * A), s.flush_new, s.now[:cfg.stamp_bits])
                with m.If(s.flush_write[b]):
                    m.d.comb += [self.membrane_write_en[b].eq(1), self.membrane_write_addr[b].eq(s.flush_word),
                                 self.membrane_write_data[b].eq(word)]

    def _flush_phase(self, m, s):
        """FLUSH: every word, 5 cycles each (not counted in ``cycles``), then back to STEP."""
        m.d.comb += s.flush_active.eq(1)
        m.d.sync += s.flush_cycle.eq(s.flush_cycle + 1)
        with m.If(s.flush_cycle == 4):
            m.d.sync += [s.flush_addr.eq(s.flush_addr + 1), s.flush_cycle.eq(0)]
            cfg = self.cfg
            if cfg.state_banks == 2:                  # flush_bank / flush_word follow flush_addr
                last0 = s.flush_addr == cfg.bank_depth(0) - 1
                m.d.sync += [s.flush_bank.eq(s.flush_bank | last0), s.flush_word.eq(Mux(last0, 0, s.flush_word + 1))]
            elif cfg.state_banks > 2:                 # the same, at the last word of any memory but the last
                ends = [start - 1 for start in bank_starts(cfg)[1:-1]]
                last = functools.reduce(operator.or_, [s.flush_addr == e for e in ends])
                m.d.sync += [s.flush_bank.eq(s.flush_bank + last), s.flush_word.eq(Mux(last, 0, s.flush_word + 1))]
            with m.If(s.flush_addr == self.cfg.state_depth - 1):
                self._goto(m, s, "STEP")

    def _touched_write_data(self, s, kind: str):
        """The membrane word written: ``accumulate`` (``h + W``, ``u`` and stamp as read) or ``update`` (``h =
        0``, the new ``u``, the stamp ``now + 1``)."""
        if kind == "accumulate":
            return Cat(self.accumulated, s.event_stored)
        return Cat(C(0, len(self.accumulated.as_value())), self.next_membrane, (s.now + 1)[:self.cfg.stamp_bits])

    def _touched_append_registers(self, m, s):
        cfg, L, lanes = self.cfg, self.cfg.num_layers, self.cfg.lanes
        w = s.stage_group[-2]
        with m.If(self.advance):
            with m.Switch(self.layer):
                for l in range(L):
                    with m.Case(l):
                        n, G, Co = cfg.state_words(l), cfg.groups(l), cfg.out_channels(l)
                        Gn = cfg.groups(l + 1) if l + 1 < L else 0
                        next_base = cfg.weight_base(l + 1) if l + 1 < L else 0
                        if cfg.layer_kind(l) == "fc":
                            m.d.sync += [s.nbase.eq(const_mul(w, lanes)), s.row.eq(next_base + const_mul(w, lanes * Gn))]
                            self._touched_lane_values(m, s, const_mul(w, lanes), next_base + const_mul(w, lanes * Gn), Gn)
                            if s.spatial:
                                m.d.sync += [s.cbase.eq(const_mul(w, lanes)), s.out_x.eq(0), s.out_y.eq(0)]
                            continue
                        _, Ho, Wo = cfg.out_shape(l)
                        pos = divide_by_constant(w, G, n + 1)
                        cbase = const_mul(w - const_mul(pos, G), lanes)
                        y = divide_by_constant(pos, Wo, Ho * Wo + 1)
                        x = pos - const_mul(y, Wo)
                        m.d.sync += [s.nbase.eq(const_mul(pos, Co) + cbase), s.cbase.eq(cbase), s.out_x.eq(x),
                                     s.out_y.eq(y)]
                        row = None
                        if l + 1 < L and not cfg.decoded(l + 1):          # into an fc layer (maybe pooled)
                            ph, pw = cfg.pool_window(l + 1)
                            pooled = (const_mul(divide_by_constant(y, ph, Ho + 1), Wo // pw)
                                      + divide_by_constant(x, pw, Wo + 1))
                            row = next_base + const_mul(pooled, Co * Gn) + const_mul(cbase, Gn)
                            m.d.sync += s.row.eq(row)
                        self._touched_lane_values(m, s, const_mul(pos, Co) + cbase, row, Gn)

    def _touched_lane_values(self, m, s, nbase, row, step):
        """``nbase_lanes`` / ``row_lanes``: the values ``nbase`` and ``row`` take now, each plus lane ``k``'s
        offset (``k``, ``k·step``) as the picks added it (from ``nbase`` / ``row`` at their width)."""
        for k in range(self.cfg.lanes):
            m.d.sync += s.nbase_lanes[k].eq(Value.cast(nbase)[:len(s.nbase)] + k)
            if row is not None:
                m.d.sync += s.row_lanes[k].eq(Value.cast(row)[:len(s.row)] + k * step)

    def _touched_update_engine(self, m, s):
        P = self.cfg.update_latency
        with m.If(s.fetching & self.advance):             # the next visited word, or the end token
            with m.If(s.scan_any):
                m.d.comb += s.fetch.eq(1)
                m.d.sync += s.scan_from.eq(s.scan_after)         # (fetch_group = scan_word + 1)
            with m.Else():
                m.d.comb += s.end_token.eq(1)
                m.d.sync += s.fetching.eq(0)
        with m.If(~s.fetching):                           # fetch_group = 0 as the fetch begins
            m.d.sync += s.scan_from.eq((1 << len(s.scan_from)) - 1)
        with m.If(s.have_group):                          # the last stage: write back, emit the spikes
            with m.If(s.unsent_any):
                m.d.comb += self.events.append.eq(1)
            with m.If(s.unsent_two):
                m.d.comb += self.events.append_second.eq(1)
            with m.If(s.hold):
                left = s.unsent_after_two
                m.d.sync += [s.pending_spikes.eq(left), s.pending_lowest.eq(lowest_one(left)),
                             s.pending_second.eq(s.after_two_second), s.emitting.eq(1),
                             s.pending_any.eq(left.any()), s.pending_two.eq(s.after_two_second.any())]
            with m.Else():
                m.d.sync += s.emitting.eq(0)
        with m.If(s.stage_end[P - 2] & self.advance):     # the layer is done (its last word leaves now)
            if self.cfg.wavefront:                        # its step counted, the next layer's input (wavefront)
                m.d.comb += s.update_ends.eq(1)
                self._wavefront_update_end(m, s)
                return
            m.d.sync += s.updating.eq(0)
            with m.If(self.layer == self.cfg.num_layers - 1):
                self._goto(m, s, "OUTPUT")
            with m.Else():
                m.d.comb += s.nxt.event_waiting.eq(0)
