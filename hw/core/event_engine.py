"""The event engine (a part of :class:`hw.core.sequencer.Sequencer`): takes a layer's events — layer 0's
from the input stream, later layers' from the event list — and issues one (weight word, state word) read per
cycle: an fc event walks its row's groups, a decoded (conv or packed-input) layer's events go through the
:class:`hw.core.conv.ConvDecoder`; in the end-of-events cycle it hands the layer to the update engine."""
from __future__ import annotations

from amaranth.hdl import Mux


class EventEngine:
    """The event engine's methods of :class:`hw.core.sequencer.Sequencer` (``s``: its shared state)."""

    def _start_update(self, m, s):
        """The end-of-events cycle of the event engine's layer: the update engine takes that layer from the
        next cycle; the event engine moves on to the next layer (overlapped) or waits for the UPDATE."""
        ev, L = s.ev, self.cfg.num_layers
        m.d.comb += self.events.restart.eq(1)
        m.d.sync += [s.updating.eq(1), self.layer.eq(s.event_layer), s.update_bank.eq(ev.bank),
                     s.fetching.eq(1), s.fetch_group.eq(0), s.emitting.eq(0), s.nbase.eq(0), s.row.eq(ev.next_base),
                     s.event_waiting.eq(~ev.overlapped)]
        with m.If(s.event_layer != L - 1):
            m.d.sync += s.event_layer.eq(s.event_layer + 1)
        if s.spatial:
            m.d.sync += [s.fetch_g.eq(0), s.cbase.eq(0), s.row_pos.eq(ev.next_base), s.row_line.eq(ev.next_base),
                         s.out_x.eq(0), s.out_y.eq(0), s.pool_x.eq(0), s.pool_y.eq(0)]

    def _event_engine(self, m, s):
        events = self.events
        ready = ~s.in_event if s.decoder is None else Mux(s.ev.decoding, s.decoder.accept, ~s.in_event)
        with m.If(s.event_layer == 0):
            m.d.comb += [s.source_valid.eq(self.events_in.valid), s.source_end.eq(self.events_in.payload.end),
                         s.source_index.eq(self.events_in.payload.index), self.events_in.ready.eq(ready)]
        with m.Else():                                    # the list: ended when the UPDATE feeding it is over
            m.d.comb += [s.source_valid.eq(~events.empty | ~s.updating), s.source_end.eq(events.empty),
                         s.source_index.eq(events.head)]
        if s.decoder is None:
            self._fc_events(m, s)
        else:
            with m.If(s.ev.decoding):
                self._decoded_events(m, s)
            with m.Else():
                self._fc_events(m, s)

    def _decoded_events(self, m, s):
        """A decoded layer's events: the ConvDecoder takes them and issues the visits."""
        dec, events = s.decoder, self.events
        m.d.comb += [dec.source_valid.eq(s.source_valid), dec.source_end.eq(s.source_end),
                     dec.source_index.eq(s.source_index),
                     s.take.eq(dec.take), events.advance.eq(dec.take & ~s.source_end & (s.event_layer != 0)),
                     s.issue.eq(dec.issue), s.issue_group.eq(dec.group), s.issue_weight_addr.eq(dec.weight_addr),
                     s.issue_state_addr.eq(dec.state_addr)]
        with m.If(dec.end):
            self._start_update(m, s)
        with m.Elif(~dec.issue & ~dec.fill):
            m.d.comb += s.stall.eq(1)

    def _fc_events(self, m, s):
        """An fc layer's events: each takes its groups' words from its row, from the cycle it is taken."""
        events = self.events
        m.d.comb += s.issue_state_addr.eq(s.ev.base + s.issue_group)
        with m.If(s.in_event):                            # the next group of the current event
            next_addr = s.weight_addr + 1
            m.d.comb += [s.issue.eq(1), s.issue_group.eq(s.event_group), s.issue_weight_addr.eq(next_addr)]
            m.d.sync += [s.weight_addr.eq(next_addr), s.event_group.eq(s.event_group + 1)]
            with m.If(s.event_group == s.ev.groups - 1):
                m.d.sync += s.in_event.eq(0)
        with m.Elif(s.source_valid & ~s.source_end):      # a new event: its group 0
            m.d.comb += [s.take.eq(1), s.issue.eq(1), s.issue_group.eq(0), s.issue_weight_addr.eq(s.row_base),
                         events.advance.eq(s.event_layer != 0)]
            m.d.sync += [s.weight_addr.eq(s.row_base), s.event_group.eq(1), s.in_event.eq(s.ev.groups > 1)]
        with m.Elif(s.source_valid):                      # end of the layer's events
            m.d.comb += s.take.eq(1)
            self._start_update(m, s)
        with m.Else():                                    # the host's next token (layer 0), or the next spike
            m.d.comb += s.stall.eq(s.event_layer == 0)
