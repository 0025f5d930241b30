"""train.data without scikit-learn: its bundled datasets read directly and its stratified split written out give
exactly what scikit-learn's loaders and train_test_split give, and training imports no scikit-learn."""
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hw.config import ConfigError
from train.data import DATASETS, split_dataset, stratified_split

sklearn = pytest.importorskip("sklearn")


@pytest.mark.parametrize("name", ["digits", "breast_cancer"])
def test_bundled_files_as_sklearn_loads_them(name):
    from sklearn import datasets
    x, y = DATASETS[name].load(None, 16)
    d = getattr(datasets, f"load_{name}")()
    assert x.dtype == d.data.dtype and y.dtype == d.target.dtype
    assert np.array_equal(x, d.data) and np.array_equal(y, d.target)


@settings(max_examples=150, deadline=None)
@given(counts=st.lists(st.integers(2, 40), min_size=2, max_size=12), seed=st.integers(0, 2**31 - 1),
       frac=st.floats(0.05, 0.6), shuffle_seed=st.integers(0, 1000))
def test_split_is_sklearns(counts, seed, frac, shuffle_seed):
    from sklearn.model_selection import train_test_split
    y = np.random.default_rng(shuffle_seed).permutation(np.repeat(np.arange(len(counts)), counts))
    idx = np.arange(len(y))
    try:
        want = train_test_split(idx, test_size=frac, random_state=seed, stratify=y)
    except ValueError:
        with pytest.raises(ValueError):
            stratified_split(y, seed, test_frac=frac)
        return
    got = stratified_split(y, seed, test_frac=frac)
    assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])
    size = max(len(counts), len(y) // 3)
    if size < len(y) - len(counts):
        want = train_test_split(idx, train_size=size, random_state=seed, stratify=y)
        got = stratified_split(y, seed, train_size=size)
        assert np.array_equal(got[0], want[0]) and np.array_equal(got[1], want[1])


@pytest.mark.parametrize("name,seed,train_size", [("digits", 0, None), ("digits", 7, 200), ("breast_cancer", 3, None),
                                                  ("breast_cancer", 31337, 50)])
def test_dataset_split_as_before(name, seed, train_size):
    """The whole split (three parts, the train_size subset, standardised) as the scikit-learn calls made it."""
    from sklearn.model_selection import train_test_split
    x, y = DATASETS[name].load(None, 16)
    s = split_dataset(x, y, seed=seed, train_size=train_size, name=name)
    xr, xt, yr, yt = train_test_split(x, y, test_size=0.2, random_state=seed, stratify=y)
    xtr, xv, ytr, yv = train_test_split(xr, yr, test_size=0.25, random_state=seed + 1, stratify=yr)
    if train_size is not None:
        xtr, _, ytr, _ = train_test_split(xtr, ytr, train_size=train_size, random_state=seed + 2, stratify=ytr)
    mean, std = xtr.mean(0), xtr.std(0)
    std = np.where(std > 0, std, 1.0)
    for a, b in ((s.x_train, (xtr - mean) / std), (s.x_val, (xv - mean) / std), (s.x_test, (xt - mean) / std),
                 (s.y_train, ytr), (s.y_val, yv), (s.y_test, yt)):
        assert np.array_equal(a, b)


def test_too_small_a_class_is_one_line():
    with pytest.raises(ConfigError, match="too few for a stratified"):
        split_dataset(np.zeros((7, 2)), np.array([0, 0, 0, 1, 1, 1, 2]), name="tiny")


def test_training_imports_neither_dynamo_nor_sklearn():
    """A BPTT training run in a fresh interpreter imports neither torch's compiler (torch.optim.Adam would:
    train.optim.Adam) nor scikit-learn (train.data reads its files and splits by itself): a second or more of
    CPU time each at the head of every command that trains."""
    code = ("import sys\n"
            "from train.config import TrainConfig\n"
            "from train.run import run_training\n"
            "run_training(TrainConfig(method='bptt', dataset='digits', params={'epochs': 1}), progress=False)\n"
            "print(sorted(m for m in sys.modules\n"
            "             if m.split('.')[0] == 'sklearn' or m.startswith('torch._dynamo'))[:3])\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_train_size_leaving_fewer_than_a_class_out_is_one_line():
    """A train_size that leaves fewer samples out than there are classes cannot be drawn stratified: the allowed
    range says so (it was a ValueError traceback for train_size in len(train) - classes + 1 .. len(train) - 1)."""
    x, y = np.random.default_rng(0).normal(size=(100, 3)), np.arange(100) % 4
    n_train = len(split_dataset(x, y, seed=0).y_train)
    for size in (n_train - 3, n_train - 1):
        with pytest.raises(ConfigError, match=rf"train_size={size}: allowed range is 4\.\.{n_train - 4} or {n_train}"):
            split_dataset(x, y, seed=0, train_size=size)
    assert len(split_dataset(x, y, seed=0, train_size=n_train - 4).y_train) == n_train - 4
    assert len(split_dataset(x, y, seed=0, train_size=n_train).y_train) == n_train


def test_the_largest_seeds_split():
    """Every seed the command line takes (0..2**32-1) splits: the validation and subset draws' seeds (seed + 1,
    seed + 2) wrap around 2**32 instead of failing as 'too few for a stratified split'."""
    x, y = np.random.default_rng(0).normal(size=(60, 3)), np.arange(60) % 3
    for seed in (2**32 - 2, 2**32 - 1):
        s = split_dataset(x, y, seed=seed, train_size=20)
        assert len(s.y_train) == 20 and len(s.y_val) == 12 and len(s.y_test) == 12


@pytest.mark.parametrize("labels,match", [([-1, 1], "got -1"), ([0.2, 0.7], "got 0.2"), (["a", "b"], "dtype"),
                                          (["0", "1"], "dtype")])
def test_labels_that_are_not_class_indices_are_one_line(labels, match):
    """A negative label would silently be trained as the last class (rate_targets indexes with it), fractional
    ones were truncated into one class, strings gave a ValueError traceback."""
    with pytest.raises(ConfigError, match=f"labels must be class indices.*{match}"):
        split_dataset(np.zeros((40, 2)) + np.arange(40)[:, None], np.array(labels * 20), name="odd")
    s = split_dataset(np.arange(80.0).reshape(40, 2), np.array([0.0, 3.0] * 20))
    assert s.n_classes == 4 and s.y_train.dtype == np.int64
