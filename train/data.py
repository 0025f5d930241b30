"""Datasets that work offline, split and standardised the way an experiment needs.

``load_dataset(name, seed, train_size)`` returns a :class:`Split` with stratified, seeded
train/validation/test parts; features are standardised with the training part's mean and std only.
Built in: ``breast_cancer`` (569x30) and ``digits`` (1797x64) from scikit-learn; local N-MNIST and SVHN
through :mod:`train.loaders`.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from hw.config import ConfigError

DATASETS = ("breast_cancer", "digits")


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

    @property
    def n_features(self) -> int:
        return self.x_train.shape[1]


def check_xy(x: np.ndarray, y: np.ndarray, what: str = "data") -> None:
    """Reject empty, NaN/inf or mismatched data before any training starts."""
    if x.ndim != 2 or len(x) == 0:
        raise ConfigError(f"{what}: expected a non-empty (samples, features) array, got shape {x.shape}")
    if len(y) != len(x):
        raise ConfigError(f"{what}: {len(x)} samples but {len(y)} labels")
    if not np.all(np.isfinite(x)):
        raise ConfigError(f"{what}: contains NaN or infinite values")


def split_dataset(x: np.ndarray, y: np.ndarray, seed: int = 0, val_frac: float = 0.2, test_frac: float = 0.2,
                  train_size: int | None = None, name: str = "") -> Split:
    """Stratified seeded split; ``train_size`` keeps that many training samples (data-efficiency studies)."""
    from sklearn.model_selection import train_test_split
    x = np.asarray(x, np.float64)
    y = np.asarray(y).astype(np.int64)
    check_xy(x, y, name or "data")
    if not (0 < val_frac < 1 and 0 < test_frac < 1 and val_frac + test_frac < 1):
        raise ConfigError(f"val_frac={val_frac}, test_frac={test_frac}: each in (0, 1) with sum < 1")
    x_rest, x_test, y_rest, y_test = train_test_split(x, y, test_size=test_frac, random_state=seed, stratify=y)
    x_train, x_val, y_train, y_val = train_test_split(
        x_rest, y_rest, test_size=val_frac / (1 - test_frac), random_state=seed + 1, stratify=y_rest)
    n_classes = int(y.max()) + 1
    if train_size is not None:
        if not n_classes <= train_size <= len(x_train):
            raise ConfigError(f"train_size={train_size}: allowed range is {n_classes}..{len(x_train)}")
        if train_size < len(x_train):
            x_train, _, y_train, _ = train_test_split(x_train, y_train, train_size=train_size,
                                                      random_state=seed + 2, stratify=y_train)
    mean, std = x_train.mean(0), x_train.std(0)
    std = np.where(std > 0, std, 1.0)
    z = lambda a: (a - mean) / std
    return Split(z(x_train), y_train, z(x_val), y_val, z(x_test), y_test, n_classes, name)


def load_dataset(name: str, seed: int = 0, train_size: int | None = None) -> Split:
    from sklearn import datasets
    if name == "breast_cancer":
        d = datasets.load_breast_cancer()
    elif name == "digits":
        d = datasets.load_digits()
    else:
        raise ConfigError(f"dataset={name!r}: allowed values are {DATASETS} (or use train.loaders for "
                          "local N-MNIST / SVHN files)")
    return split_dataset(d.data, d.target, seed=seed, train_size=train_size, name=name)
