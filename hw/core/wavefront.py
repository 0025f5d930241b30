"""The wavefront (``ChipConfig.wavefront``; ``docs/chip.md``, "Wavefront"): the parts of the
:class:`hw.core.sequencer.Sequencer` built only for such a chip, an update-by-touch chip whose layers run as a
dataflow.

* **The event engine's decisions.** Not in an EVENT phase, the event engine is in a *decision cycle* at layer
  ``event_layer`` (``event_waiting`` high): it runs the layer's EVENT phase from the next cycle when the layer has
  input and is not busy, waits there when it has input and is busy, and otherwise moves on to the next layer — or
  *parks* at layer 0 when no layer has input. Layer 0 has input when the host's next token is there
  (``events_in.valid``); a later layer when ``inputs[l]`` (steps of layer ``l − 1`` finished and not yet taken,
  0..2) is not 0. A layer is *busy* while its UPDATE waits (``pending``) or runs, the last layer also while the
  output sender sends.
* **The update engine's queue.** A layer whose EVENT phase ends is handed to the update engine at once when that is
  free (or frees in that cycle) and nothing waits, else it waits in ``pending``; the update engine takes the waiting
  layers in the order they were handed over — the first pending layer after its own, cyclically (the event engine
  hands layers over in turn and never hands one over twice before its UPDATE; with a host that holds its input back
  layer 0 can be handed over out of that cyclic order, and is then taken early: only the cycles differ). The list an UPDATE writes
  (``write_list``: the layer's list of its step's parity, the output list for the last layer) is restarted in the
  cycle after it is taken.
* **Step counters.** ``steps[l]``, a layer's UPDATEs since the clear, is the layer's ``now`` for the stamps (the
  update engine's layer's, ``s.now``); an UPDATE's last cycle counts its step, raises the next layer's ``inputs``
  (the last layer's: starts the output sender).
* **The output sender** streams the output list and then the step's end token to ``events_out``, one token per
  cycle the host takes.
* **Counting.** A cycle is counted in ``cycles`` when anything works (an EVENT phase's cycle other than one waiting
  for the host's token, a decision cycle other than parking, an UPDATE running or waiting, the sender sending);
  otherwise in ``stall_cycles``.
"""
from __future__ import annotations

import functools
import operator

from amaranth.hdl import Array, C, Mux, Signal


