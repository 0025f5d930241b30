"""bench/bench_conv.py's cycle breakdown: its parts sum to the model's cycle counter on random conv/pool/fc
chips, and a dense schedule never costs fewer EVENT cycles when no pooling merges events."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from hw.config import ChipConfig
from sim.model import FastModel
from tests.benches import load_bench
from tests.strategies import conv_configs, programmes

bench_conv = load_bench("bench_conv")


@given(data=st.data())
@settings(max_examples=20, deadline=None)
def test_breakdown_sums_to_the_cycle_counter(data):
    cfg = data.draw(conv_configs())
    weights, offsets, spikes = data.draw(programmes(cfg, batch=2, steps=3))
    r = FastModel(cfg, weights, offsets).run(spikes)
    b = bench_conv.cycle_breakdown(cfg, spikes, r.spikes)
    assert (sum(b[k] for k in bench_conv.PARTS) == r.cycles).all()
    assert (b["hidden events"] == sum(b[f"events_l{l}"] for l in range(1, cfg.num_layers))).all()
    if all(cfg.pool_area(l) == 1 for l in range(cfg.num_layers)):
        assert (b["dense events"] >= b["input events"] + b["hidden events"]).all()


def test_breakdown_hand_worked():
    """1x4x4 input, conv 3 channels k3 p1 (lanes 2: G = 2), fc 2: one input event at the corner (0, 0)
    visits 2x2 positions x 2 groups = 8 cycles; silence elsewhere; update 16 words + 1 fc word per step."""
    cfg = ChipConfig(input_shape=(1, 4, 4), layers=({"kind": "conv", "channels": 3, "kernel": 3, "padding": 1},
                                                    {"kind": "fc", "size": 2}), lanes=2, threshold=100)
    w = [np.ones(cfg.weight_shape(l), int) for l in range(2)]
    x = np.zeros((1, 2, 16), bool)
    x[0, 0, 0] = True
    r = FastModel(cfg, w).run(x)
    b = bench_conv.cycle_breakdown(cfg, x, r.spikes)
    assert b["input events"][0] == 8 and b["hidden events"][0] == 0
    assert b["update"][0] == 2 * (16 * 2 + 1)
    assert b["decoder fill"][0] == 2 * cfg.decode_latency(0)
    assert b["dense events"][0] == 2 * (16 * 2 * 9 + 1 * 1 * 48)
    assert sum(b[k] for k in bench_conv.PARTS)[0] == r.cycles[0]


def test_breakdown_hidden_by_overlap_hand_worked():
    """1x1x4 input, conv 1 channel k1 (weight 5, threshold 1: copies its input), fc 3, lanes 1, overlap on:
    input spikes at x = 1, 3 fire state words 1 and 3 of the conv layer (U = P + 4), appended in P+1 and
    P+3; the fc layer (G' = 3) runs them in P+2..P+4 and P+5..P+7, S = P + 8: max(U, S) + 1 is 2 cycles
    fewer than U + 2*3 + 1, the breakdown's "hidden by overlap"."""
    cfg = ChipConfig(input_shape=(1, 1, 4), layers=({"kind": "conv", "channels": 1, "kernel": 1},
                                                    {"kind": "fc", "size": 3}), lanes=1, threshold=1, overlap=True)
    w = [np.full((1, 1, 1, 1), 5), np.zeros((4, 3), int)]
    x = np.zeros((1, 1, 4), bool)
    x[0, 0, [1, 3]] = True
    r = FastModel(cfg, w).run(x)
    b = bench_conv.cycle_breakdown(cfg, x, r.spikes)
    assert b["hidden by overlap"][0] == -2 and b["hidden events"][0] == 2 * 3
    assert sum(b[k] for k in bench_conv.PARTS)[0] == r.cycles[0]
    assert r.cycles[0] + 2 == FastModel(cfg.replace(overlap=False), w).run(x).cycles[0]
