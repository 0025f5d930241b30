"""The sequencer: :class:`Sequencer`, the phase state machine (STEP, OUTPUT, CLEAR) around the two engines
(:mod:`hw.core.event_engine`, :mod:`hw.core.update_engine`), the state the engines share (:meth:`Sequencer._state`),
the memories' addresses and write ports, the update pipeline's control and the spike pick (:meth:`Sequencer._datapath`),
and the counters' increments (:meth:`Sequencer._count`)."""
from __future__ import annotations

import functools
import operator
from types import SimpleNamespace

from amaranth.hdl import Cat, Module, Mux, Signal, signed, unsigned
from amaranth.lib import data, wiring
from amaranth.lib.wiring import In, Out

from hw.config import ChipConfig
from hw.core.bias import BiasPath, bias_members
from hw.core.bits import at_least, lowest_one
from hw.core.conv import ConvDecoder
from hw.core.counters import increment_layout
from hw.core.event_engine import EventEngine
from hw.core.events import EventList, WavefrontLists, aer_fields, event_index_bits, event_stream_signature
from hw.core.shapes import _bank_addr, _lanes_of, _per_layer, _row_bits, _signals
from hw.core.touched import TouchedUpdate
from hw.core.update_engine import UpdateEngine
from hw.core.wavefront import Wavefront


def state_word_shape(cfg: ChipConfig):
    """A membrane memory word: ``lanes`` signed ``acc_bits`` values; with ``update = "touched"`` the step's
    sums ``h``, the stored membranes ``u`` (each ``lanes`` x ``acc_bits``) and the stamp (:mod:`hw.core.touched`)."""
    if cfg.touched:
        return unsigned(2 * cfg.lanes * cfg.acc_bits + cfg.stamp_bits)
    return _lanes_of(signed(cfg.acc_bits), cfg)


