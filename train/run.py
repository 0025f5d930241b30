"""One entry point for a training run: dataset -> encoding -> chip (with optional faults) -> trainer."""
from __future__ import annotations

from dataclasses import dataclass, field

from hw.config import ChipConfig, ConfigError
from sim.chip import make_chip
from sim.faults import Faults, FaultyChip
from train.common import Encoded, TrainResult
from train.data import load_dataset
from train.network import NetSpec

METHODS = ("bptt", "bptt_qat", "mh", "cilspl")


def default_chip(dataset: str, n_features: int, n_classes: int, hidden: int | None = None) -> ChipConfig:
    h = hidden or (16 if dataset == "breast_cancer" else 64)
    return ChipConfig(layer_sizes=(n_features, h, n_classes), lanes=8, beta=0.9)


def run_training(method: str, dataset: str = "breast_cancer", cfg: ChipConfig | None = None,
                 spec: NetSpec = NetSpec(), faults: Faults = Faults(), backend: str = "fast", steps: int = 16,
                 encoder: str = "rate", seed: int = 0, train_size: int | None = None, progress: bool = True,
                 **method_kw) -> TrainResult:
    if method not in METHODS:
        raise ConfigError(f"method={method!r}: allowed values are {METHODS}")
    split = load_dataset(dataset, seed=seed, train_size=train_size)
    cfg = cfg or default_chip(dataset, split.n_features, split.n_classes)
    data = Encoded.from_split(split, steps=steps, encoder=encoder, seed=seed)
    chip = make_chip(cfg, backend)
    if faults != Faults():
        chip = FaultyChip(chip, faults)
    if method in ("bptt", "bptt_qat"):
        from train.bptt import train_bptt
        from dataclasses import replace
        return train_bptt(cfg, replace(spec, qat=method == "bptt_qat"), data, chip, seed=seed,
                          progress=progress, **method_kw)
    if method == "mh":
        from train.mh import train_mh
        return train_mh(cfg, spec, data, chip, seed=seed, progress=progress, **method_kw)
    from train.cilspl import train_cilspl
    return train_cilspl(cfg, spec, data, chip, seed=seed, progress=progress, **method_kw)
