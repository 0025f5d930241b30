"""An independent floating-point simulator of a NIR graph, node by node, from the file's own parameters.

:mod:`train.nir` maps a graph onto the chip (folding gains, averaging, quantising, dropping what the chip
lacks); this module does none of that. It runs the ORIGINAL chain ``Input -> ... -> Output`` in float64 with
NIR's continuous-time neurons discretised by forward Euler at step ``dt`` (snnTorch's convention, the one
:mod:`train.nir` maps), so an import report can say how far the chip is from the network the user has, and
what each approximation costs on its own (:func:`run_graph` with ``edits``: the graph with one change).

Per step, with input current ``I`` (the output of the Linear/Affine/Conv2d before the neuron node):

* ``LIF``: ``v <- beta·v' + (1 - beta)·v_leak + r·(dt/tau)·I``, ``beta = 1 - dt/tau``, where ``v'`` is the
  membrane after the previous step's reset (to ``v_reset``); spike when ``v > v_threshold``.
* ``IF``: ``v <- v' + r·I`` (no leak).
* (a gain within 1e-5 of 1 is taken as 1: ``r = tau/dt`` stored in float32, as snnTorch and we export)
* ``CubaLIF``: ``i_syn <- alpha·i_syn + min(1, dt/tau_syn)·w_in·I``, ``alpha = max(0, 1 - dt/tau_syn)``,
  then the LIF update with ``i_syn`` as its input.
* A node whose metadata says ``spikeloop_reset = "subtract"`` (our own exports) subtracts the threshold
  instead: ``v <- beta·v - s·v_threshold + ...`` (snnTorch's ``Leaky`` with ``reset_mechanism="subtract"``).
* ``Conv2d`` (torch's cross-correlation, bias per output channel), ``SumPool2d`` / ``AvgPool2d``,
  ``Flatten`` (C-order over the node's ``start_dim..end_dim`` of the unbatched shape), ``Linear``/``Affine``.

Arrays are CHW (NIR's layout); :func:`chw_to_hwc` / :func:`hwc_to_chw` reorder to and from the chip's HWC
address order.
"""
from __future__ import annotations

import math
from typing import Callable

import numpy as np

from hw.config import ConfigError


def chw_to_hwc(a: np.ndarray, shape: tuple) -> np.ndarray:
    """``(..., C*H*W)`` in CHW order -> the same values in HWC order (the chip's address numbering)."""
    if len(shape) != 3:
        return a
    C, H, W = shape
    lead = a.shape[:-1]
    return a.reshape(*lead, C, H, W).transpose(*range(len(lead)), len(lead) + 1, len(lead) + 2,
                                               len(lead)).reshape(*lead, -1)


def hwc_to_chw(a: np.ndarray, shape: tuple) -> np.ndarray:
    """Inverse of :func:`chw_to_hwc`."""
    if len(shape) != 3:
        return a
    C, H, W = shape
    lead = a.shape[:-1]
    return a.reshape(*lead, H, W, C).transpose(*range(len(lead)), len(lead) + 2, len(lead),
                                               len(lead) + 1).reshape(*lead, -1)


def _arr(v, shape) -> np.ndarray:
    a = np.asarray(v, np.float64)
    try:
        return np.broadcast_to(a.reshape(a.shape if a.ndim <= len(shape) else a.shape[-len(shape):]), shape).copy()
    except ValueError:
        if a.size == math.prod(shape):
            return a.reshape(shape)
        raise ConfigError(f"a neuron parameter of shape {a.shape} does not fit the layer's shape {shape}")


def input_shape(g) -> tuple:
    import nir
    node = next(v for v in g.nodes.values() if isinstance(v, nir.Input))
    t = node.input_type
    v = np.asarray(next(iter(t.values()))).reshape(-1) if isinstance(t, dict) and t else None
    return tuple(int(x) for x in v) if v is not None and v.size else ()


