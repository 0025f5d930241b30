"""Datasets, splits, encoders and the local-file loaders (on small files generated here)."""
import numpy as np
import pytest
from scipy.io import savemat

from hw.config import ConfigError
from train.data import load_dataset, split_dataset
from train.encode import delta_timeseries, encode
from train.loaders import load_nmnist, load_svhn, read_nmnist_events


def test_split_is_stratified_disjoint_seeded_and_standardised_on_train_only():
    rng = np.random.default_rng(0)
    n = 300
    y = (rng.random(n) < 0.3).astype(int)
    raw = np.column_stack([np.arange(n), rng.normal(5, 3, n), rng.normal(-2, 0.5, n)])   # column 0: row id
    s = split_dataset(raw, y, seed=4)
    assert np.array_equal(s.x_test, split_dataset(raw, y, seed=4).x_test)               # seeded
    assert not np.array_equal(s.x_test, split_dataset(raw, y, seed=5).x_test)
    for part_y in (s.y_train, s.y_val, s.y_test):                                         # stratified
        assert abs(part_y.mean() - y.mean()) < 0.06
    # recover row ids: column 0 went through one affine map (id - mu)/sd in every part
    z = np.concatenate([s.x_train[:, 0], s.x_val[:, 0], s.x_test[:, 0]])
    sd = 1.0 / np.diff(np.sort(z)).min()
    ids = [np.rint((part[:, 0] - z.min()) * sd).astype(int) for part in (s.x_train, s.x_val, s.x_test)]
    assert sorted(np.concatenate(ids).tolist()) == list(range(n))                         # disjoint, complete
    train_raw = raw[ids[0]]
    mean, std = train_raw.mean(0), train_raw.std(0)
    for part, idx in zip((s.x_train, s.x_val, s.x_test), ids):
        assert np.allclose(part, (raw[idx] - mean) / std)                                  # train stats only
    assert abs(s.x_val.mean(0)).max() > 1e-3                                               # not its own stats


def test_train_size_and_bad_data():
    s = load_dataset("breast_cancer", seed=1, train_size=40)
    assert len(s.y_train) == 40 and set(s.y_train) == {0, 1}
    with pytest.raises(ConfigError, match="train_size=5000: allowed range is 2.."):
        load_dataset("breast_cancer", train_size=5000)
    with pytest.raises(ConfigError, match="NaN"):
        split_dataset(np.array([[np.nan, 1.0]] * 10), np.array([0, 1] * 5))
    with pytest.raises(ConfigError, match="non-empty"):
        split_dataset(np.zeros((0, 3)), np.zeros(0))
    with pytest.raises(ConfigError, match="dataset='mnist'"):
        load_dataset("mnist")
    d = load_dataset("digits")
    assert d.n_features == 64 and d.n_classes == 10


def test_rate_encoder_matches_probability():
    x = np.array([[-3.0, 0.0, 3.0]])
    s = encode(np.repeat(x, 400, 0), 50, "rate", seed=0)
    assert np.allclose(s.mean(axis=(0, 1)), [0.00135, 0.5, 0.99865], atol=0.01)


def test_latency_encoder_single_spike_at_expected_step():
    s = encode(np.array([[0.0, 10.0, -10.0]]), 11, "latency")
    assert s[0, :, 0].sum() == 1 and s[0, 5, 0]        # p = 0.5 -> step 5 of 0..10
    assert s[0, 0, 1]                                  # p = 1 -> step 0
    assert s[0, :, 2].sum() == 0                       # p < min_p -> silent


def test_delta_encoders():
    s = encode(np.array([[0.2, 0.5, 0.95]]), 20, "delta", squash=False, threshold=0.1)
    assert s[0].sum(0).tolist() == [2, 5, 9]
    ts = np.array([[[0.0], [0.5], [0.5], [0.0]]])
    d = delta_timeseries(ts, 0.3)
    assert d[0, :, 0].tolist() == [False, True, False, False] and d[0, :, 1].tolist() == [False, False, False, True]
    with pytest.raises(ConfigError, match="encoder='poisson2'"):
        encode(np.zeros((1, 2)), 5, "poisson2")


def write_nmnist(path, events):
    b = bytearray()
    for x, y, p, t in events:
        b += bytes([x, y, (p << 7) | (t >> 16), (t >> 8) & 0xFF, t & 0xFF])
    path.write_bytes(bytes(b))


def test_nmnist_loader(tmp_path):
    for digit in (3, 7):
        (tmp_path / "Train" / str(digit)).mkdir(parents=True)
    write_nmnist(tmp_path / "Train" / "3" / "00001.bin", [(1, 2, 0, 10), (33, 33, 1, 299_999)])
    write_nmnist(tmp_path / "Train" / "7" / "00002.bin", [(0, 0, 1, 150_000)])
    ev = read_nmnist_events(tmp_path / "Train" / "3" / "00001.bin")
    assert ev["x"].tolist() == [1, 33] and ev["p"].tolist() == [0, 1] and ev["t"].tolist() == [10, 299_999]
    x, y = load_nmnist(tmp_path, steps=10)
    assert x.shape == (2, 10, 2312) and y.tolist() == [3, 7]
    # HWC numbering (y*34 + x)*2 + p, the input order of a conv chip with input_shape [2, 34, 34]
    assert x[0, 0, (2 * 34 + 1) * 2] and x[0, 9, (33 * 34 + 33) * 2 + 1] and x[0].sum() == 2
    assert x[1, 5, 1] and x[1].sum() == 1
    (tmp_path / "bad.bin").write_bytes(b"123")
    with pytest.raises(ConfigError, match="not a multiple of 5"):
        read_nmnist_events(tmp_path / "bad.bin")
    with pytest.raises(ConfigError, match="no folder"):
        load_nmnist(tmp_path, split="Test")


