"""The fast model of an update="touched" chip (sim/lazy.py) against the executable specification
(sim.event_bound.lazy_run: spikes, membranes, cycles) and the independent per-neuron, per-event, per-cycle
reference (tests/reference.py, update="touched": every counter), on random fc and conv/pool chips."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hw.config import ChipConfig, ConfigError
from sim.event_bound import lazy_run
from sim.model import FastModel
from tests.strategies import configs, conv_configs, programmes


def touched(cfg: ChipConfig, max_steps: int = 16) -> ChipConfig:
    return cfg.replace(update="touched", max_steps=max_steps)


chips = st.one_of(configs(), conv_configs(max_hw=6, max_channels=4)).map(touched)    # overlap drawn


@given(data=st.data())
@settings(max_examples=30, deadline=None)
def test_fast_model_is_the_lazy_specification(data):
    cfg = data.draw(chips)
    weights, offsets, spikes = data.draw(programmes(cfg, batch=3, steps=6))
    model = FastModel(cfg, weights, offsets)
    r = model.run(spikes)
    lz = lazy_run(model, spikes)
    for l in range(cfg.num_layers):
        np.testing.assert_array_equal(r.spikes[l], lz.spikes[l])
        np.testing.assert_array_equal(r.state[l], lz.state[l])
    # lazy_run's cycles are the sequential schedule's (it does not model the overlap)
    sequential = r if not cfg.overlap else FastModel(cfg.replace(overlap=False), weights, offsets).run(spikes)
    np.testing.assert_array_equal(sequential.cycles, lz.cycles)
    assert (r.cycles <= sequential.cycles).all()
    without = model.run(spikes, record_state=False)
    assert without.state is None and all((a == b).all() for a, b in zip(without.spikes, r.spikes))


@given(data=st.data())
@settings(max_examples=20, deadline=None)
def test_fast_model_counters_match_the_reference(data):
    cfg = data.draw(chips)
    _assert_model_is_the_reference(cfg, *data.draw(programmes(cfg, batch=2, steps=5)))


def _assert_model_is_the_reference(cfg, weights, offsets, spikes):
    """The fast model's spikes, membranes and every counter but stall_cycles equal tests/reference.py's."""
    from tests.reference import reference_run
    r = FastModel(cfg, weights, offsets).run(spikes)
    offs = cfg.check_offsets(offsets)
    for b in range(spikes.shape[0]):
        cnt = {}
        spk, state, cycles = reference_run(cfg, weights, offs, spikes[b], counters=cnt)
        assert cycles == cnt["cycles"]
        for name in cfg.counter_names:
            if name != "stall_cycles":
                assert r.counters[name][b] == cnt[name], name
        for t in range(spikes.shape[1]):
            for l in range(cfg.num_layers):
                assert list(r.spikes[l][b, t]) == spk[t][l] and list(r.state[l][b, t]) == state[t][l]


@pytest.mark.parametrize("lanes", [8, 7])
def test_many_spikes_per_word_against_the_reference(lanes):
    """Every lane fires (flood, 8 and 7 lanes: full and partial groups, even and odd spike counts above 2): two
    spikes appended per cycle, max(1, ceil(pc / 2)) per word, in the model, the specification and the reference."""
    from tests.reference import reference_run
    from tests.strategies import flood
    cfg = ChipConfig(layer_sizes=(9, 13, 7, 3), lanes=lanes, threshold=1, overlap=False, update="touched",
                     max_steps=3)
    weights, offsets, x = flood(cfg, 1, 3)
    model = FastModel(cfg, weights, offsets)
    r = model.run(x)
    np.testing.assert_array_equal(r.cycles, lazy_run(model, x).cycles)
    cnt = {}
    reference_run(cfg, weights, cfg.check_offsets(offsets), x[0], counters=cnt)
    assert r.counters["cycles"][0] == cnt["cycles"]
    words = sum(-(-min(lanes, n - g) // 2) for n in (13, 7, 3) for g in range(0, n, lanes))   # Σ ceil(pc / 2)
    events = 9 * cfg.groups(0) + 13 * cfg.groups(1) + 7 * cfg.groups(2)
    assert cnt["cycles"] == 3 * (events + 3 * (1 + cfg.update_latency) + words + 3 + 1)


def test_per_neuron_leak_multipliers():
    """sim.faults' leak mismatch: one B_k table per neuron."""
    cfg = ChipConfig(layer_sizes=(6, 5, 3), lanes=2, threshold=20, beta=0.8, overlap=False, update="touched",
                     max_steps=12)
    rng = np.random.default_rng(1)
    w = [rng.integers(-10, 30, (6, 5)), rng.integers(-10, 30, (5, 3))]
    beta = [rng.integers(150, 255, 5), rng.integers(100, 255, 3)]
    x = rng.random((2, 12, 6)) < 0.2
    model = FastModel(cfg, w, beta_int=beta)
    r, lz = model.run(x), lazy_run(model, x)
    for l in range(2):
        np.testing.assert_array_equal(r.state[l], lz.state[l])
    assert (r.state[0] != FastModel(cfg, w).run(x).state[0]).any()