def run_graph(g, x: np.ndarray, dt: float, chain: list[str] | None = None,
              edits: dict[str, Callable] | None = None) -> np.ndarray:
    """Run the chain of ``g`` on ``x`` ``(B, T, *input_shape)`` (0/1 or real): the Output's input per step,
    ``(B, T, *shape)`` float64 (spikes as 0/1). ``edits`` maps node names to ``f(node) -> node`` applied
    before the run (one approximation at a time; the graph itself is not changed)."""
    import nir
    import torch
    import torch.nn.functional as F
    if chain is None:
        from train.nir import _chain
        chain = _chain(g)
    edits = edits or {}
    nodes = [(n, edits[n](g.nodes[n]) if n in edits else g.nodes[n]) for n in chain[1:-1]]
    x = np.asarray(x, np.float64)
    B, T = x.shape[:2]
    state: dict[str, dict] = {}
    out = []
    with torch.no_grad():
        for t in range(T):
            h = x[:, t]
            for name, node in nodes:
                if isinstance(node, nir.Flatten):
                    nd = h.ndim - 1
                    s = node.start_dim % nd if nd else 0
                    e = node.end_dim % nd if nd else 0
                    h = h.reshape(h.shape[:1 + s] + (-1,) + h.shape[2 + e:])
                elif isinstance(node, (nir.Linear, nir.Affine)):
                    h = h.reshape(B, -1) @ np.asarray(node.weight, np.float64).T
                    if isinstance(node, nir.Affine):
                        h = h + np.asarray(node.bias, np.float64).reshape(-1)
                elif isinstance(node, nir.Conv2d):
                    w = torch.as_tensor(np.asarray(node.weight, np.float64))
                    b = None if node.bias is None else torch.as_tensor(np.asarray(node.bias, np.float64).reshape(-1))
                    pad = node.padding
                    pad = tuple(int(p) for p in np.broadcast_to(np.asarray(pad), (2,))) if not isinstance(pad, str) else pad
                    h = F.conv2d(torch.as_tensor(h), w, b, stride=tuple(np.broadcast_to(np.asarray(node.stride), (2,)).tolist()),
                                 padding=pad, dilation=tuple(np.broadcast_to(np.asarray(node.dilation), (2,)).tolist()),
                                 groups=int(node.groups)).numpy()
                elif isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
                    k = tuple(int(v) for v in np.broadcast_to(np.asarray(node.kernel_size), (2,)))
                    st = tuple(int(v) for v in np.broadcast_to(np.asarray(node.stride), (2,)))
                    pd = tuple(int(v) for v in np.broadcast_to(np.asarray(node.padding), (2,)))
                    h = F.avg_pool2d(torch.as_tensor(h), k, st, pd, count_include_pad=True).numpy()
                    if isinstance(node, nir.SumPool2d):
                        h = h * (k[0] * k[1])
                elif isinstance(node, (nir.LIF, nir.IF, nir.CubaLIF)):
                    h = _neuron_step(node, h, state.setdefault(name, {}), dt)
                else:
                    raise ConfigError(f"node {name!r}: {type(node).__name__} is not simulated by the reference")
            out.append(h)
    return np.stack(out, axis=1)


def _neuron_step(node, I: np.ndarray, st: dict, dt: float) -> np.ndarray:
    import nir
    shape = I.shape[1:]
    if "v" not in st:
        st["v"] = np.zeros_like(I)
        st["s"] = np.zeros_like(I, dtype=bool)
        st["i"] = np.zeros_like(I)
    thr = _arr(node.v_threshold, shape)
    v_reset = _arr(node.v_reset if getattr(node, "v_reset", None) is not None else 0.0, shape)
    meta = (node.metadata or {}).get("spikeloop_reset")
    meta = meta.decode() if isinstance(meta, bytes) else meta
    r = _arr(node.r, shape)
    v, s = st["v"], st["s"]
    if isinstance(node, nir.IF):
        beta, gain, v_leak = np.ones(shape), r, np.zeros(shape)
    else:
        tau = _arr(node.tau if isinstance(node, nir.LIF) else node.tau_mem, shape)
        beta, gain, v_leak = 1.0 - dt / tau, r * dt / tau, _arr(node.v_leak, shape)
    gain = np.where(np.abs(gain - 1.0) < 1e-5, 1.0, gain)    # r = tau/dt stored as float32 means a unit gain
    if isinstance(node, nir.CubaLIF):
        tau_syn = _arr(node.tau_syn, shape)
        st["i"] = np.clip(1.0 - dt / tau_syn, 0.0, None) * st["i"] + np.minimum(1.0, dt / tau_syn) * \
            _arr(node.w_in, shape) * I
        I = st["i"]
    if meta == "subtract":
        v = beta * v - s * thr + (1.0 - beta) * v_leak + gain * I
    else:
        v = beta * np.where(s, v_reset, v) + (1.0 - beta) * v_leak + gain * I
    s = v > thr
    st["v"], st["s"] = v, s
    return s.astype(np.float64)
