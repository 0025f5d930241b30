"""The chip's two synaptic-operation counts and its activation sparsity against NeuroBench 2.x."""
import numpy as np
import pytest

from hw.config import ChipConfig
from sim.chip import make_chip
from sim.metrics import chip_metrics, footprint_bytes, neurobench_metrics
from sim.sample import random_spikes, random_weights
from tune.cli import main


def _hand_made():
    """Every non-zero weight (11) exceeds the threshold (10) and resets to zero: each neuron spikes exactly
    when an input with a non-zero weight to it arrives, the float model equals the chip spike for spike."""
    cfg = ChipConfig(layer_sizes=(4, 3, 2), lanes=2, beta=0.5, threshold=10, reset="zero")
    w0 = np.array([[11, 0, 0], [0, 11, 0], [11, 11, 0], [0, 0, 0]])
    w1 = np.array([[11, 0], [0, 0], [0, 11]])
    x = np.zeros((2, 3, 4), bool)
    x[0, 0, 0] = x[0, 1, 2] = x[0, 2, 3] = True        # sample 0: inputs 0, 2, 3 at steps 0, 1, 2
    x[1, :, 1] = True                                  # sample 1: input 1 at every step
    return cfg, [w0, w1], x


def test_nonzero_synops_and_sparsity_agree_with_neurobench_on_a_hand_made_network():
    cfg, w, x = _hand_made()
    chip = make_chip(cfg)
    chip.load(w)
    r = chip.run(x)
    m = chip_metrics(cfg, w, x, r)
    # sample 0: events 0 (1 non-zero of 3), 2 (2 of 3), 3 (0 of 3) into layer 0; layer-0 spikes: neuron 0 at
    # step 0, neurons 0 and 1 at step 1 -> into layer 1: 1 + (1 + 0) non-zero. Dense: 3 events x 3 + 3 spikes x 2.
    # sample 1: input 1 (1 of 3) x 3 steps; neuron 1 spikes 3 times (0 non-zero of 2). Dense: 3x3 + 3x2.
    assert m["synops_nonzero"] == pytest.approx(((1 + 2 + 0) + (1 + 1 + 0)) / 2 + (3 * 1 + 0) / 2)
    assert m["synops"] == m["synops_counter"] == pytest.approx(((9 + 6) + (9 + 6)) / 2)
    spikes = sum(int(r.counters[f"spikes_l{l}"].sum()) for l in range(2))
    assert m["activation_sparsity"] == pytest.approx(1 - spikes / (2 * 3 * 5))
    nb = neurobench_metrics(cfg, w, x)
    assert nb["synops"] == pytest.approx(m["synops_nonzero"])
    assert nb["activation_sparsity"] == pytest.approx(m["activation_sparsity"])
    assert nb["synops_dense"] == pytest.approx(3 * (4 * 3 + 3 * 2))       # NeuroBench's dense: every weight, every step
    assert footprint_bytes(cfg) == -(-(18 * 8 + 5 * (cfg.acc_bits + 8)) // 8)


def test_random_network_nonzero_synops_below_the_counter_and_close_to_neurobench():
    cfg = ChipConfig(layer_sizes=(32, 16, 4), lanes=4, beta=0.9, threshold=30, reset="zero")
    w = random_weights(cfg, 3, 0.3)
    w[0][np.abs(w[0]) < 20] = 0                     # some zero weights
    x = random_spikes(cfg, 16, 16, 0.2, 4)
    chip = make_chip(cfg)
    chip.load(w)
    m = chip_metrics(cfg, w, x, chip.run(x))
    nb = neurobench_metrics(cfg, w, x)
    assert m["synops_nonzero"] < m["synops"]
    assert nb["synops"] == pytest.approx(m["synops_nonzero"], rel=0.05)
    assert nb["activation_sparsity"] == pytest.approx(m["activation_sparsity"], abs=0.02)


def test_run_prints_both_definitions(capsys):
    assert main(["run", "--sizes", "16,8,4", "--lanes", "4", "--batch", "2", "--steps", "5"]) == 0
    out = capsys.readouterr().out
    assert "non-zero weights only" in out and "NeuroBench" in out and "activation sparsity" in out


@pytest.mark.parametrize("metric", ["SynapticOperations", "ActivationSparsity"])
def test_a_neurobench_metric_that_fails_is_an_error_not_a_zero(monkeypatch, metric):
    """NeuroBench catches a workload metric's exception and stores 0.0; that is refused, not returned
    (a MemoryError in SynapticOperations used to end a whole study with a TypeError traceback)."""
    import neurobench.metrics.workload as wl
    cls = getattr(wl, metric)

    def boom(self, *a, **k):
        raise MemoryError("injected")
    monkeypatch.setattr(cls, "__call__", boom)
    cfg, w, x = _hand_made()
    with pytest.raises(RuntimeError, match=f"NeuroBench metrics failed: {metric}: MemoryError: injected"):
        neurobench_metrics(cfg, w, x)


def test_run_with_a_failing_neurobench_metric_prints_one_line_and_the_chip_column(monkeypatch, capsys):
    import neurobench.metrics.workload as wl

    def boom(self, *a, **k):
        raise MemoryError("injected")
    monkeypatch.setattr(wl.SynapticOperations, "__call__", boom)
    assert main(["run", "--sizes", "16,8,4", "--lanes", "4", "--batch", "2", "--steps", "5"]) == 0
    cap = capsys.readouterr()
    assert "Traceback" not in cap.err and cap.err.count("NeuroBench metrics failed") == 1
    assert "activation sparsity" in cap.out
def test_pooled_chips_show_neurobench_macs_apart():
    """Behind a sum pool NeuroBench sees counts and counts MACs, not ACs: the table shows them apart (issue #22)."""
    from sim.metrics import metrics_table
    cfg = ChipConfig(input_shape=(1, 6, 6), lanes=2, threshold=(3, 3), beta=0.9, reset="zero",
                     layers=({"kind": "conv", "channels": 2, "kernel": 3, "padding": 1}, {"kind": "pool", "size": 2},
                             {"kind": "fc", "size": 3}))
    rng = np.random.default_rng(0)
    w = [rng.integers(1, 4, cfg.weight_shape(l)) for l in range(2)]
    x = random_spikes(cfg, 8, 6, 0.5, 1)
    chip = make_chip(cfg)
    chip.load(w)
    m = chip_metrics(cfg, w, x, chip.run(x))
    nb = neurobench_metrics(cfg, w, x)
    assert nb["macs"] > 0
    # the chip's non-zero synops cover both layers; NeuroBench's ACs only the conv (binary input)
    assert m["synops_nonzero"] > nb["synops"]
    lines = metrics_table(m, nb, pooled=True)
    assert any("NeuroBench MACs" in l for l in lines) and "not one metric" in lines[-1]
    fc = ChipConfig(layer_sizes=(8, 4), lanes=2, threshold=3)
    wf = [np.ones((8, 4), np.int64)]
    xf = random_spikes(fc, 4, 5, 0.5, 2)
    assert neurobench_metrics(fc, wf, xf)["macs"] == 0
    assert not any("not one metric" in l for l in metrics_table(m, nb, pooled=False))