def test_touched_visits_fewer_words_than_all_on_a_quiet_conv_chip():
    conv = {"kind": "conv", "channels": 4, "kernel": 3, "padding": 1}
    cfg = ChipConfig(input_shape=(1, 8, 8), layers=(conv, {"kind": "pool", "size": 2}, {"kind": "fc", "size": 3}),
                     lanes=4, threshold=(40, 20), overlap=False, update="touched", max_steps=20)
    rng = np.random.default_rng(2)
    w = [rng.integers(-5, 30, cfg.weight_shape(l)) for l in range(2)]
    x = rng.random((2, 20, 64)) < 0.02
    r = FastModel(cfg, w).run(x)
    full = FastModel(cfg.replace(update="all"), w).run(x)
    assert (r.counters["state_reads"] < full.counters["state_reads"]).all()
    assert (r.cycles < full.cycles).all()
    assert (r.counters["in_events"] == full.counters["in_events"]).all()


def test_refusals():
    cfg = ChipConfig(layer_sizes=(4, 3), update="touched", max_steps=3)
    w = [np.ones((4, 3), int)]
    with pytest.raises(ConfigError, match=r"^spikes: 4 steps per sample; a chip with update='touched' runs at most"):
        FastModel(cfg, w).run(np.zeros((1, 4, 4), bool))
    with pytest.raises(ConfigError, match=r"^distortion: the membrane distortion is not modelled with update='touched'$"):
        FastModel(cfg, w, distortion=lambda v, l: v)
    from sim.async_model import AsyncModel
    for chip in (cfg, cfg.replace(wavefront=True)):
        with pytest.raises(ConfigError, match=r"^update='touched': the asynchronous mode has no UPDATE phase"):
            AsyncModel(chip, w)
        from sim.event_bound import touched_schedule
        with pytest.raises(ConfigError, match=r"^update='touched': touched_schedule projects update by touch from an "
                                              r"update='all' chip's run; pass the model of the chip with "
                                              r"update='all'$"):
            touched_schedule(FastModel(chip, w), np.zeros((1, 2, 4), bool))
    with pytest.raises(ConfigError, match=r"^distortion: the membrane distortion is not modelled with update='touched'$"):
        FastModel(cfg.replace(wavefront=True), w, distortion=lambda v, l: v)


# --- the wavefront schedule (docs/chip.md, "Wavefront"): the touched chip's arithmetic, its own cycles ---------------

wave_chips = chips.map(lambda cfg: cfg.replace(wavefront=True))      # overlap stored false


def phases(E, U, O):
    """Arrays as :class:`sim.event_bound.LazyRun` has them, from per-layer lists ``E[l][t]``, ``U[l][t]`` and
    ``O[t]`` of one sample: ``(1, L, T)``, ``(1, L, T)``, ``(1, T)``."""
    return np.array([E], np.int64), np.array([U], np.int64), np.array([O], np.int64)


def by_cycle(E, U, O) -> int:
    """tests/reference.py's cycle-by-cycle walk of the same phases (one sample; its lists are step-major)."""
    from tests.reference import wavefront_schedule
    return wavefront_schedule(np.asarray(E[0]).T.tolist(), np.asarray(U[0]).T.tolist(), np.asarray(O[0]).tolist())


@given(data=st.data())
@settings(max_examples=20, deadline=None)
def test_wavefront_model_matches_the_reference(data):
    """Spikes, membranes and every counter (cycles included) of the fast model against the per-neuron, per-cycle
    reference, on random fc and conv/pool wavefront chips."""
    cfg = data.draw(wave_chips)
    _assert_model_is_the_reference(cfg, *data.draw(programmes(cfg, batch=2, steps=5)))


