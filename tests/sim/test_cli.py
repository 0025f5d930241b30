"""``spikeloop run --spikes``: the input file's layouts (sim/cli.py)."""
import json

import numpy as np
import pytest

from hw.config import ChipConfig, ConfigError
from sim.cli import load_spikes
from train.nir_ref import chw_to_hwc
from tune.cli import main

CONV = ChipConfig(input_shape=(2, 5, 4), lanes=4, beta=1.0, threshold=(3, 2), reset="zero",
                  layers=({"kind": "conv", "channels": 3, "kernel": 3, "stride": 1, "padding": 1},
                          {"kind": "fc", "size": 4}))


def test_an_image_shaped_file_is_numbered_hwc_like_the_chip(tmp_path):
    """(batch, steps, C, H, W), as NIR, torch and tonic shape events, is reordered to the chip's HWC addresses,
    not flattened CHW (which put every pixel on the wrong input, silently)."""
    x = np.random.default_rng(0).random((3, 6, 2, 5, 4)) < 0.3
    np.savez(tmp_path / "chw.npz", x=x, y=np.arange(3))
    np.savez(tmp_path / "hwc.npz", x=chw_to_hwc(x.reshape(3, 6, -1), CONV.input_shape))
    a, y = load_spikes(str(tmp_path / "chw.npz"), CONV)
    b, _ = load_spikes(str(tmp_path / "hwc.npz"), CONV)
    assert a.shape == (3, 6, 40) and np.array_equal(a, b) and list(y) == [0, 1, 2]
    assert a[0, 0, (1 * 4 + 2) * 2 + 1] == x[0, 0, 1, 1, 2]           # (c, y, x) = (1, 1, 2) at (y*W + x)*C + c
    np.savez(tmp_path / "one.npz", x=x[0])
    one, _ = load_spikes(str(tmp_path / "one.npz"), CONV)
    assert np.array_equal(one, a[:1])                                   # one sample (steps, C, H, W)


def test_run_gives_the_same_outputs_for_both_layouts(tmp_path, capsys):
    x = np.random.default_rng(1).random((2, 8, 2, 5, 4)) < 0.4
    np.savez(tmp_path / "chw.npz", x=x)
    np.savez(tmp_path / "hwc.npz", x=chw_to_hwc(x.reshape(2, 8, -1), CONV.input_shape))
    (tmp_path / "c.json").write_text(json.dumps(CONV.to_dict()))
    outs = []
    for f in ("chw", "hwc"):
        assert main(["run", "--config", str(tmp_path / "c.json"), "--spikes", str(tmp_path / f"{f}.npz"),
                     "--density", "0.5", "--seed", "3", "--no-neurobench"]) == 0
        outs.append([l for l in capsys.readouterr().out.splitlines() if l.startswith("sample ")])
    assert outs[0] == outs[1] and outs[0]


@pytest.mark.parametrize("shape", [(2, 6, 2, 4, 5), (2, 6, 5, 4, 2), (2, 6, 2, 5)])
def test_an_image_of_the_wrong_shape_is_one_line(tmp_path, shape):
    np.savez(tmp_path / "x.npz", x=np.zeros(shape, bool))
    with pytest.raises(ConfigError, match=r"\(batch, steps, 2, 5, 4\) \(C, H, W\) or flat \(batch, steps, 40\)"):
        load_spikes(str(tmp_path / "x.npz"), CONV)


def test_a_dataset_of_another_input_size_is_one_line_naming_it(capsys):
    """--dataset whose samples do not fit the chip's input: named by the flag and both sizes (it was a
    "spikes: expected shape" message from inside the run, about an array the user never gave)."""
    assert main(["run", "--sizes", "8,4", "--dataset", "breast_cancer", "--no-neurobench"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "--dataset breast_cancer: " in err and "has 30 input neurons, the chip 8 " \
        "(layer_sizes[0])" in err, err


def test_a_config_file_with_whole_floats_runs(tmp_path, capsys):
    """lanes = 2.0 (JSON numbers are floats to many writers) runs as lanes 2; it was a TypeError traceback."""
    (tmp_path / "c.json").write_text(json.dumps({"layer_sizes": [8, 4], "lanes": 2.0, "weight_bits": 4.0}))
    assert main(["run", "--config", str(tmp_path / "c.json"), "--batch", "1", "--steps", "2",
                 "--no-neurobench"]) == 0, capsys.readouterr().err
    assert "lanes=2 w4/m16" in capsys.readouterr().out
