"""sim.event_bound: the touched words of an event against the config's closed form, the order of the schedules'
cycles (bound <= lazy, lazy less its deeper pipeline's fill <= live <= today's, overlap off), and the claim docs/chip.md makes for the live-word
schedule: skipping the words that are neither touched nor unsettled leaves every membrane and spike as they are
(checked with a naive per-word loop of the arithmetic, independent of the fast model's recurrence)."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hw.config import TOUCHED_UPDATE_LATENCY, UPDATE_LATENCY, ChipConfig
from sim.event_bound import (elapsed_leak_table, lazy_run, overlap_ceilings, pipelined_ceiling, touched_schedule,
                             wavefront_ceiling,
                             touched_words)
from sim.model import FastModel
from tests.strategies import configs, conv_configs, programmes


@given(data=st.data())
@settings(max_examples=25, deadline=None)
def test_one_event_touches_its_receptive_positions(data):
    cfg = data.draw(conv_configs(max_hw=7, max_channels=3))
    n = cfg.layer_sizes[0]
    i = data.draw(st.integers(0, n - 1))
    x = np.zeros((1, 1, n), bool)
    x[0, 0, i] = True
    t = touched_words(cfg, 0, x)
    assert t.sum() == cfg.receptive_counts(0)[i] * cfg.groups(0)
    assert not touched_words(cfg, 0, np.zeros_like(x)).any()


def test_fc_event_touches_every_word():
    cfg = ChipConfig(layer_sizes=(5, 11, 3), lanes=4)
    x = np.zeros((2, 3, 5), bool)
    x[0, 1, 2] = x[1, 2, 0] = True
    t = touched_words(cfg, 0, x)
    assert t.shape == (2, 3, 3)
    assert t[0, 1].all() and t[1, 2].all() and t.sum() == 6


@given(data=st.data())
@settings(max_examples=20, deadline=None)
def test_schedules_order(data):
    cfg = data.draw(st.one_of(configs(overlap=False), conv_configs(max_hw=6, max_channels=4, overlap=False)))
    weights, offsets, spikes = data.draw(programmes(cfg, batch=2, steps=4))
    p = touched_schedule(FastModel(cfg, weights, offsets), spikes)
    assert not p.overlap_ignored
    assert (p.bound <= p.lazy_cycles + 1e-9).all()
    # the touched chip's UPDATE pipeline is deeper: its extra fill per layer and step aside, it takes no more
    extra = (TOUCHED_UPDATE_LATENCY - UPDATE_LATENCY) * spikes.shape[1] * cfg.num_layers
    assert (p.lazy_cycles - extra <= p.touched_cycles).all() and (p.touched_cycles <= p.cycles).all()
    assert (p.touched <= p.lazy).all() and (p.lazy <= p.live).all() and (p.live <= p.words).all()


@given(data=st.data())
@settings(max_examples=20, deadline=None)
def test_overlap_ceilings_are_lower_bounds(data):
    """lazy_run's per-step phase cycles add up to its cycles; the two overlap ceilings are below them (engines busy
    <= next-layer overlap <= sequential), and below the cycles of the overlap the chip has built (an "all" chip with
    overlap on: UPDATE beside the next layer's events), which the next-layer ceiling generalises."""
    cfg = data.draw(st.one_of(configs(overlap=False), conv_configs(max_hw=6, max_channels=4, overlap=False)))
    weights, offsets, spikes = data.draw(programmes(cfg, batch=2, steps=4))
    for visit_all in (False, True):
        lz = lazy_run(FastModel(cfg, weights, offsets), spikes, visit_all=visit_all)
        total = lz.event_cycles.sum(axis=(1, 2)) + lz.update_cycles.sum(axis=(1, 2)) + lz.output_cycles.sum(axis=1)
        np.testing.assert_array_equal(total, lz.cycles)
        nxt, busy = overlap_ceilings(lz)
        assert (busy <= nxt).all() and (nxt <= lz.cycles).all()
        # in-order layer pipelining: no better than the update engine's own work, no worse than next-layer overlap
        piped = pipelined_ceiling(lz)
        assert (busy <= piped).all() and (piped <= nxt).all()
        # the wavefront: no better than the engines' own work; in one membrane memory no two phases meet, so it is
        # the sequential schedule; with one layer there is nothing to interleave
        wave = wavefront_ceiling(lz)
        assert (busy <= wave).all() and (busy <= wavefront_ceiling(lz, memories=2)).all()
        np.testing.assert_array_equal(wavefront_ceiling(lz, memories=1), lz.cycles)
        if cfg.num_layers == 1:
            np.testing.assert_array_equal(wave, lz.cycles)
    overlapped = FastModel(cfg.replace(overlap=True), weights, offsets).run(spikes, record_state=False)
    assert (nxt <= overlapped.cycles).all()


def _skipping_run(cfg: ChipConfig, weights, offsets, x):
    """fc chips: the docs/chip.md arithmetic per neuron, visiting only live words; returns (spikes, states)."""
    B, T, _ = x.shape
    f = cfg.beta_frac_bits
    lo, hi = cfg.membrane_min, cfg.membrane_max
    spikes, states = [], []
    inp = x.astype(np.int64)
    for l in range(cfg.num_layers):
        n, lanes = cfg.fan_out(l), cfg.lanes
        thr = cfg.threshold[l] + np.asarray(offsets[l], np.int64).reshape(-1)
        u = np.zeros((B, n), np.int64)
        unsettled = np.zeros((B, cfg.groups(l)), bool)
        s_out, u_out = np.zeros((B, T, n), bool), np.zeros((B, T, n), np.int64)
        for t in range(T):
            for b in range(B):
                touched = inp[b, t].any()
                for g in range(cfg.groups(l)):
                    if not (touched or unsettled[b, g]):
                        continue
                    changed = False
                    for j in range(g * lanes, min(n, (g + 1) * lanes)):
                        word = u[b, j] + int(inp[b, t] @ np.asarray(weights[l], np.int64)[:, j])
                        v = min(max(word, lo), hi)
                        s = v > thr[j]
                        lv = (v * cfg.beta_int[l] + (1 << (f - 1))) >> f
                        new = (0 if cfg.reset == "zero" else min(max(lv - thr[j], lo), hi)) if s else lv
                        changed |= bool(s) or new != word
                        u[b, j], s_out[b, t, j] = new, s
                    unsettled[b, g] = changed
            u_out[:, t] = u
        spikes.append(s_out)
        states.append(u_out)
        inp = s_out.astype(np.int64)
    return spikes, states


@given(data=st.data())
@settings(max_examples=25, deadline=None)
def test_live_word_schedule_is_bit_exact(data):
    cfg = data.draw(configs(max_size=9, max_layers=2, overlap=False))
    weights, offsets, spikes = data.draw(programmes(cfg, batch=2, steps=5))
    r = FastModel(cfg, weights, offsets).run(spikes)
    s, u = _skipping_run(cfg, weights, cfg.check_offsets(offsets), spikes)
    for l in range(cfg.num_layers):
        np.testing.assert_array_equal(s[l], r.spikes[l])
        np.testing.assert_array_equal(u[l], r.state[l])


@given(data=st.data())
@settings(max_examples=20, deadline=None)
def test_lazy_model_visiting_every_word_is_todays_chip(data):
    """lazy_run's arithmetic and cycle count, with every word visited every step, are the fast model's."""
    cfg = data.draw(st.one_of(configs(overlap=False), conv_configs(max_hw=6, max_channels=4, overlap=False)))
    weights, offsets, spikes = data.draw(programmes(cfg, batch=2, steps=4))
    model = FastModel(cfg, weights, offsets)
    r = model.run(spikes)
    lz = lazy_run(model, spikes, visit_all=True)
    for l in range(cfg.num_layers):
        np.testing.assert_array_equal(lz.spikes[l], r.spikes[l])
        np.testing.assert_array_equal(lz.state[l], r.state[l])
    np.testing.assert_array_equal(lz.cycles, r.cycles)


def test_elapsed_leak_is_applied_once_at_the_next_touch():
    """One neuron, beta 0.75 (f = 2), threshold out of reach: +40 at step 0, no input in steps 1-3, a touch
    through a zero weight at step 4. The word is visited at steps 0 and 4 only; the read value between them is
    the stored one; at step 4 the 3 idle steps' leak is applied at once (L_3), then the step's own (L_1)."""
    cfg = ChipConfig(layer_sizes=(2, 1), lanes=1, beta=0.75, beta_frac_bits=2, threshold=100, weight_bits=8)
    w = [np.array([[40], [0]])]
    x = np.zeros((1, 6, 2), bool)
    x[0, 0, 0] = True
    x[0, 4, 1] = True
    lz = lazy_run(FastModel(cfg, w), x)
    # B_k = round(0.75^k * 4): 4, 3, 2.25 -> 2, 1.69 -> 2, 1.27 -> 1, ..., 0.40 -> 0 at k = 8
    assert list(elapsed_leak_table(3, 2, 8)) == [4, 3, 2, 2, 1, 1, 1, 1, 0]
    # step 0: (40*3 + 2) >> 2 = 30; step 4: L_3(30) = (30*2 + 2) >> 2 = 15, then L_1(15) = (15*3 + 2) >> 2 = 11
    assert list(lz.state[0][0, :, 0]) == [30, 30, 30, 30, 11, 11]
    assert lz.visited[0] == 2 and not lz.spikes[0].any()
    # today's schedule leaks every step: 30, 23, 17, 13, 10, 8
    assert list(FastModel(cfg, w).run(x).state[0][0, :, 0]) == [30, 23, 17, 13, 10, 8]


@given(data=st.data())
@settings(max_examples=25, deadline=None)
def test_lazy_model_matches_the_independent_reference(data):
    """lazy_run (vectorised) against tests/reference.py's update="touched" (per neuron, per event, per cycle):
    spikes, stored membranes and cycles, on random fc and conv/pool chips."""
    from tests.reference import reference_run
    cfg = data.draw(st.one_of(configs(overlap=False), conv_configs(max_hw=6, max_channels=4, overlap=False)))
    weights, offsets, spikes = data.draw(programmes(cfg, batch=2, steps=4))
    lz = lazy_run(FastModel(cfg, weights, offsets), spikes)
    offs = cfg.check_offsets(offsets)
    for b in range(spikes.shape[0]):
        spk, state, cycles = reference_run(cfg, weights, offs, spikes[b], update="touched")
        assert cycles == lz.cycles[b]
        for t in range(spikes.shape[1]):
            for l in range(cfg.num_layers):
                assert list(lz.spikes[l][b, t]) == spk[t][l]
                assert list(lz.state[l][b, t]) == state[t][l]


def test_lazy_run_and_touched_schedule_refuse_a_biased_chip():
    """The lazy-leak schedule adds no bias (update = "touched" is not built with one, docs/chip.md "Bias"):
    ``lazy_run(visit_all=True)`` claimed the fast model's spikes and cycles but silently dropped the bias; both
    projections refuse a biased chip in one line instead of answering for another chip."""
    import pytest

    from hw.config import ConfigError
    cfg = ChipConfig(layer_sizes=(6, 5, 3), lanes=2, beta=1.0, threshold=20, reset="zero", overlap=False,
                     bias=((7, 0, 0, -3, 2), (5, 0, 1)))
    rng = np.random.default_rng(0)
    m = FastModel(cfg, [rng.integers(-10, 10, cfg.weight_shape(l)) for l in range(2)])
    x = rng.random((2, 8, 6)) < 0.05
    for f in (lambda: lazy_run(m, x), lambda: lazy_run(m, x, visit_all=True), lambda: touched_schedule(m, x)):
        with pytest.raises(ConfigError, match=r"^bias: .*update-by-touch") as e:
            f()
        assert "\n" not in str(e.value)


def test_pipelined_ceiling_by_hand():
    """Two layers, two steps (EVENT 4 / 2, UPDATE 3 / 6, output 1 cycles per step): sequentially 2 x 16 = 32 cycles,
    next-layer overlap 2 x 14 = 28; in-order pipelining starts step 1's first layer at cycle 7, while layer 1's
    UPDATE of step 0 runs (cycles 7-13), and ends at 24."""
    from types import SimpleNamespace
    E = np.array([[[4, 4], [2, 2]]])
    U = np.array([[[3, 3], [6, 6]]])
    O = np.array([[1, 1]])
    run = SimpleNamespace(event_cycles=E, update_cycles=U, output_cycles=O)
    assert [c.tolist() for c in overlap_ceilings(run)] == [[28], [20]]       # engines busy: 2 x (3 + 6 + 1)
    assert pipelined_ceiling(run).tolist() == [24]


def test_wavefront_ceiling_by_hand():
    """The phases of test_pipelined_ceiling_by_hand in a wavefront (layer 1 a step behind layer 0): slot 1 takes
    layer 0's step 1 (cycles 7-11, after its UPDATE of step 0), then layer 1's step 0 (11-13), whose UPDATE and
    output (14-21) hold layer 1's step 1 (events 21-23, UPDATE and output 23-30): 30 cycles, more than in-order
    pipelining's 24 on two layers. In one membrane memory the engines never overlap: the sequential 32."""
    from types import SimpleNamespace
    run = SimpleNamespace(event_cycles=np.array([[[4, 4], [2, 2]]]), update_cycles=np.array([[[3, 3], [6, 6]]]),
                          output_cycles=np.array([[1, 1]]))
    assert wavefront_ceiling(run).tolist() == [30]
    assert wavefront_ceiling(run, memories=1).tolist() == [32]
