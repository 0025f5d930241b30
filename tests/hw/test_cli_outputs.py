"""Bad output paths, builds too large to elaborate and the train command's config handling, through the real
command line: one line on stderr, exit 2, before any work (nothing printed on stdout, nothing created)."""
import json

import numpy as np
import pytest

from hw.config import ChipConfig, ConfigError
from tests.tune.test_cli_errors import fails_cleanly, spikeloop


@pytest.fixture
def blocker(tmp_path):
    f = tmp_path / "a_file"
    f.write_text("x")
    return f


# -- one output-path check for every command that writes ---------------------------------------------------
@pytest.mark.parametrize("command, flag, where", [
    (["verilog"], "--out", "file"),
    (["verilog"], "--out", "under_file"),
    (["verilog"], "--out", "/proc"),
    (["verilog"], "--out", "/proc/spikeloop-out"),
    (["verilog"], "--out", "/sys/spikeloop-out"),
    (["verilog"], "--out", ""),
    (["synth"], "--out", "file"),
    (["synth"], "--out", "/proc/spikeloop-out"),
    (["dse", "--sizes", "4,3,2"], "--out", "under_file"),
    (["run", "--sizes", "2048,2048", "--batch", "64", "--steps", "400"], "--raster", "txt"),
    (["run"], "--raster", "dir"),
    (["run"], "--raster", "/proc/r.png"),
    (["run", "--backend", "amaranth"], "--vcd", "under_file"),
    (["train", "--method", "mh", "--iters", "100000"], "--out", "dir"),
    (["train", "--method", "mh", "--iters", "100000"], "--out", "/proc/self/result"),
])
def test_bad_output_path_is_refused_before_any_work(command, flag, where, blocker, tmp_path, cli):
    path = {"file": str(blocker), "under_file": str(blocker / "sub" / "x.vcd"), "dir": str(tmp_path),
            "txt": str(tmp_path / "raster.txt")}.get(where, where)
    before = sorted(tmp_path.rglob("*"))
    r = cli(*command, flag, path)
    fails_cleanly(r, flag)
    assert r.stdout == ""                       # refused before the run / build / training printed anything
    assert sorted(tmp_path.rglob("*")) == before


def test_synth_bad_out_exits_2_not_1(blocker, cli):
    r = cli("synth", "--sizes", "4,3,2", "--out", blocker)
    fails_cleanly(r, "--out", "is a file, not a directory")


@pytest.mark.parametrize("args, taken, kind", [
    ([], "ice40-up5k", "file"), ([], "ice40-up5k.json", "dir"),
    (["--seeds", "1-2"], "seed2", "file"), (["--seeds", "1-2"], "ice40-up5k-seeds.json", "dir")])
def test_synth_output_names_of_the_wrong_kind_are_refused_before_building(args, taken, kind, tmp_path, cli,
                                                                         monkeypatch):
    """hw.synth.output_paths: the build folder under a file failed at the build, the report path a directory
    failed after the whole synthesis; both are refused first, and the folders the check made are removed."""
    import hw.synth
    out = tmp_path / "out"
    out.mkdir()
    (out / taken).mkdir() if kind == "dir" else (out / taken).write_text("x")
    monkeypatch.setattr(hw.synth, "synthesize", lambda *a, **k: pytest.fail("a build started"))
    before = sorted(tmp_path.rglob("*"))
    r = cli("synth", "--sizes", "6,5,3", "--lanes", "2", *args, "--out", out)
    fails_cleanly(r, "--out", str(out / taken))
    assert r.stdout == "" and sorted(tmp_path.rglob("*")) == before


def test_check_writable_accepts_good_paths(tmp_path):
    from hw.cli import check_writable
    assert check_writable(tmp_path / "new" / "dir") == tmp_path / "new" / "dir"
    assert (tmp_path / "new" / "dir").is_dir() and not list((tmp_path / "new" / "dir").iterdir())
    assert check_writable(tmp_path / "r.PNG", "--raster", is_dir=False, suffixes=(".png",)) == tmp_path / "r.PNG"
    with pytest.raises(ConfigError, match="--raster .*expected a file ending in .png / .svg"):
        check_writable(tmp_path / "r.txt", "--raster", is_dir=False, suffixes=(".png", ".svg"))
    with pytest.raises(ConfigError, match="not a usable path"):
        check_writable("a\0b")


