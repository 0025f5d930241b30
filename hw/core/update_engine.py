"""The update engine (a part of :class:`hw.core.sequencer.Sequencer`): fetches a layer's state words into
the update pipeline, writes the new membranes back, appends the fired neurons to the event list one per cycle
and keeps the running neuron index and next-layer weight row (and, for conv, the position) of the group in
the last stage."""
from __future__ import annotations

from amaranth.hdl import Mux

from hw.core.bits import lowest_one
from hw.core.shapes import _per_layer


class UpdateEngine:
    """The update engine's methods of :class:`hw.core.sequencer.Sequencer` (``s``: its shared state)."""

    def _update_engine(self, m, s):
        with m.If(s.fetching & self.advance):             # read the next group into the pipeline
            m.d.comb += s.fetch.eq(1)
            m.d.sync += s.fetch_group.eq(s.fetch_group + 1)
            if s.spatial:
                m.d.sync += s.fetch_g.eq(Mux(s.fetch_last, 0, s.fetch_g + 1))
            with m.If(s.fetch_group == s.up.words - 1):
                m.d.sync += s.fetching.eq(0)
        with m.If(s.have_group):                          # the last stage: write back, emit the spikes
            with m.If(s.unsent != 0):
                m.d.comb += self.events.append.eq(1)
            with m.If(s.hold):                            # = more than one unsent spike (a register)
                m.d.sync += [s.pending_spikes.eq(s.unsent_after), s.pending_lowest.eq(lowest_one(s.unsent_after)),
                             s.emitting.eq(1)]
            with m.Else():                                # the group is done
                m.d.sync += s.emitting.eq(0)
                self._next_neurons(m, s)
                with m.If(s.last_word):                   # the layer is done
                    m.d.sync += s.updating.eq(0)
                    with m.If(self.layer == self.cfg.num_layers - 1):
                        self._goto(m, s, "OUTPUT")
                    with m.Elif(~s.up.overlapped):        # the event engine waited: it starts next cycle
                        m.d.comb += s.nxt.event_waiting.eq(0)

    def _next_neurons(self, m, s):
        """Move the append registers to the next group (the group in the last stage is done)."""
        cfg, L, lanes = self.cfg, self.cfg.num_layers, self.cfg.lanes

        def per_layer(f):
            return _per_layer(cfg, self.layer, f)

        def next_groups(l):                              # words per row of the next layer (0: none)
            return cfg.groups(l + 1) if l + 1 < L else 0
        with m.If(~s.last_group):
            m.d.sync += [s.nbase.eq(s.nbase + lanes), s.row.eq(s.row + per_layer(lambda l: lanes * next_groups(l)))]
            if s.spatial:
                m.d.sync += s.cbase.eq(s.cbase + lanes)
        with m.Else():
            m.d.sync += s.nbase.eq(s.nbase + s.up.last_group_lanes)
            if not s.spatial:                             # fc only: the layer's last group
                return
            m.d.sync += s.cbase.eq(0)

            def next_pool(l):                             # pooling into the next layer when that is fc
                return cfg.pool_window(l + 1) if l + 1 < L and not cfg.decoded(l + 1) else (1, 1)
            last_x = per_layer(lambda l: cfg.out_shape(l)[2] - 1)
            pool_h = per_layer(lambda l: next_pool(l)[0] - 1)
            pool_w = per_layer(lambda l: next_pool(l)[1] - 1)
            # rows: next pooled position (C_out rows on), next pooled row (W'/pw positions on)
            step_pos = per_layer(lambda l: cfg.out_channels(l) * next_groups(l))
            step_line = per_layer(lambda l: cfg.out_shape(l)[2] // next_pool(l)[1] * cfg.out_channels(l) *
                                  next_groups(l))
            with m.If(s.out_x == last_x):                 # next row
                m.d.sync += [s.out_x.eq(0), s.pool_x.eq(0), s.out_y.eq(s.out_y + 1)]
                with m.If(s.pool_y == pool_h):
                    line = s.row_line + step_line
                    m.d.sync += [s.pool_y.eq(0), s.row_line.eq(line), s.row_pos.eq(line), s.row.eq(line)]
                with m.Else():
                    m.d.sync += [s.pool_y.eq(s.pool_y + 1), s.row_pos.eq(s.row_line), s.row.eq(s.row_line)]
            with m.Else():
                m.d.sync += s.out_x.eq(s.out_x + 1)
                with m.If(s.pool_x == pool_w):
                    pos = s.row_pos + step_pos
                    m.d.sync += [s.pool_x.eq(0), s.row_pos.eq(pos), s.row.eq(pos)]
                with m.Else():
                    m.d.sync += [s.pool_x.eq(s.pool_x + 1), s.row.eq(s.row_pos)]
