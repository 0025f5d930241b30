"""One interface for every chip backend: program it, run a batch of spike trains, get a :class:`ChipResult`.

``make_chip(cfg, backend)`` with ``backend`` one of :data:`BACKENDS`:

* ``"fast"``      — :class:`sim.model.FastModel` (numpy, batched; the scoreboard)
* ``"async"``     — :class:`sim.async_model.AsyncModel`: the same datapath without a step barrier, events
  processed in arrival order (``order=``, ``seed=``); a model-only chip mode like SynSense Speck's
* ``"amaranth"``  — the RTL in Amaranth's simulator
* ``"icarus"`` / ``"verilator"`` — the generated Verilog under cocotb
* ``"board"``     — a real board over its UART link (``port=``, ``baud=``), see :mod:`sim.board_link`

Trainers only ever call ``load`` and ``run``, so any backend can be the chip in the loop.
"""
from __future__ import annotations

import math
import os
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Sequence

import numpy as np

from hw.config import ChipConfig, ConfigError
from sim.model import ChipResult, FastModel, input_dtype

BACKENDS = ("fast", "async", "amaranth", "icarus", "verilator", "board")


def memory_estimate(cfg: ChipConfig, batch: int, steps: int, record_state: bool = False) -> int:
    """Bytes a programmed fast chip needs to run ``batch`` samples of ``steps`` steps (an upper estimate):
    the weights (int64 plus a float working copy), the per-step working arrays, the recorded spikes and,
    if asked, the recorded membrane states. A conv or pooled layer keeps its event counts
    (:func:`sim.model.input_dtype`: int8, or int16 behind stacked pools; one per pooled input address and step)
    and a conv layer also a zero-padded copy and its im2col matrix, in chunks of at most
    ``FastModel.IM2COL_BYTES`` counts; int16 counts go through the float product, which copies its input (as
    float64 at most). Each layer keeps its own such arrays (the model's scratch memory is per layer)."""
    synapses = sum(math.prod(cfg.weight_shape(l)) for l in range(cfg.num_layers))
    neurons = sum(cfg.layer_sizes)
    per_step = batch * neurons * 8 * 6                      # accumulators, membranes, spikes, temporaries
    for l in range(cfg.num_layers):
        dtype = input_dtype(cfg, l)
        if dtype == np.bool_:
            continue
        size = np.dtype(dtype).itemsize
        C, H, W = cfg.in_shape(l)
        (ph, pw), conv = cfg.padding(l), cfg.layer_kind(l) == "conv"
        pooled = batch * steps * C * H * W
        padded = batch * steps * C * (H + 2 * ph) * (W + 2 * pw) if conv else 0
        per_step += (pooled + padded) * size
        if conv:                                    # im2col: as FastModel._image_sums chunks it
            per_sample = math.prod(cfg.out_shape(l)[1:]) * C * math.prod(cfg.kernel(l))
            im2col = min(batch * steps, max(1, FastModel.IM2COL_BYTES // per_sample)) * per_sample
            per_step += im2col * size
        product_in = im2col if conv else pooled
        if dtype == np.int16:                       # the float product's copy of its input
            per_step += product_in * 8
    recorded = batch * steps * (neurons + cfg.layer_sizes[0])  # bool spikes in and out
    if record_state:
        recorded += batch * steps * neurons * 8
    return synapses * 16 + per_step + recorded


def available_memory() -> int:
    """Bytes of memory available now (``MemAvailable``), or physical memory where that is unknown."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")


def check_memory(cfg: ChipConfig, batch: int, steps: int, record_state: bool = False) -> None:
    """Refuse, with the estimate, a run that would not fit in the memory available (before any work)."""
    need = memory_estimate(cfg, batch, steps, record_state)
    if need < 2**28:              # 256 MiB: not worth asking the system (this runs on every load and run)
        return
    have = available_memory()
    if need > 0.8 * have:
        raise ConfigError(f"layer_sizes={cfg.layer_sizes} with batch {batch} x {steps} steps needs about "
                          f"{need / 2**30:.1f} GiB; {have / 2**30:.1f} GiB are available — use fewer or smaller "
                          "layers, or a smaller batch")


class Chip(ABC):
    """A programmed chip. ``load`` may change beta/threshold/reset (same structure), weights and offsets."""

    def __init__(self, cfg: ChipConfig):
        self.cfg = cfg
        self.weights: list[np.ndarray] | None = None
        self.offsets: list[np.ndarray] | None = None

    def load(self, weights: Sequence[np.ndarray], threshold_offsets: Sequence[np.ndarray] | None = None,
             cfg: ChipConfig | None = None) -> None:
        """Validate and store weights (int, ``(N_l, N_{l+1})``), offsets and, optionally, new registers."""
        cfg = self.cfg if cfg is None else cfg
        if cfg.structure() != self.cfg.structure():
            raise ConfigError("cfg: a loaded config must keep the chip's structure (sizes, widths, lanes); "
                              "make a new chip for a new structure")
        check_memory(cfg, 1, 1)
        weights, offsets = cfg.check_weights(weights), cfg.check_offsets(threshold_offsets)
        # all checks passed: only now replace the programme (a failed load leaves the chip as it was)
        self.cfg, self.weights, self.offsets = cfg, weights, offsets
        self._loaded()

    def _loaded(self) -> None:
        """Hook: the backend's copy of the programme changed."""

    def run(self, spikes: np.ndarray, record_state: bool = False) -> ChipResult:
        """Run ``spikes`` (``(B, T, N0)``, 0/1) from a cleared state, one sample after another."""
        if self.weights is None:
            raise RuntimeError("run: load() weights into the chip first")
        spikes = self.cfg.check_spikes(spikes)
        check_memory(self.cfg, spikes.shape[0], spikes.shape[1], record_state)
        return self._run(spikes, record_state)

    @abstractmethod
    def _run(self, spikes: np.ndarray, record_state: bool) -> ChipResult: ...


class FastChip(Chip):
    """The vectorised model as a chip. Besides the programme, ``load`` takes the model-only
    non-idealities of :class:`sim.model.FastModel`: per-neuron ``leak_multipliers`` (``beta_int`` per
    layer) and a membrane ``distortion`` (see :mod:`sim.faults`)."""

    _perturbation: dict = {}        # none until a load names them (replaced, never mutated)

    def load(self, weights, threshold_offsets=None, cfg=None, leak_multipliers=None, distortion=None) -> None:
        """:meth:`Chip.load`, plus the model-only perturbations :mod:`sim.faults` uses: per-neuron leak
        multipliers (``beta_int`` per layer) and a membrane ``distortion`` function."""
        self._perturbation = {"beta_int": leak_multipliers, "distortion": distortion}
        super().load(weights, threshold_offsets, cfg)

    def _loaded(self) -> None:
        self._model = FastModel(self.cfg, self.weights, self.offsets, **self._perturbation)

    def _run(self, spikes, record_state):
        return self._model.run(spikes, record_state=record_state)


class AsyncChip(FastChip):
    """The asynchronous event-order mode (:mod:`sim.async_model`) as a chip; ``load`` takes the same
    leak multipliers as :class:`FastChip` (the membrane distortion is refused)."""

    def __init__(self, cfg: ChipConfig, order: str = "random", seed: int = 0):
        super().__init__(cfg)
        from sim.async_model import ORDERS
        if order not in ORDERS:
            raise ConfigError(f"order={order!r}: allowed values are {ORDERS}")
        self.order, self.seed = order, seed

    def _loaded(self) -> None:
        from sim.async_model import AsyncModel
        self._model = AsyncModel(self.cfg, self.weights, self.offsets, **self._perturbation,
                                 order=self.order, seed=self.seed)


def result_from_samples(cfg: ChipConfig, samples: list[dict]) -> ChipResult:
    """Stack per-sample driver results (:meth:`sim.driver.HostDriver.run_sample`) into a ChipResult.

    RTL backends see only the output layer's spikes; hidden layers' entries are ``None``."""
    L = cfg.num_layers
    spikes = [None] * (L - 1) + [np.stack([s["output"] for s in samples])]
    state = None
    if samples[0]["state"] is not None:
        state = [np.stack([s["state"][l] for s in samples]) for l in range(L)]
    counters = {n: np.array([s["counters"][n] for s in samples], np.int64) for n in cfg.counter_names}
    return ChipResult(spikes=spikes, state=state, counters=counters)


def make_chip(cfg: ChipConfig, backend: str = "fast", **kwargs) -> Chip:
    """The chip ``cfg`` on ``backend`` (one of :data:`BACKENDS`), behind the one :class:`Chip` interface:
    ``load(weights, threshold_offsets, cfg=...)``, then ``run(spikes[B, T, N0]) -> ChipResult``.

    ``kwargs`` go to the backend: ``port=`` / ``baud=`` for ``"board"``, ``vcd=`` (a waveform file) for the RTL
    backends, the event ``order`` for ``"async"``. An unknown backend is a :class:`hw.config.ConfigError`.

    Examples
    --------
    >>> from hw.config import ChipConfig
    >>> from sim.sample import random_spikes, random_weights
    >>> cfg = ChipConfig(layer_sizes=(16, 8, 4), lanes=4)
    >>> chip = make_chip(cfg, "fast")
    >>> chip.load(random_weights(cfg, 0, 0.2))
    >>> r = chip.run(random_spikes(cfg, 2, 10, 0.2, 1))
    >>> r.output.shape
    (2, 10, 4)
    """
    if backend == "fast":
        return FastChip(cfg)
    if backend == "async":
        return AsyncChip(cfg, **kwargs)
    if backend in ("amaranth", "icarus", "verilator"):
        from hw.export import check_elaboration_size
        check_elaboration_size(cfg)                 # the RTL of a huge chip would take hours to elaborate
    if backend == "amaranth":
        from sim.amaranth_sim import AmaranthChip
        return AmaranthChip(cfg, **kwargs)
    if backend in ("icarus", "verilator"):
        from sim.cocotb_sim import CocotbChip
        return CocotbChip(cfg, simulator=backend, **kwargs)
    if backend == "board":
        from sim.board_link import BoardChip, SerialTransport
        port = kwargs.pop("port", None)
        if not port:
            raise ConfigError("backend='board' needs port=... (the board's serial port, e.g. /dev/ttyUSB1)")
        return BoardChip(cfg, SerialTransport(port, kwargs.pop("baud", 115200)), **kwargs)
    raise ConfigError(f"backend={backend!r}: allowed values are {BACKENDS}")