# -- size estimates before elaboration ---------------------------------------------------------------------
#: where a size refusal sends the user (the limits and how they are estimated)
SIZE_DOCS = "docs/guides/run_and_build.md#size-estimates"


@pytest.mark.parametrize("args, fragments", [
    (["verilog", "--sizes", "4096,4096"], ["layer_sizes=(4096, 4096)", SIZE_DOCS, "128 Mbit"]),
    (["verilog", "--sizes", "8192,8192", "--lanes", "64", "--weight-bits", "2"], [SIZE_DOCS]),
    (["synth", "--sizes", "784,128,10", "--target", "ecp5-12k"], ["ecp5-12k holds", SIZE_DOCS]),
    (["synth", "--sizes", "2048,1024"], ["ice40-up5k holds", SIZE_DOCS]),
    (["dse", "--sizes", "4096,4096"], ["ice40-up5k holds", SIZE_DOCS]),
    (["dse", "--sizes", "2048,1024", "--target", "ecp5-25k", "ecp5-85k"], ["holds", SIZE_DOCS]),
    (["run", "--backend", "amaranth", "--sizes", "4096,4096", "--batch", "1", "--steps", "1"],
     [SIZE_DOCS]),
    (["run", "--backend", "icarus", "--sizes", "16384,16384", "--batch", "1", "--steps", "1"],
     [SIZE_DOCS]),
    (["train", "--sizes", "30,65536,65536,2", "--iters", "10"], ["needs about", "GiB"]),
])
def test_oversized_builds_and_runs_are_refused_first(args, fragments, tmp_path, cli):
    r = cli(*args, "--out" if args[0] in ("verilog", "synth", "dse") else "--seed",
            tmp_path / "out" if args[0] in ("verilog", "synth", "dse") else "0")
    fails_cleanly(r, *fragments)
    assert not (tmp_path / "out").exists()


def test_size_estimate_is_a_lower_bound_that_passes_what_builds():
    from hw.export import MAX_ELABORATION_BITS, check_elaboration_size, memory_bits
    from hw.synth import PART_STORAGE_BITS, TARGETS, size_problem
    assert set(PART_STORAGE_BITS) == set(TARGETS) and max(PART_STORAGE_BITS.values()) < MAX_ELABORATION_BITS
    # the designs the docs report as built: the default chip everywhere, 784-128-10 on the UP5K and the 25F
    for t in TARGETS:
        assert size_problem(ChipConfig(), t) is None
    for t in ("ice40-up5k", "ecp5-25k"):
        assert size_problem(ChipConfig(layer_sizes=(784, 128, 10), lanes=16), t) is None
    cfg = ChipConfig(layer_sizes=(40, 30, 5), lanes=4, weight_bits=6)
    b = memory_bits(cfg)
    assert b["weights"] >= (40 * 30 + 30 * 5) * 6 and b["total"] == b["weights"] + b["membranes"]
    check_elaboration_size(cfg)
    with pytest.raises(ConfigError, match=SIZE_DOCS):
        check_elaboration_size(ChipConfig(layer_sizes=(4096, 4096)))


# -- train: --sizes with another number of layers, and a --config file's [data] ------------------------------
# (in this process: the command line's own entry point, without a new interpreter's imports per call)
def in_process(capsys, *args):
    from tune.cli import main
    code = main([str(a) for a in args])
    out, err = capsys.readouterr()
    if code == 2:
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    return code, out, err


