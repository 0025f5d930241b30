"""Loaders for local copies of N-MNIST and SVHN that a user points to (nothing is downloaded).

* N-MNIST: the original binary event files (``Train/<digit>/*.bin``, ``Test/<digit>/*.bin``); each
  event is 5 bytes: x (8 bit), y (8 bit), polarity (1 bit) and timestamp (23 bit, µs), big-endian.
  Events are binned into ``steps`` time steps over 2x34x34 = 2312 input neurons, numbered HWC
  (``(y*34 + x)*2 + p``, the input order of a conv chip with ``input_shape = [2, 34, 34]``).
* SVHN: the cropped-digits ``.mat`` files (``X`` of shape 32x32x3xN, ``y`` of shape Nx1 with label 10
  meaning digit 0); returned as grey-scale (or colour, HWC) feature rows (optionally pooled) and labels 0-9.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from hw.config import ConfigError

NMNIST_SIZE = 34


def read_nmnist_events(path: str | Path) -> np.ndarray:
    """Events of one N-MNIST file as a structured array with fields x, y, p, t (µs)."""
    try:
        raw = np.fromfile(path, dtype=np.uint8)
    except OSError as e:
        raise ConfigError(f"N-MNIST: cannot read {path} ({e.strerror or type(e).__name__})")
    if raw.size % 5:
        raise ConfigError(f"{path}: size {raw.size} is not a multiple of 5 bytes (not an N-MNIST event file)")
    raw = raw.reshape(-1, 5).astype(np.uint32)
    ev = np.zeros(len(raw), dtype=[("x", np.int64), ("y", np.int64), ("p", np.int64), ("t", np.int64)])
    ev["x"], ev["y"] = raw[:, 0], raw[:, 1]
    ev["p"] = raw[:, 2] >> 7
    ev["t"] = ((raw[:, 2] & 0x7F) << 16) | (raw[:, 3] << 8) | raw[:, 4]
    if len(ev) and (ev["x"].max() >= NMNIST_SIZE or ev["y"].max() >= NMNIST_SIZE):
        raise ConfigError(f"{path}: coordinates beyond {NMNIST_SIZE}x{NMNIST_SIZE}")
    return ev


def bin_events(ev: np.ndarray, steps: int, duration_us: int | None = None) -> np.ndarray:
    """Bool spikes ``(steps, 2*34*34)``: neuron ``(y*34 + x)*2 + p`` (HWC) fires in a step if it had an event."""
    out = np.zeros((steps, 2 * NMNIST_SIZE * NMNIST_SIZE), bool)
    if len(ev) == 0:
        return out
    dur = duration_us or int(ev["t"].max()) + 1
    t = np.minimum(ev["t"] * steps // dur, steps - 1)
    keep = ev["t"] < dur
    idx = (ev["y"] * NMNIST_SIZE + ev["x"]) * 2 + ev["p"]
    out[t[keep], idx[keep]] = True
    return out


def load_nmnist(root: str | Path, split: str = "Train", steps: int = 20, limit: int | None = None,
                duration_us: int = 300_000) -> tuple[np.ndarray, np.ndarray]:
    """Spikes ``(samples, steps, 2312)`` and labels from ``root/<split>/<digit>/*.bin``."""
    base = Path(root) / split
    if not base.is_dir():
        raise ConfigError(f"N-MNIST: no folder {base} (expected <root>/{split}/<digit>/*.bin)")
    files = sorted((int(d.name), f) for d in base.iterdir() if d.is_dir() and d.name.isdigit()
                   for f in sorted(d.glob("*.bin")))
    if not files:
        raise ConfigError(f"N-MNIST: no .bin files under {base}")
    files = files[:limit] if limit else files
    x = np.stack([bin_events(read_nmnist_events(f), steps, duration_us) for _, f in files])
    return x, np.array([lab for lab, _ in files], np.int64)


def load_svhn(path: str | Path, pool: int = 1, limit: int | None = None, colour: bool = False
              ) -> tuple[np.ndarray, np.ndarray]:
    """Grey-scale features ``(samples, (32/pool)^2)`` in [0, 1] (``colour``: ``(samples, (32/pool)^2*3)``,
    HWC) and labels 0-9 from an SVHN ``.mat``."""
    from scipy.io import loadmat
    if not Path(path).exists():
        raise ConfigError(f"SVHN: no file {path}")
    if not Path(path).is_file():
        raise ConfigError(f"SVHN: {path} is not a file (expected a cropped-digits .mat file, e.g. train_32x32.mat)")
    try:
        m = loadmat(path, appendmat=False)
    except MemoryError:
        raise
    except Exception as e:          # MatReadError, ValueError (unknown version), NotImplementedError (v7.3), ...
        raise ConfigError(f"SVHN: {path} is not a readable MATLAB .mat file of the cropped-digits format "
                          f"({type(e).__name__}: {str(e).splitlines()[0][:120] if str(e) else ''})")
    if "X" not in m or "y" not in m:
        raise ConfigError(f"SVHN: {path} lacks the X and y arrays of the cropped-digits format")
    X, y = np.asarray(m["X"]), np.asarray(m["y"])
    if X.dtype.kind not in "uif" or y.dtype.kind not in "uif":
        raise ConfigError(f"SVHN: {path}: X and y must be numeric arrays (got {X.dtype} and {y.dtype})")
    y = y.reshape(-1)
    if y.size and (y.min() < 0 or y.max() > 10 or np.any(y != np.round(y))):
        raise ConfigError(f"SVHN: {path}: labels y must be integers 0..10 (10 meaning digit 0)")
    y = y.astype(np.int64)
    if y.size == 0:
        raise ConfigError(f"SVHN: {path} holds no samples")
    if X.ndim != 4 or X.shape[:3] != (32, 32, 3) or X.shape[3] != len(y):
        raise ConfigError(f"SVHN: X has shape {X.shape}, expected (32, 32, 3, N) with N = {len(y)}")
    n = min(len(y), limit or len(y))
    if 32 % pool:
        raise ConfigError(f"pool={pool}: must divide 32")
    if colour:
        rgb = X[..., :n].astype(np.float64) / 255.0                     # (32, 32, 3, n): HWC per sample
        g = rgb.reshape(32 // pool, pool, 32 // pool, pool, 3, n).mean(axis=(1, 3))
        return g.reshape(-1, n).T.copy(), np.where(y[:n] == 10, 0, y[:n])
    grey = X[..., :n].astype(np.float64).mean(axis=2) / 255.0          # (32, 32, n)
    g = grey.reshape(32 // pool, pool, 32 // pool, pool, n).mean(axis=(1, 3))
    return g.reshape(-1, n).T.copy(), np.where(y[:n] == 10, 0, y[:n])
