"""bench/bench_mnist.py's cycle breakdown: its parts (with the overlap's hidden cycles, negative) sum to the
model's cycle counter on random FC chips, with overlap on and off."""

from hypothesis import given, settings
from hypothesis import strategies as st

from sim.model import FastModel
from tests.benches import load_bench
from tests.strategies import configs, programmes

bench_mnist = load_bench("bench_mnist")


@given(data=st.data())
@settings(max_examples=20, deadline=None)
def test_breakdown_sums_to_the_cycle_counter(data):
    cfg = data.draw(configs())
    weights, offsets, spikes = data.draw(programmes(cfg, batch=2, steps=3))
    r = FastModel(cfg, weights, offsets).run(spikes)
    b = bench_mnist.breakdown(cfg, r)
    assert (sum(b.values()) == r.cycles).all()
    hidden = [k for k in b if k.startswith("hidden by overlap")]
    assert hidden == [f"hidden by overlap l{l}" for l in range(cfg.num_layers) if cfg.overlapped(l)]
    assert all((b[k] <= 0).all() for k in hidden)
