"""The hazards of the pipelined datapath (docs/chip.md, "Pipeline"), RTL in Amaranth's simulator against
the fast model: read-after-write on the membrane memory in the EVENT phase (the same word read again 1 or
2 cycles after it was read), the UPDATE pipeline holding while a group's spikes leave (groups with 0, 1
and many spikes back to back, all-spiking groups, partial last groups), a layer's last group followed at
once by the next layer's events, saturating values through every stage, a clear request in every
cycle of a step (mid-pipeline); and the overlap's (docs/chip.md, "Overlap"): the next layer's events during
the UPDATE walk, two engines on two membrane banks, a clear request while both run."""
import numpy as np
import pytest

from hw.config import ChipConfig
from hw.core import LifCore
from tests.compare import assert_same, clear_mid_step_testbench, simulate_against_model
from tests.hw.test_core_amaranth import run_both


@pytest.mark.parametrize("lanes,fan_out", [(4, 3), (4, 4), (2, 3), (2, 4), (1, 3), (3, 7)])
def test_same_word_read_back_to_back(lanes, fan_out):
    """G = 1: every event reads the word the previous event writes back one cycle later (forwarded);
    G = 2: two cycles later (the memory's transparent read); G = 3: after the write."""
    cfg = ChipConfig(layer_sizes=(9, fan_out, 4), lanes=lanes, threshold=(90, 40), beta=(0.95, 0.5))
    rng = np.random.default_rng(lanes * 10 + fan_out)
    w = [rng.integers(-60, 128, (9, fan_out)), rng.integers(-30, 100, (fan_out, 4))]
    x = rng.random((2, 6, 9)) < 0.7
    x[0, 0] = True                                   # every event of a step back to back
    assert_same(*run_both(cfg, w, None, x))


@pytest.mark.parametrize("reset", ["subtract", "zero"])
def test_groups_with_no_one_and_many_spikes_back_to_back(reset):
    """Per group 0, 1, all or some spikes, so the pipeline holds for a group while the next groups are in
    flight; partial last groups; a layer's last group followed at once by the next layer's events."""
    cfg = ChipConfig(layer_sizes=(5, 23, 13, 6), lanes=4, threshold=(30, 20, 10), reset=reset,
                     beta=(0.9, 0.7, 0.3))
    w0 = np.zeros((5, 23), int)
    w0[:, 4:8] = 40                                  # group 1: all fire
    w0[:, 9] = 40                                    # group 2: one fires
    w0[:, 12:15] = 40                                # group 3: three fire; group 0, 4: none
    w0[:, 20:23] = 40                                # group 5 (partial, 3 lanes): all fire
    rng = np.random.default_rng(1)
    w1 = rng.integers(-10, 40, (23, 13))
    w2 = rng.integers(-10, 40, (13, 6))
    x = np.ones((2, 4, 5), bool)
    x[1, 1:] = rng.random((3, 5)) < 0.5
    assert_same(*run_both(cfg, [w0, w1, w2], None, x))


@pytest.mark.parametrize("lanes", [1, 3, 5])
def test_all_spiking_and_saturating_through_the_pipeline(lanes):
    """Every neuron fires every step with membranes on the rails (the pipeline holds for every group)."""
    cfg = ChipConfig(layer_sizes=(7, 11, 9), lanes=lanes, weight_bits=6, membrane_bits=6, threshold=(1, 31),
                     threshold_offset_bits=4, beta=(0.99, 0.5))
    w = [np.full((7, 11), 31), np.array([[31, -32] * 4 + [31]] * 11)]
    offsets = [np.zeros(11, int), np.array([-7, 0, -5, -3, -8, 0, 0, -1, -8])]
    fast, rtl = run_both(cfg, w, offsets, np.ones((2, 4, 7), bool))
    assert_same(fast, rtl)
    assert fast.spikes[0].all() and fast.state[1].max() > 0 and fast.state[1].min() < 0


@pytest.mark.parametrize("interrupt_after", range(0, 44, 1))
def test_clear_in_every_cycle_of_a_step(interrupt_after):
    """A clear request in any cycle (EVENT with accumulations in flight, UPDATE with the pipeline full or
    holding, OUTPUT): the next samples run as from power-up."""
    cfg = ChipConfig(layer_sizes=(4, 5, 6), lanes=2, threshold=(3, 2))
    rng = np.random.default_rng(17)
    w = [rng.integers(0, 40, (4, 5)), rng.integers(0, 40, (5, 6))]
    x = rng.random((2, 3, 4)) < 0.6
    dut, samples = LifCore(cfg), []

    tb = clear_mid_step_testbench(cfg, dut, w, x, [0, 1, 1, 2, 3, None], interrupt_after, samples)
    simulate_against_model(cfg, dut, tb, w, x, samples)


