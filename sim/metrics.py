"""Activity metrics of a chip run, in the chip's terms and in NeuroBench's (PyPI ``neurobench``).

Two definitions of a synaptic operation sit side by side:

* ``synops`` — the chip's RTL counter: one per (input event, target neuron) pair, zero weights included (the
  datapath reads and adds every weight of a word).
* ``synops_nonzero`` — derived here from the chip's spikes: per event, the source neuron's number of non-zero
  outgoing weights. This is NeuroBench's ``SynapticOperations`` "Effective_ACs" definition.

``activation_sparsity`` = 1 − spikes / (neurons × steps) over the LIF layers (inputs excluded), as NeuroBench's
``ActivationSparsity``. ``footprint_bytes`` is the chip's programme: weights at ``weight_bits``, plus per neuron a
state word (``acc_bits``) and a threshold offset; NeuroBench's ``Footprint`` counts the float32 torch model.
"""
from __future__ import annotations

import contextlib
import io
from typing import Sequence

import numpy as np

from hw.config import ChipConfig
from sim.model import ChipResult, FastModel


def layer_inputs(cfg: ChipConfig, weights, offsets, x: np.ndarray, result: ChipResult) -> list[np.ndarray]:
    """The event tensors ``(B, T, N_l)`` entering each layer (bool, or int counts from the asynchronous mode). RTL backends report only the output layer;
    the hidden layers then come from the fast model (bit-exact with the RTL; checked on the output)."""
    spikes = result.spikes
    if any(s is None for s in spikes):
        r = FastModel(cfg, weights, offsets).run(x, record_state=False)
        if not np.array_equal(r.output, result.output):
            raise RuntimeError("chip and fast model disagree on the output spikes; hidden activity unknown")
        spikes = r.spikes
    # the asynchronous mode reports spike counts per step: keep them (a count is that many events)
    return [np.asarray(x, bool)] + [np.asarray(s) if np.asarray(s).dtype != bool else s for s in spikes[:-1]]


def chip_metrics(cfg: ChipConfig, weights: Sequence[np.ndarray], x: np.ndarray, result: ChipResult,
                 offsets=None) -> dict[str, float]:
    """Mean per-sample ``synops`` (chip counter), ``synops_nonzero`` (derived), ``activation_sparsity``
    (over the batch) and ``footprint_bytes``."""
    weights = cfg.check_weights(weights)
    ins = layer_inputs(cfg, weights, offsets, x, result)
    B, T = ins[0].shape[:2]
    nz = sum(float((ins[l].sum(axis=(0, 1)) * address_fan_out(cfg, l, weights[l] != 0)).sum())
             for l in range(cfg.num_layers))
    dense = sum(float((ins[l].sum(axis=(0, 1)) * address_fan_out(cfg, l)).sum()) for l in range(cfg.num_layers))
    spikes = sum(float(result.counters[f"spikes_l{l}"].sum()) for l in range(cfg.num_layers))
    neurons = B * T * sum(cfg.layer_sizes[1:])
    return {"synops": dense / B, "synops_nonzero": nz / B,
            "synops_counter": float(result.counters["synops"].mean()),
            "activation_sparsity": 1.0 - spikes / neurons,
            "footprint_bytes": footprint_bytes(cfg)}


