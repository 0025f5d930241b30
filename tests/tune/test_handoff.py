"""The hand-off from a trained or imported network to the chip, Verilog, synthesis and NIR (issue #22 item 4):
every command takes the run's own thresholds, betas, reset and per-neuron offsets, never the defaults."""
import json

import nir
import numpy as np
import pytest

from hw.bus import offset_words, weight_words
from hw.config import ChipConfig
from sim.sample import random_weights
from train import nir as tn
from train.config import TrainConfig
from train.run import run_training
from tune.cli import main


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A real (short) training run saved as `spikeloop train --out RUN` saves it, with non-default registers."""
    out = tmp_path_factory.mktemp("run") / "r"
    chip = ChipConfig(layer_sizes=(30, 12, 2), lanes=4, beta=(0.85, 0.7), reset="zero")
    tc = TrainConfig(method="bptt", dataset="breast_cancer", steps=8, params={"epochs": 2}, chip=chip, seed=3)
    r = run_training(tc, progress=False)
    r.save(out)
    cfg = ChipConfig.from_dict(r.chip_config)
    assert cfg.threshold != (64, 64) and cfg.reset == "zero"          # a run the defaults would get wrong
    return out, r, cfg


def _hex(path):
    return [int(l, 16) for l in path.read_text().split()]


def _hex_of(words, bits):
    mask = (1 << bits) - 1
    return [w & mask for w in words]


def test_run_model_scores_the_runs_own_test_split(run, capsys):
    out, r, cfg = run
    assert main(["run", "--model", str(out), "--no-neurobench"]) == 0
    text = capsys.readouterr().out
    assert f"threshold={list(cfg.threshold)} reset=zero" in text
    acc = float(text.split("accuracy ")[1].split()[0])
    assert acc == pytest.approx(r.chip_accuracy, abs=1e-4)
    assert "latency per sample" in text and "synops" in text


def test_run_model_of_a_run_with_the_bias_input(tmp_path, capsys):
    """A run trained with the always-on bias input (mh's default) is scored on its test split with that input: it
    failed with "spikes: expected shape (batch, steps, 31), got (114, 16, 30)" for every default mh run."""
    tc = TrainConfig(method="mh", dataset="breast_cancer", steps=4, params={"iters": 10},
                     chip=ChipConfig(layer_sizes=(31, 4, 2), lanes=4), seed=1)
    r = run_training(tc, progress=False)
    assert r.train_config["bias_input"] is True
    r.save(tmp_path / "r")
    assert main(["run", "--model", str(tmp_path / "r"), "--no-neurobench"]) == 0
    text = capsys.readouterr().out
    assert "with the bias input" in text
    assert float(text.split("accuracy ")[1].split()[0]) == pytest.approx(r.chip_accuracy, abs=1e-4)
    # a --spikes file of the dataset's 30 features gets the always-on input too (a 31-wide one is taken as it is)
    x = np.random.default_rng(0).random((3, 4, 30)) < 0.3
    np.savez(tmp_path / "s30.npz", x=x)
    np.savez(tmp_path / "s31.npz", x=np.concatenate([x, np.ones((3, 4, 1), bool)], axis=2))
    outs, texts = [], []
    for f in ("s30", "s31"):
        assert main(["run", "--model", str(tmp_path / "r"), "--spikes", str(tmp_path / f"{f}.npz"),
                     "--no-neurobench"]) == 0
        texts.append(capsys.readouterr().out)
        outs.append([l for l in texts[-1].splitlines() if l.startswith("sample ")])
    assert outs[0] == outs[1] and outs[0]
    assert "s30.npz + the run's always-on bias input" in texts[0] and "bias" not in texts[1].split("\n")[1]
    np.savez(tmp_path / "s29.npz", x=x[:, :, :29])
    assert main(["run", "--model", str(tmp_path / "r"), "--spikes", str(tmp_path / "s29.npz")]) == 2
    assert "expected shape (batch, steps, 31), got (3, 4, 29)" in capsys.readouterr().err


def test_run_on_an_npz_of_spikes_with_labels(run, tmp_path, capsys):
    out, r, cfg = run
    x = np.random.default_rng(0).random((5, 6, 30)) < 0.3
    y = np.array([0, 1, 0, 1, 1])
    np.savez(tmp_path / "s.npz", x=x, y=y)
    assert main(["run", "--model", str(out) + ".json", "--spikes", str(tmp_path / "s.npz"), "--no-neurobench"]) == 0
    text = capsys.readouterr().out
    from sim.chip import make_chip
    chip = make_chip(cfg, "fast")
    chip.load(r.chip_weights)
    pred = chip.run(x).output.sum(1).argmax(1)
    assert f"accuracy {(pred == y).mean():.4f}" in text
    assert "5 samples x 6 steps" in text


@pytest.mark.parametrize("how", ["model", "config+weights", "weights beside RUN.json"])
def test_verilog_and_export_carry_the_runs_registers(run, tmp_path, how, capsys):
    out, r, cfg = run
    args = {"model": ["--model", str(out)],
            "config+weights": ["--config", f"{out}.json", "--weights", f"{out}.npz"],
            "weights beside RUN.json": ["--weights", f"{out}.npz"]}[how]
    assert main(["verilog", *args, "--out", str(tmp_path / "v")]) == 0
    written = ChipConfig.from_dict(json.loads((tmp_path / "v" / "config.json").read_text()))
    assert written == cfg
    assert _hex(tmp_path / "v" / "weights.hex") == _hex_of(weight_words(cfg, r.chip_weights), cfg.lanes * cfg.weight_bits)
    v = (tmp_path / "v" / "spikeloop_core.v").read_text()
    assert f"threshold_l0 = 15'h{cfg.threshold[0]:04x}" in v or f"threshold_l0 = 15'd{cfg.threshold[0]}" in v or \
        str(cfg.threshold[0]) in v
    assert main(["export", *args, "--out", str(tmp_path / "m.nir")]) == 0
    g = nir.read(tmp_path / "m.nir")
    for l in range(cfg.num_layers):
        lif = g.nodes[f"lif{l}"]
        assert np.all(lif.v_threshold == cfg.threshold[l])
        assert np.allclose(1 - 1e-4 / lif.tau, cfg.beta_effective[l], atol=1e-6)
        assert np.array_equal(g.nodes[f"fc{l}"].weight.T, r.chip_weights[l])
    cfg2, w2, _, _ = tn.import_nir(tmp_path / "m.nir", base=cfg, check_samples=0)
    assert cfg2.threshold == cfg.threshold and cfg2.reset == "zero" and cfg2.beta_int == cfg.beta_int


def test_weights_without_their_config_are_refused(run, tmp_path, capsys):
    out, r, cfg = run
    lone = tmp_path / "lone.npz"
    lone.write_bytes(out.with_suffix(".npz").read_bytes())
    for cmd in (["verilog", "--out", str(tmp_path / "v")], ["export", "--out", str(tmp_path / "m.nir")],
                ["synth", "--out", str(tmp_path / "s")], ["run"]):
        for extra in ([], ["--sizes", "30,12,2", "--lanes", "4"]):
            assert main([*cmd, "--weights", str(lone), *extra]) == 2
            err = capsys.readouterr().err
            assert err.count("\n") == 1 and "do not carry the thresholds" in err, err
    assert not (tmp_path / "v").exists() and not (tmp_path / "m.nir").exists()


@pytest.mark.filterwarnings("ignore:.*created but never used")
def test_imported_offsets_reach_verilog_and_synthesis(tmp_path, monkeypatch, capsys):
    cfg = ChipConfig(layer_sizes=(12, 10, 4), lanes=4, beta=(0.9, 0.8), threshold=(20, 15), reset="subtract")
    w = random_weights(cfg, 0, 0.3)
    off = [np.arange(10) - 5, np.array([0, 3, -2, 1])]
    src = tn.export_nir(tmp_path / "m.nir", cfg, w, off)
    assert main(["import", str(src), "--lanes", "4", "--check-samples", "0", "--out", str(tmp_path / "imp")]) == 0
    assert main(["verilog", "--model", str(tmp_path / "imp"), "--out", str(tmp_path / "v")]) == 0
    got = _hex(tmp_path / "v" / "threshold_offsets.hex")
    assert got == _hex_of(offset_words(cfg, off), cfg.lanes * cfg.threshold_offset_bits) and any(got)
    # synth builds the board top with the same offsets (the build itself is stubbed: no yosys in a unit test)
    import hw.synth
    seen = {}

    class Stop(Exception):
        pass

    def prepare(top, **kw):      # the board top handed to Yosys (hw.synth._board_plan)
        seen["top"] = top
        raise Stop

    real = hw.synth._platform

    def platform(target):
        p, opts = real(target)
        p.prepare = prepare
        return p, opts
    monkeypatch.setattr(hw.synth, "_platform", platform)
    with pytest.raises(hw.synth.SynthError):
        hw.synth.synthesize(cfg, "ecp5-25k", tmp_path / "s", w, threshold_offsets=off)
    assert all(np.array_equal(a, b) for a, b in zip(seen["top"].threshold_offsets, off))
    capsys.readouterr()
    assert main(["synth", "--model", str(tmp_path / "imp"), "--target", "ecp5-25k", "--out", str(tmp_path / "s2")]) == 1
    assert all(np.array_equal(a, b) for a, b in zip(seen["top"].threshold_offsets, off))


def test_nir_scnn_on_nmnist_event_files(tmp_path, capsys):
    """The whole path for the NIR paper's workload: N-MNIST binary event files (written here in the dataset's
    format), the SCNN graph imported from NIR, `run --model DIR --dataset nmnist`: accuracy, latency, counters."""
    from tests.train.test_data import write_nmnist
    rng = np.random.default_rng(0)
    for digit in range(10):
        d = tmp_path / "nmnist" / "Train" / str(digit)
        d.mkdir(parents=True)
        for k in range(6):
            n = 300
            ev = zip(rng.integers(0, 34, n), rng.integers(0, 34, n), rng.integers(0, 2, n),
                     np.sort(rng.integers(0, 300_000, n)))
            write_nmnist(d / f"{k:05d}.bin", [(int(a), int(b), int(c), int(t)) for a, b, c, t in ev])
    nir.write(tmp_path / "scnn.nir", tn.scnn_nmnist_graph(0))
    assert main(["import", str(tmp_path / "scnn.nir"), "--check-samples", "0", "--out", str(tmp_path / "imp")]) == 0
    capsys.readouterr()
    assert main(["run", "--model", str(tmp_path / "imp"), "--dataset", "nmnist", "--data-path",
                 str(tmp_path / "nmnist"), "--steps", "10", "--no-neurobench"]) == 0
    out = capsys.readouterr().out
    assert "nmnist test split" in out and "(2312, 4096, 4096, 512, 256, 10)" in out
    n = int(out.split("accuracy ")[1].split("(")[1].split("/")[1].split(";")[0])
    assert n >= 10 and "latency per sample" in out and "synops" in out


@pytest.mark.filterwarnings("ignore:.*created but never used")
def test_imported_biases_reach_verilog_synthesis_and_nir(tmp_path, monkeypatch, capsys):
    """A NIR graph with a bias on every layer: `import` keeps them (ChipConfig.bias in config.json), `verilog`
    writes `bias.hex` (the bias memory's power-up image) and `export` writes them back as the Affine biases."""
    from hw.bus import bias_words
    cfg = ChipConfig(layer_sizes=(12, 10, 4), lanes=4, beta=(0.9, 1.0), threshold=(20, 15), reset="zero",
                     bias=(tuple(range(-5, 5)), (7, -3, 0, 12)))
    w = random_weights(cfg, 0, 0.3)
    src = tn.export_nir(tmp_path / "m.nir", cfg, w)
    assert main(["import", str(src), "--lanes", "4", "--check-samples", "0", "--out", str(tmp_path / "imp")]) == 0
    assert json.loads((tmp_path / "imp" / "config.json").read_text())["bias"] == [list(b) for b in cfg.bias]
    assert main(["verilog", "--model", str(tmp_path / "imp"), "--out", str(tmp_path / "v")]) == 0
    got = _hex(tmp_path / "v" / "bias.hex")
    assert got == _hex_of(bias_words(cfg), cfg.lanes * cfg.membrane_bits) and any(got)
    assert "region 3 holds the bias memory" in (tmp_path / "v" / "ports.md").read_text()
    assert main(["export", "--model", str(tmp_path / "imp"), "--out", str(tmp_path / "back.nir")]) == 0
    g = nir.read(tmp_path / "back.nir")
    assert [np.asarray(g.nodes[f"fc{l}"].bias).tolist() for l in range(2)] == [list(b) for b in cfg.bias]
    import hw.synth
    seen = {}

    class Stop(Exception):
        pass

    def prepare(top, **kw):      # the board top handed to Yosys (hw.synth._board_plan)
        seen["top"] = top
        raise Stop

    real = hw.synth._platform

    def platform(target):
        p, opts = real(target)
        p.prepare = prepare
        return p, opts
    monkeypatch.setattr(hw.synth, "_platform", platform)
    capsys.readouterr()
    assert main(["synth", "--model", str(tmp_path / "imp"), "--target", "ecp5-25k", "--out", str(tmp_path / "s")]) == 1
    assert seen["top"].cfg.bias == cfg.bias           # the board's core powers up with them
