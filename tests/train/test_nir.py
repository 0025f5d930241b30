"""NIR in and out: round trips through snnTorch, a Rockpool graph, agreement figures, and bad graphs."""
import os

import nir
import numpy as np
import pytest
import torch

from hw.config import ChipConfig, ConfigError
from sim.sample import random_spikes, random_weights
from train import nir as tn
from tune.cli import main

CFG = ChipConfig(layer_sizes=(12, 10, 4), lanes=4, beta=(0.9, 0.8), threshold=(20, 15), reset="zero")


def _weights(cfg=CFG, seed=0):
    return random_weights(cfg, seed, 0.3)


def _snntorch_reexport(net, n_in):
    """snnTorch's export_to_nir of an import_from_nir network; snnTorch 1.0 needs per-neuron beta/threshold
    tensors and a (1, N) sample with ignore_dims=[0] to infer the types."""
    from snntorch.export_nir import export_to_nir
    mods = []
    for m in net.children():
        if isinstance(m, torch.nn.Linear):
            n = m.out_features
        else:
            m.beta = torch.as_tensor(m.beta, dtype=torch.float32).expand(n).clone()
            m.threshold = torch.as_tensor(m.threshold, dtype=torch.float32).expand(n).clone()
        mods.append(m)
    return export_to_nir(torch.nn.Sequential(*mods), torch.zeros(1, n_in), ignore_dims=[0])


def test_round_trip_chip_nir_snntorch_nir_chip(tmp_path):
    w = _weights()
    path = tn.export_nir(tmp_path / "m.nir", CFG, w)
    net = tn.snntorch_model(nir.read(path))
    g = _snntorch_reexport(net, CFG.layer_sizes[0])
    cfg2, w2, off2, rep = tn.import_graph(g, base=CFG, check_samples=0)
    assert cfg2 == CFG.replace(beta=CFG.beta_effective) and cfg2.beta_int == CFG.beta_int
    assert all(np.array_equal(a, b) for a, b in zip(w, w2))
    assert all(not o.any() for o in off2)
    assert all(d["scale"] == 1.0 for d in rep.layers)


def test_subtract_reset_survives_our_own_file_and_offsets_are_kept(tmp_path):
    cfg = CFG.replace(reset="subtract")
    w = _weights(cfg)
    off = [np.arange(10) - 5, np.array([0, 1, -1, 2])]
    cfg2, w2, off2, _ = tn.import_nir(tn.export_nir(tmp_path / "m.nir", cfg, w, off), base=cfg, check_samples=0)
    assert cfg2.reset == "subtract" and cfg2.threshold == cfg.threshold
    assert all(np.array_equal(a, b) for a, b in zip(off, off2))
    assert any("snnTorch" in n for n in tn.export_notes(cfg, off))


def test_snntorch_runs_the_export_and_mostly_agrees_with_the_chip():
    w = _weights()
    x = random_spikes(CFG, 32, 20, 0.3, 1)
    a = tn.snntorch_agreement(CFG, w, x)
    assert a["spike_agreement"] > 0.8 and a["class_agreement"] > 0.8
    # a network whose membranes never need the leak to round agrees spike for spike
    cfg = ChipConfig(layer_sizes=(6, 5, 3), lanes=4, beta=0.5, threshold=(10, 10), reset="zero")
    w = [np.full((6, 5), 11), np.full((5, 3), 11)]
    x = random_spikes(cfg, 8, 10, 0.4, 2)
    assert tn.snntorch_agreement(cfg, w, x)["spike_agreement"] == 1.0


def test_rockpool_graph_imports_with_a_report(tmp_path):
    pytest.importorskip("rockpool")
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LIFNeuronTorch, LinearTorch
    from rockpool.nn.modules.torch.nir import to_nir
    torch.manual_seed(0)
    net = Sequential(LinearTorch((16, 12)), LIFNeuronTorch(12, threshold=0.5),
                     LinearTorch((12, 3)), LIFNeuronTorch(3, threshold=0.5))
    nir.write(tmp_path / "rp.nir", to_nir(net))
    cfg, w, off, rep = tn.import_nir(tmp_path / "rp.nir", base=ChipConfig(lanes=4))
    assert cfg.layer_sizes == (16, 12, 3) and cfg.reset == "zero"
    assert rep.dt == pytest.approx(0.02 / 19.024588, rel=1e-4)          # tau/r of Rockpool's export
    assert any("quantised" in a for a in rep.approximations)
    assert rep.agreement["entry_agreement"] > 0.9
    assert "agreement" in rep.text()


def test_cubalif_with_a_slow_synapse_is_refused_unless_dropped():
    g = tn.chip_to_nir(CFG, _weights())
    lif = g.nodes["lif0"]
    g.nodes["lif0"] = nir.CubaLIF(tau_syn=np.full(10, 1e-3), tau_mem=lif.tau, r=lif.r, v_leak=lif.v_leak,
                                  v_threshold=lif.v_threshold, v_reset=lif.v_reset)
    with pytest.raises(ConfigError, match="node 'lif0': CubaLIF synaptic current"):
        tn.import_graph(g, base=CFG, check_samples=0)
    _, _, _, rep = tn.import_graph(g, base=CFG, check_samples=0, drop_synapses=True)
    assert any("synaptic current" in a for a in rep.approximations)