def address_fan_out(cfg: ChipConfig, layer: int, mask: np.ndarray | None = None) -> np.ndarray:
    """Per raw input address of ``layer`` (HWC flat, before pooling): the synapses one event there reaches,
    every one (``mask`` None: ``fan_out`` for fc, ``V*C_out`` for conv) or those where ``mask`` (a bool
    array of the layer's weight shape, e.g. ``W != 0``) is set."""
    C, H, W = cfg.raw_in_shape(layer)
    if mask is None:
        return cfg.receptive_counts(layer) * cfg.out_channels(layer)
    ph, pw = cfg.pool_window(layer)
    Ci, Hp, Wp = cfg.in_shape(layer)
    if cfg.layer_kind(layer) == "fc":
        per = mask.sum(axis=1).reshape(Hp, Wp, Ci)
    else:
        nnz = mask.sum(axis=3)                          # (C_in, kh, kw): non-zero weights of each tap
        (kh, kw), s, (pdh, pdw) = cfg.kernel(layer), cfg.stride(layer), cfg.padding(layer)
        _, Ho, Wo = cfg.out_shape(layer)
        per = np.zeros((Hp, Wp, Ci), np.int64)
        for ky in range(kh):                            # input (y, x) meets tap (ky, kx) at most once
            ys = s * np.arange(Ho) + ky - pdh
            ys = ys[(ys >= 0) & (ys < Hp)]
            for kx in range(kw):
                xs = s * np.arange(Wo) + kx - pdw
                xs = xs[(xs >= 0) & (xs < Wp)]
                per[np.ix_(ys, xs)] += nnz[:, ky, kx]
    return per[np.arange(H) // ph][:, np.arange(W) // pw].reshape(-1)


def footprint_bytes(cfg: ChipConfig) -> int:
    synapses = sum(int(np.prod(cfg.weight_shape(l))) for l in range(cfg.num_layers))
    neurons = sum(cfg.layer_sizes[1:])
    return -(-(synapses * cfg.weight_bits + neurons * (cfg.acc_bits + cfg.threshold_offset_bits)) // 8)


def snntorch_mirror(cfg: ChipConfig, weights, offsets=None):
    """An snnTorch ``Sequential`` (Linear or Conv2d without bias, sum pooling as ``AvgPool2d`` with
    ``divisor_override=1``, Leaky with the chip's beta, per-neuron threshold and reset) carrying the integer
    weights: what NeuroBench measures. Activity between layers is flat HWC, as on the chip."""
    import snntorch as snn
    import torch
    from torch import nn
    weights, offsets = cfg.check_weights(weights), cfg.check_offsets(offsets)
    mods = []
    for l in range(cfg.num_layers):
        C, H, W = cfg.raw_in_shape(l)
        image = cfg.layer_kind(l) == "conv" or cfg.pool_area(l) > 1
        if image:
            mods += [nn.Unflatten(1, (H, W, C)), _Permute(0, 3, 1, 2)]          # (B, N) HWC -> NCHW
        if cfg.pool_area(l) > 1:
            mods.append(nn.AvgPool2d(cfg.pool_window(l), divisor_override=1))
        if cfg.layer_kind(l) == "conv":
            Ci = cfg.in_shape(l)[0]
            fc = nn.Conv2d(Ci, cfg.out_channels(l), cfg.kernel(l), cfg.stride(l), cfg.padding(l), bias=False)
            w = weights[l].transpose(3, 0, 1, 2)                                  # (C_out, C_in, kh, kw)
        else:
            if image:
                mods += [_Permute(0, 2, 3, 1), nn.Flatten()]                     # pooled NCHW -> HWC flat
            fc = nn.Linear(cfg.fan_in(l), cfg.fan_out(l), bias=False)
            w = weights[l].T
        with torch.no_grad():
            fc.weight.copy_(torch.as_tensor(np.ascontiguousarray(w), dtype=torch.float32))
        mods.append(fc)
        if cfg.layer_kind(l) == "conv":
            mods += [_Permute(0, 2, 3, 1), nn.Flatten()]                         # NCHW -> HWC flat
        thr = torch.as_tensor(cfg.threshold[l] + offsets[l], dtype=torch.float32)
        mods += [snn.Leaky(beta=cfg.beta_effective[l], threshold=thr, reset_mechanism=cfg.reset,
                               init_hidden=True, output=l == cfg.num_layers - 1)]
    return nn.Sequential(*mods)


def _Permute(*dims):
    """``x.permute(*dims)`` as a module (for :func:`snntorch_mirror`'s Sequential)."""
    from torch import nn

    class Permute(nn.Module):
        def forward(self, x):
            return x.permute(*dims)
    return Permute()


def _recording(cls, failed: list[str]):
    """``cls`` (a NeuroBench workload metric, same name) that notes its exceptions in ``failed`` before
    NeuroBench swallows them."""
    class Recording(cls):
        def __call__(self, *args, **kwargs):
            try:
                return super().__call__(*args, **kwargs)
            except Exception as e:
                failed.append(f"{cls.__name__}: {type(e).__name__}: {e}")
                raise
    Recording.__name__ = Recording.__qualname__ = cls.__name__
    return Recording


def neurobench_metrics(cfg: ChipConfig, weights, x: np.ndarray, offsets=None) -> dict[str, float]:
    """NeuroBench 2.x's ``SynapticOperations``, ``ActivationSparsity`` and ``Footprint`` of the snnTorch mirror
    on the inputs ``x`` ``(B, T, N0)``, as one batch; the float model's leak does not round, so its spikes may
    differ slightly from the chip's."""
    import torch
    from neurobench.benchmarks import Benchmark
    from neurobench.metrics.static import Footprint
    from neurobench.metrics.workload import ActivationSparsity, SynapticOperations
    from neurobench.models import SNNTorchModel
    from torch.utils.data import DataLoader, TensorDataset
    net = snntorch_mirror(cfg, weights, offsets)
    xt = torch.as_tensor(np.asarray(x), dtype=torch.float32)
    loader = DataLoader(TensorDataset(xt, torch.zeros(len(xt))), batch_size=len(xt))
    failed: list[str] = []
    workload = [_recording(m, failed) for m in (ActivationSparsity, SynapticOperations)]
    bench = Benchmark(SNNTorchModel(net), loader, [], [], [[Footprint], workload])
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        r = bench.run(quiet=True)
    if failed or not isinstance(r.get("SynapticOperations"), dict):
        # NeuroBench catches a metric's exception (e.g. a MemoryError) and stores 0.0: that is not a result
        raise RuntimeError(f"NeuroBench metrics failed: {'; '.join(failed) or 'SynapticOperations has no counts'}")
    so = r["SynapticOperations"]
    return {"synops": float(so["Effective_ACs"]), "macs": float(so["Effective_MACs"]),
            "synops_dense": float(so["Dense"]), "activation_sparsity": float(r["ActivationSparsity"]),
            "footprint_bytes": int(r["Footprint"])}


def metrics_table(chip: dict, nb: dict | None, pooled: bool = False) -> list[str]:
    """Lines comparing the chip's figures with NeuroBench's (``nb`` may be ``None``). ``pooled`` (a chip with
    a sum pool): the two synaptic-op counts are different metrics there and are shown apart, with why."""
    pooled = pooled and nb is not None
    ac_name = ("synaptic ops / sample (non-zero weights only; NeuroBench: its ACs, binary inputs only)" if pooled
               else "synaptic ops / sample (non-zero weights only)")
    rows = [("synaptic ops / sample (every event x fan-out; chip counter)", chip["synops"], None),
            (ac_name, chip["synops_nonzero"], nb and nb["synops"])]
    if pooled:
        rows.append(("NeuroBench MACs / sample (layers behind a sum pool)", None, nb.get("macs")))
    rows += [
            ("activation sparsity", chip["activation_sparsity"], nb and nb["activation_sparsity"]),
            ("footprint, bytes (chip: weight_bits; NeuroBench: float32 model)", chip["footprint_bytes"],
             nb and nb["footprint_bytes"])]
    out = [f"  {'metric':66s} {'chip':>14s} {'NeuroBench':>14s}"]
    for name, c, n in rows:
        f = (lambda v: "-" if v is None else (f"{v:.5f}" if isinstance(v, float) and v < 1 else (f"{v:.1f}" if isinstance(v, float) else str(v))))
        out.append(f"  {name:66s} {f(c):>14s} {f(n):>14s}")
    if pooled:
        out.append("  (not one metric on a pooled chip: behind a sum pool NeuroBench sees counts, not spikes, and "
                   "counts one MAC per non-zero pooled count x non-zero weight; the chip adds the weight once per "
                   "raw event, so its count there is larger by the events each pooled count stands for)")
    return out
