"""Datasets that work offline, split and standardised the way an experiment needs.

``load_dataset(name, seed, train_size)`` returns a :class:`Split` with stratified, seeded
train/validation/test parts; features are standardised with the training part's mean and std only.
:data:`DATASETS` is the registry: ``breast_cancer`` (569x30) and ``digits`` (1797x64) from scikit-learn, and
a user's local ``nmnist`` (a folder with ``Train/<digit>/*.bin``; already spikes, binned into ``steps``) and
``svhn`` (a cropped-digits ``.mat`` file, grey-scale pooled 4x4 to 64 features; ``svhn32``: grey 32x32,
``svhn_rgb``: colour 3x32x32) through :mod:`train.loaders`, which need ``path``; ``mnist1d`` (PyPI
``mnist1d``, regenerated offline: 5000 signals of 40 samples, 10 classes).

Every image dataset declares its ``shape`` (C, H, W) and delivers its features flattened in HWC order
(address ``(y*W + x)*C + c``), the order of a conv chip's input (``ChipConfig.input_shape``); a chip whose
``input_shape`` differs is refused by :func:`check_shape`.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from hw.config import ConfigError


@dataclass(frozen=True)
class Dataset:
    """A registered dataset. ``load(path, steps)`` gives ``(x, y)``: features ``(samples, features)`` or, for
    ``spikes`` datasets, spike trains ``(samples, steps, neurons)`` that need no encoder."""
    name: str
    description: str
    load: Callable[[str | None, int], tuple[np.ndarray, np.ndarray]]
    needs_path: bool = False
    spikes: bool = False
    shape: tuple[int, int, int] | None = None     # (C, H, W) of an image/signal dataset (features in HWC order)


#: scikit-learn's bundled data files, read here directly: importing scikit-learn (its estimators' base, SciPy's
#: statistics) costs about a second of CPU time at the head of every command that trains
_SKLEARN_FILES = {"digits": "digits.csv.gz", "breast_cancer": "breast_cancer.csv"}


def _sklearn_file(name: str) -> Path | None:
    """scikit-learn's data file of dataset ``name``, found without importing scikit-learn; None if not there."""
    import importlib.util
    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        return None
    f = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data" / _SKLEARN_FILES[name]
    return f if f.is_file() else None


def _sklearn(name: str):
    """Dataset ``name`` as scikit-learn's ``load_<name>()`` gives it (the same arrays, dtypes included:
    tests/train/test_data_fast.py), read from its bundled file; through scikit-learn where the file is not found."""
    def load(path, steps):
        f = _sklearn_file(name)
        if f is None:
            from sklearn import datasets
            d = getattr(datasets, f"load_{name}")()
            return d.data, d.target
        if name == "digits":                # rows of 64 pixel values and the label
            data = np.loadtxt(f, delimiter=",")
            return data[:, :-1], data[:, -1].astype(int, copy=False)
        with open(f) as fh:                 # a header "samples,features,names...", then features and the label
            n, m = (int(v) for v in fh.readline().split(",")[:2])
            data = np.loadtxt(fh, delimiter=",", ndmin=2)
        if data.shape != (n, m + 1):
            raise ConfigError(f"dataset={name!r}: {f} holds {data.shape}, its header says {n} x {m + 1}")
        return data[:, :m].astype(np.float64), data[:, m].astype(int)
    return load


def _nmnist(path, steps):
    from train.loaders import load_nmnist
    return load_nmnist(path, "Train", steps=steps)


def _svhn(pool: int = 4, colour: bool = False):
    def load(path, steps):
        from train.loaders import load_svhn
        return load_svhn(path, pool=pool, colour=colour)
    return load


def _mnist1d(path, steps):
    """MNIST-1D (Greydanus 2020) with its default arguments, regenerated from its templates (no download):
    the package's own train and test parts joined (our split re-splits them, stratified and seeded)."""
    try:
        from mnist1d.data import get_dataset_args, make_dataset
    except ImportError as e:
        raise ConfigError("dataset='mnist1d': needs the mnist1d package (pip install mnist1d)") from e
    d = make_dataset(get_dataset_args())
    return np.concatenate([d["x"], d["x_test"]]), np.concatenate([d["y"], d["y_test"]])