@given(data=st.data())
@settings(max_examples=30, deadline=None)
def test_wavefront_is_the_touched_chip_without_overlap_but_for_its_cycles(data):
    """docs/chip.md: spikes, membranes and every counter but cycles (and stall_cycles) equal the touched chip's
    without overlap; the cycles are wavefront_cycles of lazy_run's per-step phases (the specification's arrays)."""
    from sim.lazy import wavefront_cycles
    cfg = data.draw(wave_chips)
    weights, offsets, spikes = data.draw(programmes(cfg, batch=3, steps=6))
    model = FastModel(cfg, weights, offsets)
    r = model.run(spikes)
    seq = FastModel(cfg.replace(wavefront=False, overlap=False), weights, offsets).run(spikes)
    for l in range(cfg.num_layers):
        np.testing.assert_array_equal(r.spikes[l], seq.spikes[l])
        np.testing.assert_array_equal(r.state[l], seq.state[l])
    for name in cfg.counter_names:
        if name not in ("cycles", "stall_cycles"):
            np.testing.assert_array_equal(r.counters[name], seq.counters[name], err_msg=name)
    lz = lazy_run(model, spikes)
    np.testing.assert_array_equal(r.cycles, wavefront_cycles(lz.event_cycles, lz.update_cycles, lz.output_cycles))
    L, T = cfg.num_layers, spikes.shape[1]
    assert (r.cycles <= seq.cycles + T * L * (L + 1) // 2).all()
    without = model.run(spikes, record_state=False)
    np.testing.assert_array_equal(without.cycles, r.cycles)


def chain_bounds(E, U, O) -> np.ndarray:
    """Per sample, the longest of the wavefront's dependency chains (each a lower bound of its cycles): through
    layer ``l``'s steps (step 0 of the layers before it, every step of ``l`` — a decision cycle, its EVENT phase,
    its UPDATE, one after the other —, the last step of the layers after it, the last output; the last layer's
    steps each with its output: the sender keeps it busy), and the event engine's (every phase after its decision
    cycle, then the last UPDATE and output)."""
    S = 1 + E + U                                                    # (B, L, T)
    L = E.shape[1]
    chains = [S[:, :l, 0].sum(1) + S[:, l].sum(1) + S[:, l + 1:, -1].sum(1)
              + (O.sum(1) if l == L - 1 else O[:, -1]) for l in range(L)]
    chains.append((1 + E).sum((1, 2)) + U[:, -1, -1] + O[:, -1])
    chains.append(U.sum((1, 2)) + 1 + E[:, 0, 0] + O[:, -1])          # the update engine's
    return np.max(chains, axis=0)


@given(L=st.integers(1, 4), T=st.integers(1, 7), data=st.data())
@settings(max_examples=200, deadline=None)
def test_wavefront_cycles_equal_the_cycle_by_cycle_walk(L, T, data):
    """sim.lazy.wavefront_cycles (phase by phase) against tests/reference.py's cycle-by-cycle walk on random
    phases (short and long EVENT phases, UPDATEs from the touched chip's fill up, outputs); with the bounds that
    hold: the dependency chains below it, and at most the sequential schedule (the touched chip without overlap)
    plus L(L+1)/2 decision cycles per step above it — exactly that with one step (layer l's decision after layer
    l - 1's UPDATE comes after the engine parks at layer 0 and visits layers 0 .. l: l + 1 decision cycles, when
    an UPDATE lasts at least L cycles). The L decision cycles per step of a sequential host do not bound it."""
    from sim.lazy import wavefront_cycles
    top = data.draw(st.sampled_from([3, 12, 60]))
    ints = lambda lo, hi, n: st.lists(st.integers(lo, hi), min_size=n, max_size=n)
    E = [data.draw(ints(1, top, T)) for _ in range(L)]
    U = [data.draw(ints(8, 40, T)) for _ in range(L)]
    O = data.draw(ints(1, 12, T))
    E, U, O = phases(E, U, O)
    cycles = wavefront_cycles(E, U, O)
    assert cycles[0] == by_cycle(E, U, O)
    sequential = E.sum() + U.sum() + O.sum()
    assert chain_bounds(E, U, O)[0] <= cycles[0] <= sequential + T * L * (L + 1) // 2
    # sim.event_bound.wavefront_ceiling's slot order is the one the round-robin engine keeps, and its rules are
    # the built ones without decision cycles: a lower bound once its output leaves the update engine (the built
    # chip has a sender of its own; with the output on the update engine the ceiling can exceed the cycles)
    from sim.event_bound import LazyRun, wavefront_ceiling
    run = LazyRun(spikes=[], state=[], visited=None, cycles=None, event_cycles=E, update_cycles=U,
                  output_cycles=0 * O)
    assert wavefront_ceiling(run)[0] + O[0, -1] <= cycles[0]
    if T == 1:
        assert cycles[0] == sequential + L * (L + 1) // 2
    # a batch is its samples
    both = wavefront_cycles(np.concatenate([E, E[:, :, ::-1]]), np.concatenate([U, U[:, :, ::-1]]),
                            np.concatenate([O, O[:, ::-1]]))
    np.testing.assert_array_equal(both, [cycles[0], wavefront_cycles(E[:, :, ::-1], U[:, :, ::-1], O[:, ::-1])[0]])


def test_one_layer_wavefront_by_hand():
    """One layer: a step's decision cycle, EVENT phase (X, with its end-of-events cycle), UPDATE (U) and output
    (E_out + 1) one after the other — the next step's decision comes after the end token (the layer is busy
    through it; seen from the next cycle): Σ_t (1 + X + U + E_out + 1), one cycle per step more than the touched
    chip without overlap. Flood: 5 inputs, 7 neurons on 4 lanes (G = 2) all firing: X = 5·2 + 1, U = P_T +
    ceil(4/2) + ceil(3/2), output 7 + 1."""
    from tests.reference import reference_run
    from tests.strategies import flood
    cfg = ChipConfig(layer_sizes=(5, 7), lanes=4, threshold=1, update="touched", wavefront=True, max_steps=3)
    weights, offsets, x = flood(cfg, 1, 3)
    X, U, out = 5 * 2 + 1, cfg.update_latency + 2 + 2, 7 + 1
    assert cfg.update_latency == 8
    r = FastModel(cfg, weights, offsets).run(x)
    assert r.counters["cycles"][0] == 3 * (1 + X + U + out) == 96
    seq = FastModel(cfg.replace(wavefront=False), weights, offsets).run(x)
    assert seq.counters["cycles"][0] == 3 * (X + U + out)
    cnt = {}
    reference_run(cfg, weights, cfg.check_offsets(offsets), x[0], counters=cnt)
    assert cnt["cycles"] == 96


def test_two_layer_wavefront_by_hand():
    """Two layers, two steps; layer l's phases E[l][t] (EVENT with its end-of-events cycle), U[l][t], output O[t]:
    cycle 0, decision at layer 0: EVENT 1..3, UPDATE 4..13 (layer 1 has that input from 14);
    4 at layer 1: no input; 5 at layer 0: input, busy with its own UPDATE: it waits, 5..13;
    14 at layer 0: EVENT of step 1, 15..17, its UPDATE 18..27 (layer 1's input of step 1 from 28);
    18 at layer 1: EVENT of step 0, 19..20; its UPDATE waits for the update engine: 28..36; sender 37..38;
    21 at layer 0: every step taken, no layer has input (28): parks 21..27; 28 at layer 0, 29 at layer 1: input,
    busy through the sender's end token (38): waits; 39: EVENT 40..41, UPDATE 42..50, sender 51..52: 53 cycles,
    one more than the sequential schedule's 52 (layer 1 waits for its sender, the update engine for layer 0)."""
    from sim.lazy import wavefront_cycles
    E, U, O = phases([[3, 3], [2, 2]], [[10, 10], [9, 9]], [2, 2])
    assert wavefront_cycles(E, U, O)[0] == by_cycle(E, U, O) == 53
    assert E.sum() + U.sum() + O.sum() == 52
    # a third step: 21 at layer 0 waits for its UPDATE of step 1 (27); 28: EVENT 29..31, UPDATE 37..46 (after
    # layer 1's); 32 at layer 1 waits for its sender (38); 39: EVENT 40..41, UPDATE 47..55, sender 56..57; 42 at
    # layer 0 parks until 47; 48 at layer 1 waits (57); 58: EVENT 59..60, UPDATE 61..69, sender 70..71: 72 cycles,
    # 6 fewer than the sequential 78 (layer 0's step 2 ran beside layer 1's step 0)
    E, U, O = phases([[3, 3, 3], [2, 2, 2]], [[10, 10, 10], [9, 9, 9]], [2, 2, 2])
    assert wavefront_cycles(E, U, O)[0] == by_cycle(E, U, O) == 72
    assert E.sum() + U.sum() + O.sum() == 78
