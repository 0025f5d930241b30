"""NIR in and out: round trips through snnTorch, a Rockpool graph, agreement figures, and bad graphs."""
import json
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
    (lambda g: _edit(g, fc1=nir.Affine(weight=g.nodes["fc1"].weight, bias=np.ones(3))), "node 'fc1': bias has 3 entries"),
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


# -- issue #19: the NIR command line's bad inputs ----------------------------------------------------------
def _one_line_error(capsys, *fragments):
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for f in fragments:
        assert f in err, (f, err)
    return err


def test_dt_that_quantises_every_weight_to_zero_is_refused_with_its_range(tmp_path, capsys):
    src = tn.export_nir(tmp_path / "m.nir", CFG, _weights())
    assert main(["import", str(src), "--dt", "1e-300", "--out", str(tmp_path / "never")]) == 2
    err = _one_line_error(capsys, "--dt 1e-300", "node 'fc0'", "quantise to 0 LSB", "allowed range of dt")
    lo, hi = (float(v) for v in err.split("[")[1].split(")")[0].split(","))
    assert not (tmp_path / "never").exists()
    # the range it names is right: just above its lower end the import works and some weight is non-zero
    cfg, w, _, _ = tn.import_nir(src, base=CFG, dt=lo * 1.01, check_samples=0)
    assert any(np.any(x) for x in w)
    with pytest.raises(ConfigError, match="quantise to 0 LSB"):
        tn.import_nir(src, base=CFG, dt=lo * 0.9, check_samples=0)
    assert hi == pytest.approx(min(1e-4 / (1 - b) for b in CFG.beta_effective), rel=1e-2)


def test_sizes_must_match_the_graph(tmp_path, capsys):
    src = tn.export_nir(tmp_path / "m.nir", CFG, _weights())
    assert main(["import", str(src), "--sizes", "5,5", "--out", str(tmp_path / "never")]) == 2
    _one_line_error(capsys, "--sizes 5,5", "12,10,4")
    assert not (tmp_path / "never").exists()
    assert main(["import", str(src), "--sizes", "12,10,4", "--lanes", "4", "--check-samples", "0",
                 "--out", str(tmp_path / "ok")]) == 0


def test_narrow_widths_import_without_a_threshold_flag(tmp_path, capsys):
    """--membrane-bits under 8: the graph sets the thresholds, so the default threshold 64 (which such a membrane
    cannot hold) is not in the way; it was refused as "threshold=64: allowed range is integers 1..31" though
    import refuses --threshold."""
    src = tn.export_nir(tmp_path / "m.nir", CFG, _weights())
    assert main(["import", str(src), "--weight-bits", "4", "--membrane-bits", "6", "--check-samples", "0",
                 "--out", str(tmp_path / "imp")]) == 0, capsys.readouterr().err
    cfg = json.loads((tmp_path / "imp" / "config.json").read_text())
    assert cfg["membrane_bits"] == 6 and max(np.ravel(cfg["threshold"])) <= 31


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_export_and_import_follow_the_umask(tmp_path, mask):
    old = os.umask(mask)
    try:
        src = tn.export_nir(tmp_path / "m.nir", CFG, _weights())
        assert main(["import", str(src), "--lanes", "4", "--check-samples", "0", "--out", str(tmp_path / "imp")]) == 0
        assert main(["export", "--config", str(tmp_path / "imp" / "config.json"), "--weights",
                     str(tmp_path / "imp" / "weights.npz"), "--out", str(tmp_path / "again.nir")]) == 0
    finally:
        os.umask(old)
    for f in (src, tmp_path / "again.nir", *(tmp_path / "imp").iterdir()):
        assert f.stat().st_mode & 0o777 == 0o666 & ~mask, f
    assert (tmp_path / "imp").stat().st_mode & 0o777 == 0o777 & ~mask


def test_export_onto_a_directory_is_one_line(tmp_path, capsys):
    src = tn.export_nir(tmp_path / "m.nir", CFG, _weights())
    assert main(["import", str(src), "--lanes", "4", "--check-samples", "0", "--out", str(tmp_path / "imp")]) == 0
    capsys.readouterr()
    assert main(["export", "--config", str(tmp_path / "imp" / "config.json"), "--weights",
                 str(tmp_path / "imp" / "weights.npz"), "--out", str(tmp_path / "imp")]) == 2
    _one_line_error(capsys, "--out", "is a directory")