def _edit(g, **nodes):
    g.nodes.update(nodes)
    return g


@pytest.mark.parametrize("make, message", [
    (lambda g: setattr(g, "edges", g.edges + [("lif0", "fc0")]) or g, "node 'fc0'"),                    # recurrence
    (lambda g: _edit(g, fc1=nir.Affine(weight=g.nodes["fc1"].weight, bias=np.ones(4))), "node 'fc1': Affine bias"),
    (lambda g: _edit(g, fc1=nir.Linear(weight=np.ones((4, 7)))), "node 'fc1': weight takes 7 inputs"),
    (lambda g: _edit(g, lif1=nir.Delay(delay=np.ones(4))), "node 'lif1': Delay is not supported"),
    (lambda g: _edit(g, lif0=nir.LIF(tau=g.nodes["lif0"].tau, r=g.nodes["lif0"].r, v_leak=np.ones(10),
                                     v_threshold=g.nodes["lif0"].v_threshold)), "node 'lif0': v_leak"),
])
def test_graphs_the_chip_cannot_carry_name_the_node(make, message):
    with pytest.raises(ConfigError, match=message):
        tn.import_graph(make(tn.chip_to_nir(CFG, _weights())), base=CFG, check_samples=0)


def test_command_line_import_export_and_bad_files(tmp_path, capsys):
    src = tn.export_nir(tmp_path / "m.nir", CFG, _weights())
    out = tmp_path / "imp"
    assert main(["import", str(src), "--lanes", "4", "--out", str(out), "--check-samples", "8"]) == 0
    assert sorted(os.listdir(out)) == ["config.json", "nir_report.json", "nir_report.txt", "weights.npz"]
    assert main(["export", "--config", str(out / "config.json"), "--weights", str(out / "weights.npz"),
                 "--out", str(tmp_path / "again.nir")]) == 0
    cfg2, w2, _, _ = tn.import_nir(tmp_path / "again.nir", base=CFG, check_samples=0)
    assert all(np.array_equal(a, b) for a, b in zip(_weights(), w2))
    capsys.readouterr()
    bad = tmp_path / "bad.nir"
    bad.write_bytes(b"\x89HDF\r\n garbage")
    truncated = tmp_path / "trunc.nir"
    truncated.write_bytes(src.read_bytes()[:600])
    for f in (bad, truncated):
        assert main(["import", str(f), "--out", str(tmp_path / "never")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "not a readable NIR file" in err
    g = tn.chip_to_nir(CFG, _weights())
    g.nodes["fc1"] = nir.Linear(weight=np.ones((4, 7)))
    nir.write(tmp_path / "shapes.nir", g)
    assert main(["import", str(tmp_path / "shapes.nir"), "--out", str(tmp_path / "never")]) == 2
    assert "do not chain" in capsys.readouterr().err
    assert not (tmp_path / "never").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]          # no temporary left behind


@pytest.mark.parametrize("r, message", [(0.0, "r must be > 0, got min 0"), (-1.0, "r must be > 0, got min -1"),
                                        (np.nan, "r contains NaN")])
def test_a_neuron_node_with_r_not_positive_is_refused(r, message):
    """r = 0 dropped every input (all-zero weights, divide-by-zero warning), r < 0 flipped every weight's sign."""
    g = tn.chip_to_nir(CFG, _weights())
    lif = g.nodes["lif0"]
    g.nodes["lif0"] = nir.LIF(tau=lif.tau, r=np.full_like(np.asarray(lif.r, float), r), v_leak=lif.v_leak,
                              v_threshold=lif.v_threshold)
    with pytest.raises(ConfigError, match=f"node 'lif0': {message}"):
        tn.import_graph(g, base=CFG, check_samples=0)


def test_nir_files_and_import_folders_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        src = tn.export_nir(tmp_path / "m.nir", CFG, _weights())
        assert main(["import", str(src), "--lanes", "4", "--out", str(tmp_path / "imp"), "--check-samples", "0"]) == 0
    finally:
        os.umask(old)
    assert src.stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "imp").stat().st_mode & 0o777 == 0o755


def test_import_refuses_a_dt_that_rounds_every_weight_to_zero_and_sizes_the_graph_does_not_have(tmp_path, capsys):
    """--dt 1e-300 wrote an all-zero network and reported agreement 1.0000; --sizes was silently ignored."""
    src = tn.export_nir(tmp_path / "m.nir", CFG, _weights())
    capsys.readouterr()
    assert main(["import", str(src), "--out", str(tmp_path / "a"), "--dt", "1e-300", "--check-samples", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "every weight rounds to 0" in err and "--dt" in err
    other = ",".join(str(n + 1) for n in CFG.layer_sizes)
    assert main(["import", str(src), "--out", str(tmp_path / "b"), "--sizes", other, "--check-samples", "0"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--sizes {other}" in err
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()
    same = ",".join(map(str, CFG.layer_sizes))
    assert main(["import", str(src), "--out", str(tmp_path / "c"), "--sizes", same, "--check-samples", "0"]) == 0
