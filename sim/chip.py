"""One interface for every chip backend: program it, run a batch of spike trains, get a :class:`ChipResult`.

``make_chip(cfg, backend)`` with ``backend`` one of :data:`BACKENDS`:

* ``"fast"``      — :class:`sim.model.FastModel` (numpy, batched; the scoreboard)
* ``"amaranth"``  — the RTL in Amaranth's simulator
* ``"icarus"`` / ``"verilator"`` — the generated Verilog under cocotb
* ``"board"``     — a real board over its UART link (``port=``, ``baud=``), see :mod:`sim.board`

Trainers only ever call ``load`` and ``run``, so any backend can be the chip in the loop.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Sequence

import numpy as np

from hw.config import ChipConfig, ConfigError
from sim.model import ChipResult, FastModel

BACKENDS = ("fast", "amaranth", "icarus", "verilator", "board")


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
        return self._run(self.cfg.check_spikes(spikes), record_state)

    @abstractmethod
    def _run(self, spikes: np.ndarray, record_state: bool) -> ChipResult: ...


class FastChip(Chip):
    """The vectorised model as a chip."""

    def _loaded(self) -> None:
        self._model = FastModel(self.cfg, self.weights, self.offsets)

    def _run(self, spikes, record_state):
        return self._model.run(spikes, record_state=record_state)


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
    if backend == "fast":
        return FastChip(cfg)
    if backend == "amaranth":
        from sim.amaranth_sim import AmaranthChip
        return AmaranthChip(cfg, **kwargs)
    if backend in ("icarus", "verilator"):
        from sim.cocotb_sim import CocotbChip
        return CocotbChip(cfg, simulator=backend, **kwargs)
    if backend == "board":
        from sim.board import BoardChip, SerialTransport
        port = kwargs.pop("port", None)
        if not port:
            raise ConfigError("backend='board' needs port=... (the board's serial port, e.g. /dev/ttyUSB1)")
        return BoardChip(cfg, SerialTransport(port, kwargs.pop("baud", 115200)), **kwargs)
    raise ConfigError(f"backend={backend!r}: allowed values are {BACKENDS}")