@pytest.mark.parametrize("r", [0.0, -1.0, np.inf])
def test_a_neuron_with_r_zero_negative_or_infinite_is_refused(tmp_path, capsys, r):
    g = tn.chip_to_nir(CFG, _weights())
    lif = g.nodes["lif1"]
    g.nodes["lif1"] = nir.LIF(tau=lif.tau, r=np.full(4, r, np.float32), v_leak=lif.v_leak,
                              v_threshold=lif.v_threshold, v_reset=lif.v_reset)
    nir.write(tmp_path / "r.nir", g)
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("error")                  # no numpy divide-by-zero warning on the way
        assert main(["import", str(tmp_path / "r.nir"), "--out", str(tmp_path / "never")]) == 2
    _one_line_error(capsys, "node 'lif1'", "r > 0")


# -- issue #22 item 3: the report measures against the original graph ------------------------------------
def test_report_compares_with_the_original_graph_and_lists_each_approximation():
    g = tn.chip_to_nir(CFG, _weights())
    lif = g.nodes["lif0"]
    g.nodes["lif0"] = nir.CubaLIF(tau_syn=np.full(10, 1e-3), tau_mem=lif.tau, r=lif.r, v_leak=lif.v_leak,
                                  v_threshold=lif.v_threshold, v_reset=lif.v_reset, w_in=np.full(10, 10.0))
    _, _, _, rep = tn.import_graph(g, base=CFG, drop_synapses=True, check_samples=32, check_steps=20, density=0.4)
    from train.nir_ref import run_graph
    x = np.random.default_rng(0).random((32, 20, 12)) < 0.4                 # the check's own inputs (seed 0)
    original = run_graph(g, x.astype(float), rep.dt) > 0
    assert rep.agreement["spikes"][0] == int(original.sum()) > 0          # the ORIGINAL graph, synapse and all
    syn = [e for e in rep.effects if "synaptic current" in e["approximation"]]
    assert len(syn) == 1 and syn[0]["alone"] and syn[0]["spike_agreement"] < 0.9
    assert rep.effects[-1]["approximation"].startswith("the chip's membrane") and not rep.effects[-1]["alone"]
    assert "effect of" in rep.text()


def test_a_silent_check_is_called_meaningless():
    cfg = CFG.replace(threshold=(30000, 30000))
    _, _, _, rep = tn.import_graph(tn.chip_to_nir(cfg, _weights()), base=cfg, check_samples=8, check_steps=5)
    assert rep.agreement["spikes"] == [0, 0]
    assert "neither side fired" in rep.text()


# -- issue #19: flags import cannot apply, the --out it names, export's suffix ------------------------------
@pytest.mark.parametrize("flag, value", [("--beta", "0.3"), ("--threshold", "5"), ("--reset", "zero")])
def test_import_refuses_chip_flags_the_graph_sets(tmp_path, flag, value, cli):
    from tests.tune.test_cli_errors import fails_cleanly
    src = tn.export_nir(tmp_path / "m.nir", CFG, _weights())
    r = cli("import", src, flag, value, "--out", tmp_path / "o")
    fails_cleanly(r, f"{flag}:", "import takes it from the NIR file")
    assert not (tmp_path / "o").exists() and r.stdout == ""


def test_import_out_it_cannot_write_names_the_path_given(tmp_path, cli):
    from tests.tune.test_cli_errors import fails_cleanly
    src = tn.export_nir(tmp_path / "m.nir", CFG, _weights())
    (tmp_path / "file").write_text("x")
    given = tmp_path / "file" / "imp"
    err = fails_cleanly(cli("import", src, "--out", given), f"--out {given}:", "cannot write there")
    assert f"--out {given.parent}:" not in err
    err = fails_cleanly(cli("import", src, "--out", tmp_path / "file"), "is a file, not a directory")


@pytest.mark.parametrize("name", ["m.txt", "m", "m.npz"])
def test_export_refuses_a_suffix_that_is_not_nir(tmp_path, name, cli):
    from tests.tune.test_cli_errors import fails_cleanly
    src = tn.export_nir(tmp_path / "m.nir", CFG, _weights())
    assert main(["import", str(src), "--lanes", "4", "--check-samples", "0", "--out", str(tmp_path / "imp")]) == 0
    r = cli("export", "--model", tmp_path / "imp", "--out", tmp_path / name)
    fails_cleanly(r, f"--out {tmp_path / name}", ".nir / .h5")
    assert not (tmp_path / name).exists()
    r = cli("export", "--model", tmp_path / "imp", "--out", tmp_path / "again.h5")
    assert r.returncode == 0 and (tmp_path / "again.h5").is_file(), r.stderr[-2000:]