def test_svhn_loader(tmp_path):
    X = np.zeros((32, 32, 3, 3), np.uint8)
    X[:, :, :, 1] = 255
    X[:16, :, 0, 2] = 255
    savemat(tmp_path / "train_32x32.mat", {"X": X, "y": np.array([[10], [3], [1]])})
    x, y = load_svhn(tmp_path / "train_32x32.mat", pool=2)
    assert x.shape == (3, 256) and y.tolist() == [0, 3, 1]
    assert x[0].max() == 0 and np.allclose(x[1], 1.0)
    assert np.isclose(x[2].mean(), 1 / 6)
    savemat(tmp_path / "bad.mat", {"X": np.zeros((8, 8)), "y": np.zeros((1, 1))})
    with pytest.raises(ConfigError, match="expected"):
        load_svhn(tmp_path / "bad.mat")


def test_registered_local_datasets_load_through_load_dataset(tmp_path):
    """nmnist and svhn are in the registry and reach training through load_dataset(path=...)."""
    from train.common import Encoded
    from train.data import DATASETS, load_dataset
    rng = np.random.default_rng(0)
    for digit in range(2):
        (tmp_path / "nm" / "Train" / str(digit)).mkdir(parents=True)
        for k in range(10):
            write_nmnist(tmp_path / "nm" / "Train" / str(digit) / f"{k:05d}.bin",
                         [(int(rng.integers(34)), int(rng.integers(34)), digit, int(t))
                          for t in sorted(rng.integers(0, 299_999, 20))])
    split = load_dataset("nmnist", seed=0, path=tmp_path / "nm", steps=8)
    assert split.spikes and split.x_train.shape[1:] == (8, 2312) and split.n_classes == 2
    data = Encoded.from_split(split, steps=8)
    assert data.x_train.dtype == bool and len(data.x_train) + len(data.x_val) + len(data.x_test) == 20
    with pytest.raises(ConfigError, match="steps=5: the nmnist spike trains have 8 steps"):
        Encoded.from_split(split, steps=5)
    X = rng.integers(0, 256, (32, 32, 3, 30)).astype(np.uint8)
    savemat(tmp_path / "svhn.mat", {"X": X, "y": (np.arange(30) % 3 + 1)[:, None]})
    split = load_dataset("svhn", path=tmp_path / "svhn.mat")
    assert split.n_features == 64 and not split.spikes
    with pytest.raises(ConfigError, match="reads local files"):
        load_dataset("svhn")
    with pytest.raises(ConfigError, match="takes no path"):
        load_dataset("digits", path=tmp_path)
    with pytest.raises(ConfigError, match=r"dataset='mnist': allowed values are \['breast_cancer'"):
        load_dataset("mnist")
    assert set(DATASETS) == {"breast_cancer", "digits", "mnist1d", "nmnist", "svhn", "svhn32", "svhn_rgb"}
    # image datasets declare their (C, H, W); the features are HWC-flattened
    split = load_dataset("svhn_rgb", path=tmp_path / "svhn.mat")
    assert split.shape == (3, 32, 32) and split.n_features == 3072
    raw = X[..., 0].astype(float) / 255                              # (32, 32, 3) of sample 0, HWC
    x0 = load_svhn(tmp_path / "svhn.mat", colour=True)[0][0]
    assert np.allclose(x0, raw.reshape(-1))
    assert load_dataset("svhn32", path=tmp_path / "svhn.mat").n_features == 1024


def test_mnist1d_regenerates_offline_as_1x1x40_signals():
    from train.data import load_dataset
    split = load_dataset("mnist1d", seed=0)
    assert split.shape == (1, 1, 40) and split.n_features == 40 and split.n_classes == 10
    assert len(split.x_train) + len(split.x_val) + len(split.x_test) == 5000


def test_chip_input_shape_must_match_the_dataset():
    from hw.config import ChipConfig
    from train.config import TrainConfig
    conv = ChipConfig(input_shape=(1, 8, 8), layers=({"kind": "conv", "channels": 2, "kernel": 3},
                                                     {"kind": "fc", "size": 10}))
    TrainConfig(method="bptt", dataset="digits", chip=conv)
    with pytest.raises(ConfigError, match=r"chip.input_shape=\[1, 8, 8\]: dataset 'mnist1d' has images of shape "
                                          r"\[1, 1, 40\]"):
        TrainConfig(method="bptt", dataset="mnist1d", chip=conv)
    flat = ChipConfig(input_shape=(2, 4, 8), layers=({"kind": "fc", "size": 10},))
    with pytest.raises(ConfigError, match=r"chip.input_shape=\[2, 4, 8\]: dataset 'digits'"):
        TrainConfig(method="bptt", dataset="digits", chip=flat)
    TrainConfig(method="bptt", dataset="breast_cancer", chip=ChipConfig(input_shape=(1, 1, 30), layers=(
        {"kind": "conv", "channels": 2, "kernel": 3}, {"kind": "fc", "size": 2})))
