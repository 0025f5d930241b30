"""FaultyChip: off is the plain chip bit for bit; RTL-expressible faults agree on the RTL."""
import numpy as np
import pytest

from hw.config import ChipConfig, ConfigError
from sim.amaranth_sim import AmaranthChip
from sim.chip import make_chip
from sim.faults import Faults, FaultyChip
from tests.compare import assert_same

CFG = ChipConfig(layer_sizes=(12, 8, 4), lanes=3, threshold=40, beta=0.85)
RNG = np.random.default_rng(0)
W = [RNG.integers(-40, 90, (12, 8)), RNG.integers(-40, 90, (8, 4))]
X = RNG.random((3, 6, 12)) < 0.4


def run(chip, w=W, x=X):
    chip.load(w)
    return chip.run(x, record_state=True)


def test_all_faults_off_is_the_plain_chip():
    plain = run(make_chip(CFG))
    faulty = run(FaultyChip(make_chip(CFG), Faults(seed=3)))
    assert_same(plain, faulty)
    for a, b in zip(plain.spikes, faulty.spikes):
        assert (a == b).all()


def test_rtl_expressible_faults_agree_on_the_rtl():
    f = Faults(threshold_mismatch=0.2, stuck_zero=0.3, seed=5)
    fast = run(FaultyChip(make_chip(CFG), f))
    rtl = run(FaultyChip(AmaranthChip(CFG), f))
    assert_same(fast, rtl)
    assert not (fast.output == run(make_chip(CFG)).output).all()     # the faults did something


def test_distortion_only_in_the_fast_model_and_it_excites():
    with pytest.raises(ConfigError, match="only in the fast model"):
        FaultyChip(AmaranthChip(CFG), Faults(distortion=1.0))
    counts = [run(FaultyChip(make_chip(CFG), Faults(distortion=s))).counters["spikes_l0"].sum()
              for s in (0.0, 1.0, 5.0)]
    assert counts[0] < counts[1] < counts[2]


def test_leak_mismatch_changes_membranes():
    a = run(make_chip(CFG))
    b = run(FaultyChip(make_chip(CFG), Faults(leak_mismatch=0.2, seed=1)))
    assert not all((p == q).all() for p, q in zip(a.state, b.state))


@pytest.mark.parametrize("kw, match", [(dict(distortion=-1), "distortion=-1: allowed range is 0..10"),
                                       (dict(distortion=99), "distortion=99: allowed range is 0..10"),
                                       (dict(leak_mismatch="x"), "leak_mismatch='x': allowed range"),
                                       (dict(stuck_zero=1.5), "stuck_zero=1.5: allowed range is 0..1")])
def test_bad_faults(kw, match):
    with pytest.raises(ConfigError, match=match):
        Faults(**kw)


def test_distortion_alone_keeps_the_leak_of_integrate_and_fire_layers():
    """A distortion without leak mismatch must not touch the leak: an IF layer (beta = 1, beta_int = 2**f) stays
    IF. A distortion too small to move any integer membrane (sigma 0.001) is then the plain chip bit for bit (it
    used to turn IF layers into leaky ones, beta_int 2**f - 1)."""
    cfg = CFG.replace(beta=(1.0, 0.85))
    plain = run(make_chip(cfg))
    faulty = FaultyChip(make_chip(cfg), Faults(distortion=0.001))
    got = run(faulty)
    assert_same(plain, got)
    assert [int(np.max(b)) for b in faulty.inner._model.beta_int] == list(cfg.beta_int)


def test_leak_mismatch_never_leaks_less_than_none():
    """Mismatched leak multipliers stay in 1..2**f: an IF layer's neurons leak or stay IF (never grow), a leaky
    layer's neurons keep leaking (at most 2**f - 1)."""
    cfg = CFG.replace(beta=(1.0, 0.99), beta_frac_bits=6)
    chip = FaultyChip(make_chip(cfg), Faults(leak_mismatch=0.5, seed=2))
    run(chip)
    b_if, b_leaky = chip.inner._model.beta_int
    assert b_if.max() == 64 and b_if.min() < 64 and b_leaky.max() == 63