class Wavefront:
    """The wavefront methods of :class:`hw.core.sequencer.Sequencer` (``s``: its shared state)."""

    def _wavefront_state(self, m, s):
        cfg, L = self.cfg, self.cfg.num_layers
        n_lists = 2 * (L - 1) + 1
        s.steps = [Signal(range(cfg.max_steps + 1), name=f"steps_l{l}") for l in range(L)]
        s.inputs = [None] + [Signal(range(3), name=f"inputs_l{l}") for l in range(1, L)]
        s.pending = Signal(L, name="update_pending")
        s.sending = Signal(name="output_sending")
        s.restart_write = Signal(name="list_restart")            # the list the new UPDATE writes, restarted
        s.write_list = Signal(range(n_lists), name="write_list")
        s.read_list = Signal(range(n_lists), name="read_list")
        # the update engine's layer's step (its `now`), and the flush's (every layer's is the same then)
        m.d.comb += s.now.eq(Array(s.steps)[self.layer])
        s.has_input = Array([self.events_in.valid] + [v != 0 for v in s.inputs[1:]])[s.event_layer]
        s.any_input = functools.reduce(operator.or_, [self.events_in.valid] + [v != 0 for v in s.inputs[1:]])
        s.layer_busy = Array(s.pending[l] | (s.updating & (self.layer == l)) | (s.sending if l == L - 1 else 0)
                             for l in range(L))[s.event_layer]
        s.parked = s.event_waiting & (s.event_layer == 0) & ~s.any_input
        s.idle = s.parked & ~s.updating & ~s.pending.any() & ~s.sending
        s.run = Signal(name="decide_run")                        # a decision cycle starts the layer's EVENT phase
        s.hand_over = Signal(name="hand_over")                   # an end-of-events cycle
        s.update_ends = Signal(name="update_ends")               # an UPDATE's last cycle
        s.work = Signal(name="work")
        m.d.comb += [self.events.write_list.eq(s.write_list), self.events.read_list.eq(s.read_list)]

    def _wavefront_decide(self, m, s):
        """A decision cycle (``event_waiting``) at ``event_layer``."""
        L, nxt = self.cfg.num_layers, s.nxt
        m.d.comb += s.run.eq(s.has_input & ~s.layer_busy)
        with m.If(s.run):
            m.d.comb += nxt.event_waiting.eq(0)
            # a later layer reads the previous layer's list of its step's parity
            with m.Switch(s.event_layer):
                for l in range(1, L):
                    with m.Case(l):
                        m.d.sync += s.read_list.eq(2 * (l - 1) + s.steps[l][0])
        with m.Elif(~s.has_input & ((s.event_layer != 0) | s.any_input)):
            m.d.comb += nxt.event_layer.eq(Mux(s.event_layer == L - 1, 0, s.event_layer + 1))

    def _wavefront_hand_over(self, m, s):
        """The end-of-events cycle of ``event_layer``: hand it to the update engine (or queue it); the engine's next
        decision is at the next layer."""
        L, nxt = self.cfg.num_layers, s.nxt
        m.d.comb += [s.hand_over.eq(1), nxt.event_waiting.eq(1),
                     nxt.event_layer.eq(Mux(s.event_layer == L - 1, 0, s.event_layer + 1))]

    def _wavefront_update_start(self, m, s):
        """Start an UPDATE in the next cycle: the layer handed over now when the update engine is free (or frees
        now) and nothing waits, else the first waiting layer after the update engine's own when it frees now."""
        cfg, L = self.cfg, self.cfg.num_layers
        free = ~s.updating | s.update_ends
        waiting = s.pending.any()
        direct = s.hand_over & free & ~waiting
        pop = s.update_ends & waiting
        with m.If(s.hand_over & ~direct):
            m.d.sync += s.pending.bit_select(s.event_layer, 1).eq(1)
        # the first pending layer after the update engine's, cyclically
        oldest = Signal(range(L), name="pending_oldest")
        with m.Switch(self.layer):
            for a in range(L):
                with m.Case(a):
                    order = [(a + k) % L for k in range(1, L + 1)]
                    chosen = C(order[-1], range(L))
                    for b in reversed(order[:-1]):
                        chosen = Mux(s.pending[b], b, chosen)
                    m.d.comb += oldest.eq(chosen)
        start = Signal(name="update_start")
        layer = Signal(range(L), name="update_next_layer")
        m.d.comb += [start.eq(direct | pop), layer.eq(Mux(pop, oldest, s.event_layer))]
        with m.If(pop):
            m.d.sync += s.pending.bit_select(oldest, 1).eq(0)
        with m.If(start):
            c = self._layer_constants(layer)
            self._take_update(m, s, layer, c)
            m.d.sync += s.restart_write.eq(1)
            with m.Switch(layer):
                for l in range(L):
                    with m.Case(l):
                        m.d.sync += s.write_list.eq(2 * (L - 1) if l == L - 1 else 2 * l + s.steps[l][0])
        with m.Else():
            m.d.sync += s.restart_write.eq(0)
        m.d.comb += self.events.restart.eq(s.restart_write)

    def _wavefront_update_end(self, m, s):
        """An UPDATE's last cycle: its layer's step is counted, the next layer has that input (the last layer's
        spikes go out: the sender starts)."""
        L = self.cfg.num_layers
        m.d.sync += s.updating.eq(0)
        with m.Switch(self.layer):
            for l in range(L):
                with m.Case(l):
                    m.d.sync += s.steps[l].eq(s.steps[l] + 1)
                    if l == L - 1:
                        m.d.sync += s.sending.eq(1)

    def _wavefront_inputs(self, m, s):
        """``inputs[l]``: raised in layer ``l − 1``'s UPDATE's last cycle, lowered as layer ``l`` starts the step."""
        for l in range(1, self.cfg.num_layers):
            up = s.update_ends & (self.layer == l - 1)
            down = s.run & (s.event_layer == l)
            with m.If(up & ~down):
                m.d.sync += s.inputs[l].eq(s.inputs[l] + 1)
            with m.Elif(down & ~up):
                m.d.sync += s.inputs[l].eq(s.inputs[l] - 1)

    def _wavefront_sender(self, m, s):
        """The output sender: the output list's events, then the step's end token, one per cycle the host takes."""
        events, out = self.events, self.events_out
        with m.If(s.sending):
            m.d.comb += [out.valid.eq(1), out.payload.index.eq(Mux(events.output_empty, 0, events.output_head)),
                         out.payload.end.eq(events.output_empty)]
            with m.If(out.ready):
                with m.If(events.output_empty):
                    m.d.sync += s.sending.eq(0)
                with m.Else():
                    m.d.comb += events.output_advance.eq(1)

    def _wavefront_clear(self, m, s):
        m.d.comb += s.nxt.event_waiting.eq(1)
        m.d.sync += [s.pending.eq(0), s.sending.eq(0), s.restart_write.eq(0)]
        m.d.sync += [v.eq(0) for v in s.steps] + [v.eq(0) for v in s.inputs[1:]]

    def _wavefront_work(self, m, s, step):
        """This cycle is counted in ``cycles`` (else in ``stall_cycles``): see the module doc."""
        host_wait = s.stall & (s.event_layer == 0)      # layer 0's events wait for the host's next token
        m.d.comb += s.work.eq(step & ((~s.event_waiting & ~host_wait) | (s.event_waiting & ~s.parked) | s.updating |
                                      s.pending.any() | (s.sending & self.events_out.ready)))
