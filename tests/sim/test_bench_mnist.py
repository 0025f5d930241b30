"""bench/bench_mnist.py's cycle breakdown: its parts (with the overlap's hidden cycles, negative) sum to the
model's cycle counter on random FC chips, with overlap on and off."""
import importlib.util
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from sim.model import FastModel
from tests.strategies import configs, programmes

_bench = Path(__file__).resolve().parents[2] / "bench"
_spec = importlib.util.spec_from_file_location("bench_mnist", _bench / "bench_mnist.py")
bench_mnist = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench_mnist)


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