DATASETS: dict[str, Dataset] = {d.name: d for d in (
    Dataset("breast_cancer", "scikit-learn breast cancer, 569 samples x 30 features, 2 classes",
            _sklearn("breast_cancer")),
    Dataset("digits", "scikit-learn 8x8 digits, 1797 samples x 64 features (1x8x8), 10 classes",
            _sklearn("digits"), shape=(1, 8, 8)),
    Dataset("mnist1d", "MNIST-1D (PyPI mnist1d, regenerated offline), 5000 signals x 40 (1x1x40), 10 classes",
            _mnist1d, shape=(1, 1, 40)),
    Dataset("nmnist", "local N-MNIST event files (path: the folder holding Train/); 2312 input neurons (2x34x34)",
            _nmnist, needs_path=True, spikes=True, shape=(2, 34, 34)),
    Dataset("svhn", "local SVHN cropped digits (path: a .mat file); 8x8 grey-scale pooled, 64 features (1x8x8)",
            _svhn(), needs_path=True, shape=(1, 8, 8)),
    Dataset("svhn32", "local SVHN cropped digits (path: a .mat file); grey-scale 1x32x32, 1024 features",
            _svhn(pool=1), needs_path=True, shape=(1, 32, 32)),
    Dataset("svhn_rgb", "local SVHN cropped digits (path: a .mat file); colour 3x32x32, 3072 features (HWC)",
            _svhn(pool=1, colour=True), needs_path=True, shape=(3, 32, 32)),
)}


def check_shape(dataset: str, input_shape, where: str = "chip.input_shape") -> None:
    """A chip's ``input_shape`` must be the dataset's declared (C, H, W) (its features are HWC-flattened);
    datasets without a shape (tables of features) accept any shape whose C*H*W matches their width."""
    shape = DATASETS[dataset].shape if dataset in DATASETS else None
    if input_shape is not None and shape is not None and tuple(input_shape) != shape:
        raise ConfigError(f"{where}={list(input_shape)}: dataset {dataset!r} has images of shape {list(shape)} "
                          f"(C, H, W); use that")


@dataclass
class Split:
    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    name: str = ""
    spikes: bool = False          # x are spike trains (samples, steps, neurons), not features
    shape: tuple | None = None    # (C, H, W) of image datasets (features in HWC order)

    @property
    def n_features(self) -> int:
        return self.x_train.shape[-1]


def check_xy(x: np.ndarray, y: np.ndarray, what: str = "data", spikes: bool = False) -> None:
    """Reject empty, NaN/inf or mismatched data before any training starts."""
    if x.ndim != (3 if spikes else 2) or len(x) == 0:
        shape = "(samples, steps, neurons)" if spikes else "(samples, features)"
        raise ConfigError(f"{what}: expected a non-empty {shape} array, got shape {x.shape}")
    if len(y) != len(x):
        raise ConfigError(f"{what}: {len(x)} samples but {len(y)} labels")
    if not np.all(np.isfinite(x)):
        raise ConfigError(f"{what}: contains NaN or infinite values")


def _approximate_mode(counts: np.ndarray, draws: int, rng: np.random.RandomState) -> np.ndarray:
    """How many of ``draws`` to take from each class of ``counts``: the floor of its share, then one more for the
    largest remainders, ties broken by ``rng`` (scikit-learn's ``_approximate_mode``)."""
    continuous = counts / counts.sum() * draws
    floored = np.floor(continuous)
    need = int(draws - floored.sum())
    if need > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (inds,) = np.where(remainder == value)
            add = min(len(inds), need)
            floored[rng.choice(inds, size=add, replace=False)] += 1
            need -= add
            if need == 0:
                break
    return floored.astype(int)