def test_weight_memory_in_several_banks():
    """More weight words than one bank (WeightMemory.BANK_DEPTH): rows on both sides of a bank boundary,
    consecutive events in different banks."""
    from hw.core import WeightMemory
    cfg = ChipConfig(layer_sizes=(45, 90, 3), lanes=8, threshold=(200, 60))
    assert cfg.weight_depth > WeightMemory.BANK_DEPTH
    rng = np.random.default_rng(23)
    w = [rng.integers(-40, 128, (45, 90)), rng.integers(-20, 100, (90, 3))]
    x = rng.random((1, 3, 45)) < 0.5
    x[0, 0, 38:45] = True                            # rows 39.. start past word 512
    assert_same(*run_both(cfg, w, None, x))


def _overlap_saves(cfg, w, x):
    """RTL == model with the overlap, and the overlap saved cycles against the sequential schedule."""
    from sim.chip import make_chip
    fast, rtl = run_both(cfg, w, None, x)
    assert_same(fast, rtl)
    off = make_chip(cfg.replace(overlap=False), "fast")
    off.load(w)
    seq = off.run(x)
    assert np.array_equal(seq.output, fast.output) and np.all(fast.cycles < seq.cycles)
    return fast


@pytest.mark.parametrize("lanes,sizes", [(4, (6, 8, 4)), (2, (6, 9, 40)), (1, (5, 4, 3))])
def test_overlap_next_layer_events_during_the_update(lanes, sizes):
    """docs/chip.md "Overlap": the next layer's events start the cycle after their spike is appended — hidden
    in the UPDATE walk (few groups next), outlasting it (40 neurons next at 2 lanes: 20 cycles per event),
    one lane (every spike its own group); the event list read in the cycle after its append."""
    cfg = ChipConfig(layer_sizes=sizes, lanes=lanes, threshold=(20, 30))
    rng = np.random.default_rng(lanes + sizes[2])
    w = [rng.integers(0, 60, sizes[:2]), rng.integers(-20, 60, sizes[1:])]
    x = rng.random((2, 5, sizes[0])) < 0.6
    _overlap_saves(cfg, w, x)


def test_overlap_banks_and_forwarding_across_four_layers():
    """Four fc layers (banks 0, 1, 0, 1): an update engine and an event engine on different banks in the same
    cycles, a bank handed from the event engine to the update engine right after its last accumulation
    (forwarded), and every layer's spikes streaming into the next."""
    cfg = ChipConfig(layer_sizes=(5, 4, 3, 4, 2), lanes=4, threshold=(10, 10, 10, 10))
    assert [cfg.state_bank(l) for l in range(4)] == [0, 1, 0, 1] and all(cfg.overlapped(l) for l in range(3))
    rng = np.random.default_rng(5)
    w = [rng.integers(5, 60, (5, 4)), rng.integers(5, 60, (4, 3)), rng.integers(5, 60, (3, 4)),
         rng.integers(-10, 60, (4, 2))]
    x = np.ones((2, 4, 5), bool)
    x[1, 2:] = rng.random((2, 5)) < 0.4
    fast = _overlap_saves(cfg, w, x)
    assert all(s.any() for s in fast.spikes)


@pytest.mark.parametrize("interrupt_after", range(0, 64, 3))
def test_clear_in_every_cycle_of_an_overlapped_step(interrupt_after):
    """A clear request while an update engine and an event engine run on both banks: the next samples run as
    from power-up (both banks zeroed, the event list emptied)."""
    cfg = ChipConfig(layer_sizes=(4, 6, 5, 3), lanes=2, threshold=(3, 2, 2))
    rng = np.random.default_rng(19)
    w = [rng.integers(0, 40, (4, 6)), rng.integers(0, 40, (6, 5)), rng.integers(0, 40, (5, 3))]
    x = rng.random((2, 3, 4)) < 0.6
    dut, samples = LifCore(cfg), []
    tb = clear_mid_step_testbench(cfg, dut, w, x, [0, 1, 1, 2, 3, None], interrupt_after, samples)
    simulate_against_model(cfg, dut, tb, w, x, samples)
