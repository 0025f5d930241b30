"""The event engine (a part of :class:`hw.core.sequencer.Sequencer`): takes a layer's events — layer 0's
from the input stream, later layers' from the event list — and issues one (weight word, state word) read per
cycle: an fc event walks its row's groups, a decoded (conv or packed-input) layer's events go through the
:class:`hw.core.conv.ConvDecoder`; in the end-of-events cycle it hands the layer to the update engine."""
from __future__ import annotations

from hw.core.shapes import _per_layer


class EventEngine:
    """The event engine's methods of :class:`hw.core.sequencer.Sequencer` (``s``: its shared state)."""

    def _start_update(self, m, s):
        """The end-of-events cycle of the event engine's layer: the update engine takes that layer from the
        next cycle; the event engine moves on to the next layer (overlapped) or waits for the UPDATE."""
        ev, L, nxt = s.ev, self.cfg.num_layers, s.nxt
        if self.cfg.wavefront:                            # handed over or queued (hw.core.wavefront)
            self._wavefront_hand_over(m, s)
            return
        m.d.comb += [self.events.restart.eq(1), nxt.event_waiting.eq(~ev.overlapped)]
        self._take_update(m, s, s.event_layer, ev)
        with m.If(s.event_layer != L - 1):
            m.d.comb += nxt.event_layer.eq(s.event_layer + 1)

    def _take_update(self, m, s, layer, c):
        """The update engine takes ``layer`` (constants ``c``, :meth:`_layer_constants`) from the next cycle."""
        m.d.sync += [s.updating.eq(1), self.layer.eq(layer), s.update_bank.eq(c.bank),
                     s.fetching.eq(1), s.fetch_group.eq(0), s.emitting.eq(0), s.nbase.eq(0), s.row.eq(c.next_base)]
        if s.spatial:
            m.d.sync += [s.fetch_g.eq(0), s.cbase.eq(0), s.row_pos.eq(c.next_base), s.row_line.eq(c.next_base),
                         s.out_x.eq(0), s.out_y.eq(0), s.pool_x.eq(0), s.pool_y.eq(0)]

    def _ready_ahead(self, m, s, fsm):
        """The fc event engine's take decision from registers decided a cycle ahead: ``ready_list`` / ``ready_in``
        are the next values of "STEP, not waiting, no event part-way, an fc layer after the first / layer 0",
        computed from the next values of the phase, ``event_waiting``, ``in_event`` and ``event_layer``
        (``s.nxt``). Same cycles: each equals :meth:`_ready_now` (its expression of the registers) in every cycle."""
        def ready(step, waiting, in_event, layer):
            free = step & ~waiting & ~in_event
            if s.decoder is not None:
                free = free & ~_per_layer(self.cfg, layer, self.cfg.decoded, 1)
            return free & (layer != 0), free & (layer == 0)
        nxt = s.nxt
        ready_list, ready_in = ready(nxt.step, nxt.event_waiting, nxt.in_event, nxt.event_layer)
        m.d.sync += [s.ready_list.eq(ready_list), s.ready_in.eq(ready_in)]
        # what the registers stand for, from the phase and the engine's registers (for the tests; not built)
        s.ready_now = ready(fsm.ongoing("STEP"), s.event_waiting, s.in_event, s.event_layer)

    def _event_engine(self, m, s):
        """A decoded layer's event source and events (in STEP, the event engine not waiting); an fc layer's
        events are taken by :meth:`_fc_events` outside the phases."""
        if s.decoder is None:
            return
        events = self.events
        with m.If(s.ev.decoding):
            with m.If(s.event_layer == 0):
                m.d.comb += [s.source_valid.eq(self.events_in.valid), s.source_end.eq(self.events_in.payload.end),
                             s.source_index.eq(self.events_in.payload.index), self.events_in.ready.eq(s.decoder.accept),
                             s.taken_in.eq(s.decoder.take & ~self.events_in.payload.end)]
            with m.Else():                                # the list: ended when the UPDATE feeding it is over
                complete = 1 if self.cfg.wavefront else ~s.updating      # (a wavefront's is complete)
                m.d.comb += [s.source_valid.eq(~events.empty | complete), s.source_end.eq(events.empty),
                             s.source_index.eq(events.head)]
            self._decoded_events(m, s)

    def _decoded_events(self, m, s):
        """A decoded layer's events: the ConvDecoder takes them and issues the visits."""
        dec, events = s.decoder, self.events
        m.d.comb += [dec.source_valid.eq(s.source_valid), dec.source_end.eq(s.source_end),
                     dec.source_index.eq(s.source_index),
                     s.take.eq(dec.take), events.advance.eq(dec.take & ~s.source_end & (s.event_layer != 0)),
                     s.issue.eq(dec.issue), s.issue_group.eq(dec.group), s.issue_weight_addr.eq(dec.weight_addr),
                     s.issue_state_addr.eq(dec.state_addr)]
        idle = ~dec.issue & ~dec.fill
        cfg = self.cfg
        if any(cfg.overlapped(l) and cfg.decoded(l + 1) for l in range(cfg.num_layers - 1)):
            # a list-fed layer idles only while the UPDATE feeding it runs (overlap): those cycles count;
            # only the host's input (layer 0) stalls. (Without such a layer the logic is today's, unchanged.)
            idle = idle & (s.event_layer == 0)
        with m.If(dec.end):
            self._start_update(m, s)
        with m.Elif(idle):
            m.d.comb += s.stall.eq(1)

    def _fc_events(self, m, s):
        """An fc layer's events: each takes its groups' words from its row, from the cycle it is taken. Decided
        from registers only (``in_event``, ``ready_list`` / ``ready_in`` with the list's ``empty``, the input's
        ``valid`` / ``end``), outside the phases: each register implies STEP and the engine not waiting."""
        events, inp, nxt = self.events, self.events_in, s.nxt
        ready_in = s.ready_in if not self.cfg.touched else s.ready_in & ~s.flush_go
        # a new event (layer 0: the input's; later: the list's), the end of the layer's events
        new_event = (s.ready_list & ~events.empty) | (ready_in & inp.valid & ~inp.payload.end)
        complete = 1 if self.cfg.wavefront else ~s.updating          # (a wavefront's list is complete)
        end_events = (s.ready_list & events.empty & complete) | (ready_in & inp.valid & inp.payload.end)
        m.d.comb += [s.issue_state_addr.eq(s.ev.base + s.issue_group), inp.ready.eq(ready_in),
                     s.stall.eq(ready_in & ~inp.valid),   # the host's next token (layer 0)
                     s.taken_in.eq(ready_in & inp.valid & ~inp.payload.end)]
        with m.If(s.in_event):                            # the next group of the current event
            next_addr = s.weight_addr + 1
            m.d.comb += [s.issue.eq(1), s.issue_group.eq(s.event_group), s.issue_weight_addr.eq(next_addr)]
            m.d.sync += [s.weight_addr.eq(next_addr), s.event_group.eq(s.event_group + 1)]
            with m.If(s.event_group == s.ev.groups - 1):
                m.d.comb += nxt.in_event.eq(0)
        with m.Elif(new_event):                           # a new event: its group 0
            m.d.comb += [s.take.eq(1), s.issue.eq(1), s.issue_group.eq(0), s.issue_weight_addr.eq(s.row_base),
                         events.advance.eq(s.ready_list), nxt.in_event.eq(s.ev.groups > 1)]
            m.d.sync += [s.weight_addr.eq(s.row_base), s.event_group.eq(1)]
        with m.Elif(end_events):                          # end of the layer's events
            m.d.comb += s.take.eq(1)
            self._start_update(m, s)