def test_train_sizes_may_change_the_number_of_layers(tmp_path, capsys):
    # (MH's default bias input would add a 31st input neuron: this test is about the layer count)
    code, out, err = in_process(capsys, "train", "--sizes", "30,16,8,2", "--method", "mh", "--iters", "10",
                         "--train-size", "40", "--bias-input", "off")
    assert code == 0, err[-2000:]
    assert "chip (30, 16, 8, 2)" in out and "beta=[0.8984, 0.8984, 0.8984]" in out
    # a config file's per-layer values that are all equal follow the new count; different ones cannot
    cfg = tmp_path / "chip.json"
    cfg.write_text(json.dumps({"layer_sizes": [30, 16, 2], "beta": [0.8, 0.9], "threshold": [40, 50]}))
    code, out, err = in_process(capsys, "train", "--config", cfg, "--sizes", "30,16,8,2", "--iters", "10",
                         "--bias-input", "off")
    assert code == 2 and "beta=[0.8, 0.9]" in err and "3 layers" in err and "--beta" in err, err
    # ... but the thresholds are not used by training (the quantiser sets them from --theta), so they need not
    # follow, and --threshold is refused (issue #19)
    code, out, err = in_process(capsys, "train", "--config", cfg, "--sizes", "30,16,8,2", "--beta", "0.8",
                         "--iters", "10", "--train-size", "40", "--bias-input", "off")
    assert code == 0, err[-2000:]
    assert "chip (30, 16, 8, 2)" in out and "beta=[0.8008, 0.8008, 0.8008]" in out
    code, out, err = in_process(capsys, "train", "--config", cfg, "--threshold", "45", "--iters", "10")
    assert code == 2 and "--threshold" in err and "--theta" in err, err


def test_load_chip_per_layer_fields_follow_the_layer_count():
    from hw.cli import load_chip
    base = ChipConfig(layer_sizes=(8, 6, 4), beta=0.7, threshold=(9, 9))
    c = load_chip(None, {"layer_sizes": (8, 6, 5, 4, 3)}, base=base)
    assert c.beta == (0.7,) * 4 and c.threshold == (9,) * 4
    conv = load_chip(None, {"input_shape": (1, 8, 8), "layers": [{"kind": "conv", "channels": 2, "kernel": 3},
                                                                 {"kind": "pool", "size": 2},
                                                                 {"kind": "fc", "size": 10}]},
                    base=ChipConfig())
    assert conv.num_layers == 2 and conv.beta == (0.9, 0.9)
    with pytest.raises(ConfigError, match=r"beta=\[0.5, 0.6\].*2 layers.*gives 1 layers"):
        load_chip(None, {"layer_sizes": (8, 4)}, base=ChipConfig(layer_sizes=(8, 6, 4), beta=(0.5, 0.6)))


def test_train_config_honours_data_and_faults_tables(tmp_path, capsys):
    toml = tmp_path / "conv.toml"
    toml.write_text("""
[data]
dataset = "digits"
steps = 3
train_size = 50

[faults]
threshold_mismatch = 0.25

[chip]
input_shape = [1, 8, 8]
layers = [{kind = "conv", channels = 2, kernel = 3, padding = 1}, {kind = "pool", size = 2}, {kind = "fc", size = 10}]
""")
    code, out, err = in_process(capsys, "train", "--config", toml, "--method", "mh", "--iters", "10", "--out", tmp_path / "r")
    assert code == 0, err[-2000:]
    assert "mh on digits" in out
    saved = json.loads((tmp_path / "r.json").read_text())["train_config"]
    assert saved["dataset"] == "digits" and saved["steps"] == 3 and saved["train_size"] == 50
    assert saved["faults"]["threshold_mismatch"] == 0.25
    # a flag overrides the file (and the conv chip's 64 inputs are then refused for the 30 features)
    code, out, err = in_process(capsys, "train", "--config", toml, "--dataset", "breast_cancer", "--iters", "10")
    assert code == 2 and "layer_sizes[0]=64" in err and "30 input neurons" in err, err
    # a typo in [data] is named
    toml.write_text('[data]\ndataset = "digits"\nstep = 3\n')
    code, out, err = in_process(capsys, "train", "--config", toml, "--iters", "10")
    assert code == 2 and "[data]" in err and "step" in err, err
    # a study's config (only [data] and other study sections) trains on the dataset's default chip
    toml.write_text('[study]\nname = "x"\n[data]\ndataset = "digits"\nsteps = 2\ntrain_size = 50\n')
    code, out, err = in_process(capsys, "train", "--config", toml, "--iters", "10")
    assert code == 0, err[-2000:]
    assert "chip (65, 64, 10)" in out and "mh on digits" in out        # 64 pixels + mh's bias input
    # ... also with a [chip] table that gives only widths and lanes (the network: the dataset's default)
    toml.write_text('[data]\ndataset = "digits"\nsteps = 2\ntrain_size = 50\n[chip]\nlanes = 4\nweight_bits = 6\n')
    code, out, err = in_process(capsys, "train", "--config", toml, "--iters", "10")
    assert code == 0, err[-2000:]
    assert "chip (65, 64, 10) lanes=4 w6/m16" in out


