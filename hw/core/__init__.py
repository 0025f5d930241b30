"""Sparsity-aware LIF accelerator core (Amaranth 0.5).

One shared datapath of ``lanes`` neuron units serves all layers in turn. Per time step, for each layer:

1. **EVENT** — each input address event ``i`` reads the ``groups(l)`` weight words of row ``i`` and adds
   them into the membrane words, one word (``lanes`` synapses) per cycle. Layer 0 takes events from the
   ``events_in`` stream (a token with ``end=1`` closes the step); later layers from the internal event
   list written by the previous layer. No event, no synaptic work. 1 cycle closes the phase.
2. **UPDATE** — a pipeline of ``cfg.update_latency`` stages (read, saturate, compare and multiply,
   round, clamp and write back) fills, then groups leave it back to back; the group's spikes are
   appended to the event list one per cycle (a group costs ``max(1, spikes)`` cycles: the pipeline holds
   while a group has more than one spike left).

The two phases are two engines: with ``cfg.overlap``, layer ``l``'s UPDATE and layer ``l + 1``'s EVENT phase
run at the same time (:meth:`hw.config.ChipConfig.overlapped`: every layer but the last): each spike's
event starts the cycle after the spike is appended (a conv layer's: through the conv event decoder), and the two layers' membranes live in different
memories (banks by layer parity). After the last layer, **OUTPUT** streams the event list to
``events_out`` and an ``end`` token (whose ``index`` is 0). ``docs/chip.md`` specifies the arithmetic and
the schedule; :mod:`sim.model` is its bit- and cycle-exact model.

:class:`LifCore` wires these components around the weight, threshold-offset and membrane memories:

* :class:`RuntimeRegisters` — beta, threshold and reset-mode registers; decodes the host write bus
  into them, into the two host-written memories and into clear requests;
* :class:`Sequencer` — the event engine and the update engine and the phase state machine (STEP, OUTPUT,
  CLEAR): walks events and groups, addresses the memories, accumulates and writes back membranes, emits
  spikes;
* :class:`NeuronLanes` — per-lane arithmetic, pipelined: accumulate, saturate, fire, leak, reset;
* :class:`WeightMemory` — the weight memory in :class:`WeightBank` s with registered read data (built from
  the target's block RAMs or SPRAM, :meth:`WeightMemory.bank_kind`);
* :class:`EventList` — the spikes of one layer in one step, written by UPDATE, read by the next EVENT
  phase or by OUTPUT;
* :class:`PerformanceCounters` — the saturating per-sample counters;
* :class:`ReadBus` — the registered host read mux over the membrane banks and the counters.

The package has one module per component (as :mod:`amaranth.lib` has ``fifo`` and ``memory``); every name is
re-exported here, so ``from hw.core import X`` works for all of them:

* :mod:`hw.core.events` — the event payload and stream signature, the packed AER fields, :class:`EventList`, and a
  wavefront chip's lists, :class:`WavefrontLists`;
* :mod:`hw.core.conv` — :class:`ConvDecoder` and its constant multiply/divide helpers;
* :mod:`hw.core.weights` — :class:`WeightMemory` and :class:`WeightBank`;
* :mod:`hw.core.lanes` — :class:`NeuronLanes`;
* :mod:`hw.core.event_engine`, :mod:`hw.core.update_engine` — the two engines (methods of the sequencer);
* :mod:`hw.core.sequencer` — :class:`Sequencer`: the phase state machine, shared state and datapath control;
* :mod:`hw.core.counters` — :class:`PerformanceCounters` and :func:`increment_layout`;
* :mod:`hw.core.host` — the bus signatures, :class:`RuntimeRegisters`, :class:`ReadBus`;
* :mod:`hw.core.top` — :class:`LifCore`;
* :mod:`hw.core.shapes` — shape helpers;
* :mod:`hw.core.touched`, :mod:`hw.core.wavefront` — the sequencer's parts built only for ``update = "touched"``
  (update by touch) and for ``wavefront = true`` (the layers as a dataflow): ``docs/chip.md``.
"""
from hw.core.conv import ConvDecoder, const_mul, divide_by_constant
from hw.core.counters import PerformanceCounters, increment_layout
from hw.core.event_engine import EventEngine
from hw.core.events import (EventList, WavefrontLists, aer_fields, event_index_bits, event_layout,
                            event_stream_signature, wavefront_lists)
from hw.core.host import ReadBus, ReadBusSignature, RuntimeRegisters, WriteBusSignature, _WordBusSignature  # noqa: F401
from hw.core.lanes import NeuronLanes
from hw.core.sequencer import Sequencer
from hw.core.shapes import _bank_addr, _lanes_of, _per_layer, _row_bits, _signals  # noqa: F401
from hw.core.top import LifCore
from hw.core.touched import TouchedUpdate
from hw.core.update_engine import UpdateEngine
from hw.core.wavefront import Wavefront
from hw.core.weights import WeightBank, WeightMemory

__all__ = [
    "ConvDecoder", "EventEngine", "EventList", "LifCore", "NeuronLanes", "PerformanceCounters", "ReadBus",
    "ReadBusSignature", "RuntimeRegisters", "Sequencer", "TouchedUpdate", "UpdateEngine", "Wavefront",
    "WavefrontLists", "WeightBank", "WeightMemory", "WriteBusSignature", "aer_fields", "const_mul",
    "divide_by_constant", "event_index_bits", "event_layout", "event_stream_signature", "increment_layout",
    "wavefront_lists",
]