class Sequencer(EventEngine, UpdateEngine, TouchedUpdate, Wavefront, BiasPath, wiring.Component):
    """The two engines of a time step and the phase state machine (STEP, OUTPUT, CLEAR).

    The *event engine* takes the events of layer ``event_layer`` — layer 0's from ``events_in``, a later
    layer's from the ``events`` list — and issues one (weight word, state word) read per cycle; the lanes'
    sum (``lanes.accumulated``) is written back two cycles later. In the cycle after its last event (the
    end-of-events cycle) the *update engine* starts on that layer (``layer``): it fetches the layer's state
    words into the update pipeline back to back, writes ``lanes.next_membrane`` back and appends the fired
    neurons to the event list, one per cycle. When that UPDATE overlaps the next layer's EVENT phase
    (:meth:`hw.config.ChipConfig.overlapped`), the event engine moves on to the next layer at once and takes
    each spike the cycle after it is appended (the two layers' membranes are in different memories,
    :meth:`hw.config.ChipConfig.state_bank`); otherwise it waits for the UPDATE to end. After the last
    layer's UPDATE, OUTPUT streams the list out. A ``clear`` request (from the host) is taken in any state:
    CLEAR zeroes the membrane memories one word per cycle, then the sequencer waits for the next time step.
    Every cycle's activity is reported as counter ``increments``.
    """

    def __init__(self, cfg: ChipConfig, weight_port: wiring.Signature, offset_port: wiring.Signature,
                 bias_port: wiring.Signature | None = None):
        self.cfg = cfg
        lanes, banks = cfg.lanes, cfg.state_banks
        bank_addr = _bank_addr(cfg)
        word = _lanes_of(signed(cfg.acc_bits), cfg)
        touched = {
            "event_stored": In(cfg.lanes * cfg.acc_bits + cfg.stamp_bits),   # u, stamp of the event engine's word
            "leak_addr": Out(range(max(1, cfg.leak_table_depth))),           # the elapsed-leak table's read port
            "leak_en": Out(1),
            "hot": In(1),
            "flush": In(1),
            "stored": In(cfg.lanes * cfg.acc_bits),                          # u of the word entering UPDATE
            "elapsed": In(cfg.beta_frac_bits + 1),                           # the leak table's read data
        } if cfg.touched else {}
        super().__init__({
            "events_in": In(event_stream_signature(cfg)),
            "events_out": Out(event_stream_signature(cfg)),
            "busy": Out(1),
            "clear": In(1),
            "weights": In(weight_port),                 # read ports: addr out, data in
            "offsets": In(offset_port),
            # the membrane memories (one per bank): read address; write enable, address and word
            "membrane_read_addr": Out(data.ArrayLayout(bank_addr, banks)),
            "membrane_write_en": Out(banks),
            "membrane_write_addr": Out(data.ArrayLayout(bank_addr, banks)),
            "membrane_write_data": Out(data.ArrayLayout(state_word_shape(cfg), banks)),
            "event_bank": Out(range(banks)),            # the bank whose read data the lanes accumulate now
            "update_bank": Out(range(banks)),           # the bank whose read data enters the update pipeline
            "events": In(EventList.Signature(event_index_bits(cfg), _row_bits(cfg),   # drives an EventList
                                             cfg.appends_per_cycle)
                         if not cfg.wavefront else WavefrontLists.signature_of(cfg)),   # (wavefront: the lists)
            "layer": Out(range(cfg.num_layers)),        # the update engine's layer
            "active_lanes": Out(range(lanes + 1)),      # lanes holding neurons in the group in stage 3
            "advance": Out(1),                          # the update pipeline moves on (lanes' stage enable)
            "stage_valid": Out(cfg.update_latency),     # a group is in stage k + 1 (lanes: which stages load)
            "forward": Out(1),                          # lanes: accumulate onto the word being written
            "forward_update": Out(1),                   # lanes: update the word being written, not the read one
            "accumulated": In(word),
            "fired": In(lanes),
            "fired_count": In(range(lanes + 1)),
            "fired_next": In(lanes),
            "next_membrane": In(word),
            "increments": Out(increment_layout(cfg)),
            **touched,
            **bias_members(cfg, bias_port),             # the bias memory's read port (hw.core.bias)
        })

    def elaborate(self, platform):
        m = Module()
        self._platform = platform                         # update by touch: how the flush multiplies
        s = self._state(m)
        if s.decoder is not None:
            m.submodules.conv_decoder = s.decoder
            m.d.comb += [s.decoder.layer.eq(s.event_layer), s.decoder.restart.eq(self.clear | s.decoder.end)]
        self._datapath(m, s)
        # the event engine's registers are written through their next values (``s.nxt``), from which its take
        # decision is registered a cycle ahead (:meth:`_ready_ahead`)
        nxt = s.nxt
        m.d.comb += [nxt.event_waiting.eq(s.event_waiting), nxt.in_event.eq(s.in_event),
                     nxt.event_layer.eq(s.event_layer)]
        m.d.sync += [s.event_waiting.eq(nxt.event_waiting), s.in_event.eq(nxt.in_event),
                     s.event_layer.eq(nxt.event_layer)]
        self._fc_events(m, s)                             # in STEP by its registers (the decoded: in the phase)
        with m.FSM(name="phase") as fsm:
            phases = (("STEP", self._step_phase), ("OUTPUT", self._output_phase), ("CLEAR", self._clear_phase))
            if self.cfg.wavefront:                        # the output sender streams beside the engines
                phases = (phases[0], phases[2])
            if self.cfg.touched:
                phases += (("FLUSH", self._flush_phase),)
            for name, phase in phases:
                with m.State(name):
                    m.d.comb += nxt.step.eq(name == "STEP")
                    phase(m, s)
                    with m.If(self.clear):                # a clear request wins in every state
                        self._goto(m, s, "CLEAR")
        if self.cfg.wavefront:                            # (before the clear, whose zeroes win)
            self._wavefront_sender(m, s)
            self._wavefront_inputs(m, s)
        with m.If(self.clear):
            m.d.comb += [self.events.restart.eq(1), nxt.event_layer.eq(0), nxt.event_waiting.eq(0),
                         nxt.in_event.eq(0)]
            if self.cfg.wavefront:                        # a decision cycle at layer 0 next
                self._wavefront_clear(m, s)
            m.d.sync += [s.clear_addr.eq(0), self.layer.eq(0), s.updating.eq(0), s.fetching.eq(0), s.emitting.eq(0),
                         s.forward.eq(0), s.forward_update.eq(0), s.hold.eq(0)]
            m.d.sync += [v.eq(0) for v in s.valid]
            if self.cfg.touched:
                # the scan pointer too: a clear part-way through a fetch leaves it past words, and only an UPDATE
                # resets it (the next step's first UPDATE would skip them)
                m.d.sync += (([s.now.eq(0)] if not self.cfg.wavefront else []) +
                             [s.touched_words.eq(0), s.hot_words.eq(0), s.flush_pending.eq(0),
                              s.scan_from.eq((1 << len(s.scan_from)) - 1)] + [e.eq(0) for e in s.stage_end])
        if self.cfg.wavefront:                            # idle: parked with nothing left anywhere
            busy = ~fsm.ongoing("STEP") | ~s.idle | s.flush_pending
            self._wavefront_work(m, s, fsm.ongoing("STEP"))
        else:
            busy = (~fsm.ongoing("STEP") | (s.event_layer != 0) | s.event_waiting | s.updating | s.in_event |
                    (s.decoder.pending if s.decoder is not None else 0))
            if self.cfg.touched:                          # a flush is waiting for the step to end
                busy = busy | s.flush_pending
        m.d.comb += self.busy.eq(busy)
        self._count(m, s, fsm)
        self._ready_ahead(m, s, fsm)
        return m

    @staticmethod
    def _goto(m, s, state: str):
        """The phase moves to ``state`` next cycle (and ``s.nxt.step`` says whether that is STEP)."""
        m.next = state
        m.d.comb += s.nxt.step.eq(state == "STEP")

    def _layer_constants(self, layer) -> SimpleNamespace:
        """The constants of layer ``layer`` (a signal) that an engine needs, as muxes of constants."""
        cfg, L, lanes = self.cfg, self.cfg.num_layers, self.cfg.lanes

        def per_layer(f, shape=None):
            return _per_layer(cfg, layer, f, shape)
        return SimpleNamespace(
            groups=per_layer(cfg.groups),
            words=per_layer(cfg.state_words),
            state_base=per_layer(cfg.state_base, range(cfg.state_depth + 1)),   # offsets: the host's map
            base=per_layer(cfg.bank_base),                                       # in its membrane memory
            bank=per_layer(cfg.state_bank, range(cfg.state_banks)),
            last_group_lanes=per_layer(lambda l: cfg.out_channels(l) - (cfg.groups(l) - 1) * lanes,
                                       range(lanes + 1)),
            decoding=per_layer(cfg.decoded, 1),
            overlapped=per_layer(cfg.overlapped, 1),
            next_base=per_layer(lambda l: cfg.weight_base(l + 1) if l + 1 < L else 0,
                                range(cfg.weight_depth + 1)),     # the next layer's first weight word
        )

    def _state(self, m) -> SimpleNamespace:
        """The per-layer constants of the engines' layers and the signals the phases share."""
        cfg, L, lanes = self.cfg, self.cfg.num_layers, self.cfg.lanes
        max_groups = max(cfg.groups(l) for l in range(L))
        max_words = max(cfg.state_words(l) for l in range(L))
        group_range, weight_range = range(max_groups + 1), range(cfg.weight_depth + 1)
        word_range = range(max_words + 1)
        bank_addr = _bank_addr(cfg)
        decoded = [cfg.decoded(l) for l in range(L)]
        event_layer = Signal(range(L), name="event_layer")
        s = SimpleNamespace(
            event_layer=event_layer,
            ev=self._layer_constants(event_layer),        # the event engine's layer
            up=self._layer_constants(self.layer),         # the update engine's layer
            # the conv event decoder, when a layer needs one
            decoder=ConvDecoder(cfg) if any(decoded) else None,
            # positions of the layers (conv): the spike's coordinate is tracked by counters in UPDATE
            spatial=any(cfg.layer_kind(l) == "conv" for l in range(L)),
            **_signals(
                event_waiting=1,                          # the event engine waits for the UPDATE to end
                updating=1,                               # the update engine has a layer
                # the event source (layer 0: the input stream; later: the event list)
                source_valid=1, source_end=1, source_index=event_index_bits(cfg),
                take=1,                                   # consume the source's event or end token
                taken_in=1,                               # an input event (not the end token) is taken
                # registered a cycle ahead (Sequencer._ready_ahead): STEP, not waiting, no event part-way, and
                # an fc layer after the first / layer 0 (the fc event engine's decision starts at these)
                ready_list=1,
                stall=1,                                  # waiting for the host
                counting=1,                               # a cycle of the step's schedule
                # event engine: one (weight word, membrane word) read per cycle, accumulated two cycles later
                in_event=1,                               # an event is part-way through its groups
                event_group=group_range,                  # next group of that event
                weight_addr=weight_range,                 # its last issued weight word
                issue=1,                                  # read one word of an event this cycle
                issue_group=group_range,
                issue_weight_addr=weight_range,
                issue_state_addr=bank_addr,               # in the event layer's membrane memory
                row_base=weight_range,                    # first weight word of the source event's row
                forward=1,                                # (registered) see NeuronLanes.forward
                # update engine: a pipeline of UPDATE_LATENCY stages; group `group` is in the last one, whose
                # spikes leave one per cycle (the pipeline holds while it has more than one left)
                update_bank=range(cfg.state_banks),       # the memory of the update engine's layer
                update_owns=cfg.state_banks,              # (registered) bank b's read port is the update's
                fetching=1,                               # groups are left to read
                fetch=1,                                  # read the words of `fetch_group` this cycle
                fetch_group=word_range,                   # a state word of the layer (conv: pos*G + g)
                fetch_g=group_range,                      # its group within its position
                update_addr=bank_addr,                    # the membrane read address (a register)
                offset_addr=range(cfg.state_depth + 1),   # the offset read address (a register)
                emitting=1,                               # sending the spikes left in `pending_spikes`
                pending_spikes=lanes,
                # the lowest spike of `pending_spikes` / of NeuronLanes.fired, one-hot, registered beside them
                pending_lowest=lanes,
                fired_lowest=lanes,
                write_back=1,                             # first cycle of `group` in the last stage
                forward_update=1,                         # (registered) see NeuronLanes.forward_update
                hold=1,                                   # the last stage keeps its group another cycle
                write_back_addr=bank_addr,                # the state word of `group` in its memory
                # CLEAR: the word zeroed this cycle (in every bank that has it)
                clear_addr=range(cfg.state_depth + 1),
            ))
        # per stage 1 .. UPDATE_LATENCY: a group is in it, and which
        P = cfg.update_latency
        s.valid = [Signal(name=f"stage{i}_valid") for i in range(1, P + 1)]
        s.ready_in = Signal(init=int(not cfg.decoded(0)), name="ready_in")   # reset: STEP, layer 0
        if cfg.wavefront:                                 # reset: a decision cycle at layer 0 (hw.core.wavefront)
            s.event_waiting = Signal(init=1, name="event_waiting")
            s.ready_in = Signal(name="ready_in")
        s.flush_go = Signal(name="flush_go")              # update by touch: STEP moves to FLUSH
        s.nxt = SimpleNamespace(step=Signal(name="step_next"), event_waiting=Signal(name="event_waiting_next"),
                                in_event=Signal(name="in_event_next"),
                                event_layer=Signal.like(event_layer, name="event_layer_next"))
        s.stage_group = [Signal(word_range, name=f"stage{i}_group") for i in range(1, P + 1)]
        # the group is the last (maybe partial) one of its position
        s.stage_last = [Signal(name=f"stage{i}_last") for i in range(1, P + 1)]
        s.group = s.stage_group[-1]
        s.have_group = s.valid[-1]
        s.compare_last = s.stage_last[P - 3]              # the stage that compares
        s.fetch_last = (s.fetch_g if s.spatial else s.fetch_group) == s.up.groups - 1
        s.fetch_word = s.fetch_group                      # the word fetched (update by touch: the scan's)
        if cfg.touched:
            self._touched_state(m, s, word_range)
        if cfg.wavefront:
            self._wavefront_state(m, s)
        # event engine: cycle t decides; the weight word's address is registered in the weight memory (three-
        # cycle read); the membrane word is read at t+2 (`read`) from a registered address; both reach the
        # lanes' registers at t+3 (`lanes`), are added and written back at t+4 (`write`)
        stages = ("issued", "read", "lanes", "write")
        s.acc_valid = [Signal(name=f"acc_{i}_valid") for i in stages]
        s.acc_addr = [Signal(bank_addr, name=f"acc_{i}_addr") for i in stages]
        s.acc_bank = [Signal(range(cfg.state_banks), name=f"acc_{i}_bank") for i in stages]
        s.last_group = s.stage_last[-1]                    # of its position
        s.last_word = s.group == s.up.words - 1           # of the layer
        # lane 0 of the group in the last stage, as running registers moved on as groups leave (no multiply
        # on the path from `fired` to the event list): its flat neuron index `nbase` (pos·C_out + g·lanes)
        # and its weight row in the next layer `row` (fc next: weight_base + (pooled flat index)·G); for
        # conv layers also its channel `cbase` (g·lanes), position (`out_x`, `out_y`), position in the
        # pooling window of the next layer (`pool_x`, `pool_y`), and the rows of lane 0 of the pooled
        # position (`row_pos`) and of the pooled row's first position (`row_line`)
        max_out = max(cfg.fan_out(l) for l in range(L))
        s.nbase = Signal(range(max_out + lanes + 1), name="append_nbase")
        s.row = Signal(range(cfg.weight_depth + lanes * max_groups + 1), name="append_row")
        if s.spatial:
            max_w = max(max(cfg.out_shape(l)[1:]) for l in range(L))
            s.cbase = Signal(range(max_groups * lanes + 1), name="append_cbase")
            s.row_pos = Signal.like(s.row, name="append_row_pos")
            s.row_line = Signal.like(s.row, name="append_row_line")
            s.out_x = Signal(range(max_w + 1), name="append_x")
            s.out_y = Signal(range(max_w + 1), name="append_y")
            s.pool_x = Signal(range(9), name="append_pool_x")
            s.pool_y = Signal(range(9), name="append_pool_y")
        s.unsent = Mux(s.emitting, s.pending_spikes, self.fired)
        s.unsent_lowest = Mux(s.emitting, s.pending_lowest, s.fired_lowest)     # = unsent & -unsent
        s.unsent_after = s.unsent & ~s.unsent_lowest      # all but the lowest spike (no carry chain)
        if cfg.touched:                                   # two spikes per cycle (hw.core.touched)
            self._touched_second(m, s)
        return s

    def _datapath(self, m, s):
        """Memory addresses, the accumulate and update write-backs and the pick of the next spike to append."""
        cfg, lanes, banks = self.cfg, self.cfg.lanes, self.cfg.state_banks
        # the source event's row: layer 0 from the input's index; later layers stored with the event
        if cfg.decoded(0):
            m.d.comb += s.row_base.eq(self.events.head_row)
        else:
            m.d.comb += s.row_base.eq(Mux(s.event_layer == 0, self.events_in.payload.index * cfg.groups(0),
                                          self.events.head_row))
        # the event engine's pipeline (a clear request drops the pending accumulations: CLEAR owns the write
        # ports and the counters restart); its membrane reads are addressed by the `read` stage's register
        m.d.sync += [v.eq(u & ~self.clear) for v, u in zip(s.acc_valid, [s.issue] + s.acc_valid[:-1])]
        m.d.sync += [a.eq(b) for a, b in zip(s.acc_addr, [s.issue_state_addr] + s.acc_addr[:-1])]
        m.d.sync += [a.eq(b) for a, b in zip(s.acc_bank, [s.ev.bank] + s.acc_bank[:-1])]
        # the update engine's read addresses are registers (stage 1); while the pipeline holds, the ports read
        # the words of the group in stage 2 again (the memories' read data is that stage's register)
        update_addr_2, offset_addr_2 = Signal.like(s.update_addr), Signal.like(s.offset_addr)
        s.update_addr_2 = update_addr_2
        with m.If(self.advance):
            m.d.sync += [s.update_addr.eq(s.up.base + s.fetch_word), s.offset_addr.eq(s.up.state_base + s.fetch_word),
                         update_addr_2.eq(s.update_addr), offset_addr_2.eq(s.offset_addr)]
        # a bank's read port serves the update engine from the cycle after its first fetch to its end (the
        # event engine is then on another bank, or its last read of this one was the cycle before)
        m.d.sync += [s.update_owns[b].eq(s.updating & (s.update_bank == b)) for b in range(banks)]
        update_read = Mux(s.hold, update_addr_2, s.update_addr)
        for b in range(banks):
            m.d.comb += self.membrane_read_addr[b].eq(Mux(s.update_owns[b], update_read, s.acc_addr[1]))
        # the word read now is written back (by the accumulation of the previous read) in the cycle it
        # reaches the lanes' register: take the sum then, not the memory's stale word (an event's read right
        # after another of the same word, or the first UPDATE read of a word accumulated last)
        m.d.sync += [s.forward.eq(s.acc_valid[2] & (s.acc_addr[1] == s.acc_addr[2]) & (s.acc_bank[1] == s.acc_bank[2])),
                     s.forward_update.eq(s.acc_valid[2] & (update_read == s.acc_addr[2]) &
                                         (s.update_bank == s.acc_bank[2]))]
        m.d.comb += [
            self.weights.addr.eq(s.issue_weight_addr), self.weights.en.eq(s.issue),   # a bank reads on an issue only
            # the offsets are read for a group moving into stage 2 only (held while the pipeline holds; other
            # cycles' words would enter invalid stages)
            self.offsets.addr.eq(Mux(s.hold, offset_addr_2, s.offset_addr)), self.offsets.en.eq(self.advance & s.valid[0]),
            self.forward.eq(s.forward), self.forward_update.eq(s.forward_update),
            self.event_bank.eq(s.acc_bank[2]), self.update_bank.eq(s.update_bank),
        ]
        # a bank's write port, one writer at a time, decided by registers: CLEAR (`clearing_bank`: a request
        # sets it, the bank's last word clears it), an accumulation (`accumulate`: the write stage's bank), or
        # the UPDATE write-back (the group in the last stage, on its first cycle; its address registered as it
        # moves there)
        for b in range(banks):
            clearing, accumulate = Signal(name=f"clearing_bank{b}"), Signal(name=f"accumulate_bank{b}")
            m.d.sync += accumulate.eq(s.acc_valid[2] & (s.acc_bank[2] == b) & ~self.clear)
            with m.If(self.clear):
                m.d.sync += clearing.eq(1)
            with m.Elif(s.clear_addr == cfg.bank_depth(b) - 1):
                m.d.sync += clearing.eq(0)
            write_back = s.write_back & (s.update_bank == b)
            m.d.comb += [
                self.membrane_write_en[b].eq(clearing | accumulate | write_back),
                self.membrane_write_addr[b].eq(Mux(clearing, s.clear_addr,
                                                   Mux(accumulate, s.acc_addr[3], s.write_back_addr))),
                self.membrane_write_data[b].eq(Mux(clearing, 0, Mux(accumulate, self.accumulated,
                                                                      self.next_membrane))
                                               if not cfg.touched else
                                               Mux(clearing, 0, Mux(accumulate, self._touched_write_data(s, "accumulate"),
                                                                    self._touched_write_data(s, "update")))),
            ]
        # the group in the last stage, on its first cycle there, is written back (only in STEP: the last group
        # leaves the pipeline in the cycle the update engine ends; CLEAR empties it)
        m.d.comb += s.write_back.eq(s.have_group & ~s.emitting)
        if cfg.touched:
            self._touched_datapath(m, s)
        self._bias_datapath(m, s)
        # the update pipeline: every stage moves on unless the last one holds more than one unsent spike;
        # registered (`hold`): from what moves into the last stage (2+ spikes), or what is left in it (2+ spikes
        # after the one sent now: 3+ unsent) — counted by a LUT tree, not `x & (x - 1)`'s carry chain (hw.core.bits)
        m.d.comb += [self.advance.eq(~s.hold), self.stage_valid.eq(Cat(*s.valid))]
        if cfg.touched:                                   # two spikes leave per cycle (hw.core.touched)
            self._touched_hold(m, s)
        else:
            m.d.sync += s.hold.eq(Mux(self.advance, s.valid[-2] & at_least(self.fired_next, 2, m, "fired_next_count"),
                                     at_least(s.unsent, 3, m, "unsent_count")))
        with m.If(self.advance):
            m.d.sync += [s.valid[0].eq(s.fetch), s.stage_group[0].eq(s.fetch_word), s.stage_last[0].eq(s.fetch_last)]
            m.d.sync += [v.eq(u) for v, u in zip(s.valid[1:], s.valid[:-1])]
            m.d.sync += [g.eq(h) for g, h in zip(s.stage_group[1:], s.stage_group[:-1])]
            m.d.sync += [g.eq(h) for g, h in zip(s.stage_last[1:], s.stage_last[:-1])]
            m.d.sync += s.write_back_addr.eq(s.up.base + s.stage_group[-2])
        # the lowest unsent spike, one-hot, from registers: `fired`'s is registered with it (from `fired_next`),
        # `pending_spikes`' with them (from `unsent_after`)
        with m.If(self.advance):
            m.d.sync += s.fired_lowest.eq(lowest_one(self.fired_next))
        s.last_active = Mux(s.last_group, s.up.last_group_lanes, lanes)
        # the spike's neuron: flat index pos·C_out + g·lanes + lane; into an fc layer with its weight row
        # (of the pooled position when pooled), into a decoded layer as a packed coordinate
        # (each lane's value is added from registers beside the pick, which only selects with the registered
        # one-hot lowest spike: an AND-OR, no priority encoder or adder on the path to the event list)
        def pick(base, step=1, values=None):
            values = [base + k * step for k in range(lanes)] if values is None else values
            return functools.reduce(operator.or_, [Mux(s.unsent_lowest[k], v, 0) for k, v in enumerate(values)])
        # (update by touch: each lane's value is a register of its own, hw.core.touched)
        m.d.comb += [self.active_lanes.eq(Mux(s.compare_last, s.up.last_group_lanes, lanes)),
                     self.events.append_index.eq(pick(s.nbase, values=s.nbase_lanes if cfg.touched else None))]
        with m.Switch(self.layer):
            for l in range(cfg.num_layers - 1):
                with m.Case(l):
                    if cfg.decoded(l + 1):
                        bc, bx, by = aer_fields(cfg.out_shape(l))
                        channel = pick(s.cbase)
                        m.d.comb += self.events.append_index.eq(Cat(channel[:bc], s.out_x[:bx], s.out_y[:by]))
                    else:
                        m.d.comb += self.events.append_row.eq(pick(s.row, cfg.groups(l + 1),
                                                                   values=s.row_lanes if cfg.touched else None))
        if cfg.touched:                                   # the second spike of the cycle, picked the same way
            self._touched_append_second(m, s)

    def _step_phase(self, m, s):
        """A time step's layers: the event engine (unless it waits) and the update engine (when it has a layer)."""
        if self.cfg.touched:
            m.d.comb += s.flush_go.eq(s.flush_pending & (s.event_layer == 0) & ~s.event_waiting & ~s.updating &
                                      ~s.in_event & (~s.decoder.pending if s.decoder is not None else 1))
            if self.cfg.wavefront:                        # between samples: nothing left anywhere
                m.d.comb += s.flush_go.eq(s.flush_pending & s.idle)
            with m.If(s.flush_go):
                m.d.sync += [s.flush_pending.eq(0), s.flush_addr.eq(0), s.flush_cycle.eq(0)]
                self._goto(m, s, "FLUSH")                 # between steps: the flush (hw.core.touched), uncounted
            with m.Else():
                self._step_engines(m, s)
            return
        self._step_engines(m, s)

    def _step_engines(self, m, s):
        m.d.comb += s.counting.eq(1)
        with m.If(~s.event_waiting):
            self._event_engine(m, s)
        if self.cfg.wavefront:                            # a decision cycle (hw.core.wavefront)
            with m.Else():
                self._wavefront_decide(m, s)
        with m.If(s.updating):
            if self.cfg.touched:
                self._touched_update_engine(m, s)
            else:
                self._update_engine(m, s)
        if self.cfg.wavefront:                            # after the update engine's end: a start wins
            self._wavefront_update_start(m, s)

    def _output_phase(self, m, s):
        events, out = self.events, self.events_out
        m.d.comb += [s.counting.eq(1), s.source_end.eq(events.empty),
                     out.valid.eq(1), out.payload.index.eq(Mux(events.empty, 0, events.head)),
                     out.payload.end.eq(events.empty),
                     s.take.eq(out.ready), s.stall.eq(~out.ready)]
        with m.If(s.take & ~s.source_end):
            m.d.comb += events.advance.eq(1)
        with m.If(s.take & s.source_end):
            m.d.comb += events.rewind.eq(1)
            m.d.sync += self.layer.eq(0)
            m.d.comb += [s.nxt.event_layer.eq(0), s.nxt.event_waiting.eq(0), s.nxt.in_event.eq(0)]
            if self.cfg.touched:
                m.d.sync += s.now.eq(s.now + 1)
            self._goto(m, s, "STEP")

    def _clear_phase(self, m, s):
        m.d.sync += s.clear_addr.eq(s.clear_addr + 1)     # the banks zero their words (see _datapath)
        with m.If(s.clear_addr == self.cfg.state_depth - 1):
            self._goto(m, s, "STEP")

    def _count(self, m, s, fsm):
        """This cycle's increment of every performance counter (both engines may act in one cycle)."""
        inc, lanes = self.increments, self.cfg.lanes
        wave = self.cfg.wavefront
        m.d.comb += [
            inc.cycles.eq(s.counting & ~s.stall if not wave else s.work),
            inc.stall_cycles.eq(s.stall if not wave else fsm.ongoing("STEP") & ~s.work),
            inc.in_events.eq(s.taken_in),
            inc.synops.eq(Mux(s.issue, Mux(s.issue_group == s.ev.groups - 1, s.ev.last_group_lanes, lanes), 0)),
            inc.weight_reads.eq(s.issue),
            inc.state_reads.eq(s.issue + s.fetch),
            inc.state_writes.eq(s.acc_valid[3] + s.write_back),
            inc.neuron_updates.eq(Mux(s.write_back, s.last_active, 0)),
            inc.out_events.eq(fsm.ongoing("OUTPUT") & s.take & ~s.source_end if not wave else
                              s.sending & self.events_out.ready & ~self.events.output_empty),
        ]
        for l in range(self.cfg.num_layers):
            m.d.comb += inc[f"spikes_l{l}"].eq(Mux(s.write_back & (self.layer == l), self.fired_count, 0))