# -- local dataset files that are not what they should be --------------------------------------------------
def test_svhn_path_that_is_not_a_cropped_digits_mat(tmp_path, capsys):
    import scipy.io
    text = tmp_path / "x.txt"
    text.write_text("not a mat file\n")
    noise = tmp_path / "noise.mat"
    noise.write_bytes(np.random.default_rng(0).integers(0, 256, 4000, dtype=np.uint8).tobytes())
    empty = tmp_path / "empty.mat"
    scipy.io.savemat(empty, {"X": np.zeros((32, 32, 3, 0), np.uint8), "y": np.zeros((0, 1))})
    labels = tmp_path / "labels.mat"
    scipy.io.savemat(labels, {"X": np.zeros((32, 32, 3, 2), np.uint8), "y": np.array([[11], [3]])})
    few = tmp_path / "few.mat"
    scipy.io.savemat(few, {"X": np.zeros((32, 32, 3, 3), np.uint8), "y": np.array([[1], [2], [3]])})
    for path, fragment in ((text, "not a readable MATLAB .mat"), (noise, "not a readable MATLAB .mat"),
                           (tmp_path, "is not a file"), (empty, "holds no samples"),
                           (labels, "labels y must be integers 0..10"), (few, "too few for a stratified")):
        code, out, err = in_process(capsys, "train", "--dataset", "svhn", "--data-path", path, "--iters", "10")
        assert code == 2 and fragment in err, err


def test_a_write_that_fails_midway_is_one_line(tmp_path):
    (tmp_path / "v" / "spikeloop_core.v").mkdir(parents=True)          # a directory where a file goes
    fails_cleanly(spikeloop("verilog", "--sizes", "8,4", "--out", tmp_path / "v"), "--out", "writing failed",
                  "spikeloop_core.v")


@pytest.mark.parametrize("layout", ["run", "folder"])
def test_a_config_with_its_weights_beside_it_says_they_are_not_used(tmp_path, capsys, layout):
    """``verilog --config RUN.json`` builds the run's thresholds, betas and reset but not its weights (the memories
    power up zero): one note names the weights beside the config and the --model that takes both."""
    from hw.cli import load_model_arguments
    import argparse
    cfg = ChipConfig(layer_sizes=(6, 4), lanes=2, threshold=(9,), beta=(0.75,), reset="zero")
    if layout == "run":
        config, weights = tmp_path / "r.json", tmp_path / "r.npz"
        config.write_text(json.dumps({"method": "bptt", "chip_config": cfg.to_dict()}))
    else:
        config, weights = tmp_path / "config.json", tmp_path / "weights.npz"
        config.write_text(json.dumps(cfg.to_dict()))
    ns = argparse.Namespace(model=None, config=str(config), weights=None)
    got, w, _, _ = load_model_arguments(ns, need_weights=False)
    assert got.threshold == (9,) and w is None and capsys.readouterr().err == ""      # nothing beside it yet
    np.savez(weights, w0=np.ones((6, 4), np.int64))
    load_model_arguments(ns, need_weights=False)
    err = capsys.readouterr().err.strip()
    model = tmp_path / "r" if layout == "run" else tmp_path
    assert err.splitlines() == [f"note: --config {config}: the weights beside it ({weights}) are not used; "
                                f"--model {model} takes both"]