@pytest.mark.parametrize("line, key", [("beta = 0.5", "beta"), ("threshold = [7, 9]", "threshold"),
                                       ('reset = "subtract"', "reset")])
def test_import_config_file_that_sets_what_the_graph_sets_is_said_not_silent(tmp_path, line, key, cli):
    """--config gives widths and lanes; a beta/threshold/reset in it (import's own config.json and a training run's
    RUN.json always carry them) is not used — the graph sets them — and the command says so in one line, then
    imports. (The command-line flags, an explicit ask, are refused.)"""
    import json
    src = tn.export_nir(tmp_path / "m.nir", CFG, _weights())
    conf = tmp_path / "c.toml"
    conf.write_text(f"[chip]\nweight_bits = 12\nlanes = 2\n{line}\n")
    r = cli("import", src, "--config", conf, "--out", tmp_path / "o", "--check-samples", "2")
    assert r.returncode == 0, r.stderr
    notes = [ln for ln in r.stderr.splitlines() if ln.startswith("note:")]
    assert len(notes) == 1 and f"--config {conf}: its {key} is not used; the NIR file sets it" in notes[0], r.stderr
    d = json.loads((tmp_path / "o" / "config.json").read_text())
    chip = d.get("chip", d)
    assert chip["weight_bits"] == 12 and chip["lanes"] == 2                  # widths and lanes are what it is for
    imported = ChipConfig.from_dict(chip)
    assert (imported.threshold, imported.reset) == (CFG.threshold, CFG.reset)                        # the graph's
    assert np.allclose(imported.beta, CFG.beta, atol=0.01)                          # the graph's, not the file's 0.5
    # import's own output as the next import's --config: accepted, its graph-set values noted as unused
    r = cli("import", src, "--config", tmp_path / "o" / "config.json", "--out", tmp_path / "o2",
                  "--check-samples", "0")
    assert r.returncode == 0 and "beta, threshold, reset are not used" in r.stderr, r.stderr


def test_the_weights_effect_is_alone_when_per_neuron_thresholds_are_clipped():
    """An import whose per-neuron thresholds do not fit the offset bits lists two approximations, the clip and the
    weights' rounding; each one's effect is measured alone, so the weights' does not depend on the offset bits (it
    used to carry the clipped thresholds, and equal the clip's effect)."""
    rng = np.random.default_rng(3)
    w0, w1 = rng.normal(0, 0.6, (10, 12)), rng.normal(0, 0.6, (4, 10))
    g = nir.NIRGraph(nodes={"input": nir.Input(input_type={"input": np.array([12])}),
                            "fc0": nir.Affine(weight=w0, bias=np.zeros(10)),
                            "if0": nir.IF(r=np.ones(10), v_threshold=1 + 0.3 * rng.random(10), v_reset=np.zeros(10)),
                            "fc1": nir.Affine(weight=w1, bias=np.zeros(4)),
                            "if1": nir.IF(r=np.ones(4), v_threshold=np.ones(4), v_reset=np.zeros(4)),
                            "output": nir.Output(output_type={"output": np.array([4])})},
                     edges=[("input", "fc0"), ("fc0", "if0"), ("if0", "fc1"), ("fc1", "if1"), ("if1", "output")])

    def effects(bits):
        base = ChipConfig(lanes=4, weight_bits=8, membrane_bits=24, threshold_offset_bits=bits)
        _, _, _, rep = tn.import_graph(g, base=base, check_samples=32, check_steps=20, density=0.4)
        return {e["approximation"].split(" at ")[0]: e for e in rep.effects}
    narrow, wide = effects(4), effects(16)
    assert "if0: per-neuron thresholds clipped to the 4-bit offset range" in "\n".join(narrow)
    assert not [k for k in wide if "clipped" in k]
    clip = next(e for k, e in narrow.items() if "clipped" in k)
    key = "fc0: weights quantised to 8 bits"
    assert narrow[key]["spikes"] == wide[key]["spikes"]
    assert narrow[key]["spike_agreement"] == wide[key]["spike_agreement"]
    assert clip["spikes"][1] != narrow[key]["spikes"][1]