def stratified_split(y: np.ndarray, seed: int, test_frac: float | None = None,
                     train_size: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Indices ``(keep, held_out)`` of a stratified, seeded split of labels ``y``: ``held_out`` is ``test_frac``
    of the samples (rounded up), or ``keep`` is ``train_size`` samples. Exactly
    ``sklearn.model_selection.train_test_split(..., stratify=y, random_state=seed)``'s draw (scikit-learn
    1.x's ``StratifiedShuffleSplit``; tests/train/test_data_fast.py compares them), written out: the split is
    spikeloop's own, the same with any scikit-learn, and needs no scikit-learn import (about a second of CPU
    time at the head of every command that trains).
    ValueError if a class has fewer than 2 samples or a part would hold fewer samples than there are classes."""
    from math import ceil
    n = len(y)
    if train_size is None:
        n_test = ceil(test_frac * n)
        n_train = n - n_test
    else:
        n_train, n_test = train_size, n - train_size
    if n_train <= 0 or n_test <= 0:
        raise ValueError(f"a split of {n} samples into {n_train} and {n_test}")
    classes, y_indices, counts = np.unique(y, return_inverse=True, return_counts=True)
    if counts.min() < 2:
        raise ValueError(f"the least populated classes have only 1 member: {classes[counts < 2].tolist()}")
    if n_train < len(classes) or n_test < len(classes):
        raise ValueError(f"a part of {min(n_train, n_test)} samples is smaller than the {len(classes)} classes")
    class_indices = np.split(np.argsort(y_indices, kind="stable"), np.cumsum(counts)[:-1])
    rng = np.random.RandomState(seed)
    n_i = _approximate_mode(counts, n_train, rng)
    t_i = _approximate_mode(counts - n_i, n_test, rng)
    keep: list = []
    held: list = []
    for i in range(len(classes)):
        perm = class_indices[i].take(rng.permutation(counts[i]), mode="clip")
        keep.extend(perm[:n_i[i]])
        held.extend(perm[n_i[i]:n_i[i] + t_i[i]])
    return rng.permutation(keep), rng.permutation(held)


def _labels(y, what: str) -> np.ndarray:
    """Labels ``y`` as int64 class indices; ConfigError unless they are whole numbers >= 0 (the output neuron
    of each class: a negative or fractional label would silently name another class)."""
    y = np.asarray(y)
    if y.dtype.kind not in "biuf":
        raise ConfigError(f"{what}: labels must be class indices (integers >= 0), got dtype {y.dtype}")
    yi = y.astype(np.int64)
    if len(y) and (not np.array_equal(yi, y) or yi.min() < 0):
        bad = y[(yi != y) | (yi < 0)][0].item()
        raise ConfigError(f"{what}: labels must be class indices (integers >= 0), got {bad!r}")
    return yi


def split_dataset(x: np.ndarray, y: np.ndarray, seed: int = 0, val_frac: float = 0.2, test_frac: float = 0.2,
                  train_size: int | None = None, name: str = "", spikes: bool = False) -> Split:
    """Stratified seeded split; ``train_size`` keeps that many training samples (data-efficiency studies).
    Features are standardised with the training part's statistics; spike trains (``spikes``) are kept."""
    x = np.asarray(x, bool if spikes else np.float64)
    y = _labels(y, name or "data")
    check_xy(x, y, name or "data", spikes)
    if not (0 < val_frac < 1 and 0 < test_frac < 1 and val_frac + test_frac < 1):
        raise ConfigError(f"val_frac={val_frac}, test_frac={test_frac}: each in (0, 1) with sum < 1")
    try:
        rest, test = stratified_split(y, seed, test_frac=test_frac)
        x_rest, x_test, y_rest, y_test = x[rest], x[test], y[rest], y[test]
        train, val = stratified_split(y_rest, (seed + 1) % 2**32, test_frac=val_frac / (1 - test_frac))
        x_train, x_val, y_train, y_val = x_rest[train], x_rest[val], y_rest[train], y_rest[val]
    except ValueError as e:         # too few samples of a class for a stratified split
        counts = np.bincount(y - y.min()) if len(y) else np.zeros(1, np.int64)
        raise ConfigError(f"{name or 'data'}: {len(x)} samples, the smallest of {np.count_nonzero(counts)} classes "
                          f"has {counts[counts > 0].min()}: too few for a stratified train/validation/test split "
                          f"({str(e).splitlines()[0][:100]})")
    n_classes = int(y.max()) + 1
    if train_size is not None:
        # the samples left out are a stratified part too: at least one of each class (or none)
        top = len(x_train) - len(np.unique(y_train))
        if not (n_classes <= train_size <= top or train_size == len(x_train)):
            raise ConfigError(f"train_size={train_size}: allowed range is {n_classes}..{top} or {len(x_train)} "
                              f"(all {len(x_train)} training samples)")
        if train_size < len(x_train):
            try:
                keep, _ = stratified_split(y_train, (seed + 2) % 2**32, train_size=train_size)
            except ValueError as e:     # a class with a single training sample
                raise ConfigError(f"train_size={train_size}: the training part of {name or 'data'} cannot be "
                                  f"subsampled stratified ({str(e).splitlines()[0][:100]}); use "
                                  f"{len(x_train)}") from None
            x_train, y_train = x_train[keep], y_train[keep]
    shape = DATASETS[name].shape if name in DATASETS else None
    if spikes:
        return Split(x_train, y_train, x_val, y_val, x_test, y_test, n_classes, name, spikes=True, shape=shape)
    mean, std = x_train.mean(0), x_train.std(0)
    std = np.where(std > 0, std, 1.0)
    z = lambda a: (a - mean) / std
    return Split(z(x_train), y_train, z(x_val), y_val, z(x_test), y_test, n_classes, name, shape=shape)


def load_dataset(name: str, seed: int = 0, train_size: int | None = None, path: str | Path | None = None,
                 steps: int = 16) -> Split:
    """The registered dataset ``name`` (see :data:`DATASETS`), split; ``path`` for a user's local files."""
    if name not in DATASETS:
        raise ConfigError(f"dataset={name!r}: allowed values are {list(DATASETS)}")
    d = DATASETS[name]
    if d.needs_path and not path:
        raise ConfigError(f"dataset={name!r} reads local files: give their path (--data-path)")
    if path and not d.needs_path:
        raise ConfigError(f"data_path={str(path)!r}: dataset {name!r} is built in and takes no path")
    x, y = d.load(str(path) if path else None, steps)
    return split_dataset(x, y, seed=seed, train_size=train_size, name=name, spikes=d.spikes)
