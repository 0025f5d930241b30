"""NIR (Neuromorphic Intermediate Representation, https://neuroir.org) in and out of the chip.

* :func:`import_nir` maps a NIR graph — a feed-forward chain ``Input → ((SumPool2d|AvgPool2d)* Flatten?
  (Linear|Affine|Conv2d) → LIF|CubaLIF|IF)+ → Output`` as snnTorch, Sinabs or Rockpool write it — onto a
  :class:`ChipConfig` (fc, conv and pool layers; NIR's CHW reordered to the chip's HWC) plus integer weights and
  threshold offsets, and reports what it had to approximate and how well the chip agrees with the ORIGINAL
  graph, run in float64 by the independent simulator :mod:`train.nir_ref`, with each approximation's own effect.
* :func:`chip_to_nir` / :func:`export_nir` write a chip programme (fc or conv) as NIR: LIF nodes with
  ``tau = dt/(1-beta)``, ``r = tau/dt``, ``dt = 1e-4`` (snnTorch's convention), IF nodes for ``beta = 1``.

Discretisation (NIR is continuous-time): forward Euler with step ``dt`` as snnTorch's importer, so a LIF node
gives ``beta = 1 - dt/tau`` and an input gain ``r·dt/tau`` (folded into the weights); an IF node integrates
``r·I`` per step and maps to the chip's exact ``beta = 1``. ``dt`` defaults to ``tau/r`` when that is one
number for the whole graph (unit gain, snnTorch's and Rockpool's exports), else ``1e-4``. The chip's membrane
is integer, saturating and its leak rounds; NIR's is real: these are the approximations :class:`NirReport`
lists, with the measured agreement. ``docs/guides/nir.md`` is the user's guide.
"""
from __future__ import annotations

import contextlib
import io
import json
import math
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from hw.config import ChipConfig, ConfigError
from hw.files import umask, write_atomic
from train.quant import layer_scale

#: snnTorch's fixed NIR time step (``snntorch.export_nir`` / ``import_nir``)
SNNTORCH_DT = 1e-4
#: a CubaLIF synapse whose current keeps less than this share per step counts as instantaneous
SYN_INSTANT = 0.05


@dataclass
class NirReport:
    """What an import or export had to approximate, and the measured agreement."""
    source: str = ""
    dt: float = SNNTORCH_DT
    layers: list = field(default_factory=list)          # per layer: node names, beta, scale, threshold ...
    approximations: list = field(default_factory=list)  # one line each
    agreement: dict = field(default_factory=dict)       # chip vs the original graph (float) on random inputs
    effects: list = field(default_factory=list)         # per approximation: its own effect on agreement

    def to_dict(self) -> dict:
        return asdict(self)

    def text(self) -> str:
        out = [f"NIR {self.source}: {len(self.layers)} layer(s), dt = {self.dt:g} s"]
        for l, d in enumerate(self.layers):
            out.append(f"  layer {l}: {d['linear']} -> {d['neuron']} ({d['kind']}) {d['fan_in']}x{d['fan_out']}: "
                       f"beta {d['beta']:.4f} (chip {d['beta_chip']:.4f}), weight scale {d['scale']:.4g} LSB/unit, "
                       f"threshold {d['threshold']} LSB")
        out += [f"  approximated: {a}" for a in self.approximations] or ["  approximated: nothing"]
        if self.agreement:
            a = self.agreement
            out.append(f"  agreement of the chip with the ORIGINAL graph (float64, train.nir_ref) on {a['samples']} "
                       f"random samples x {a['steps']} steps (density {a['density']}): output spikes "
                       f"{a['spike_agreement']:.4f} (matched/union), entries {a['entry_agreement']:.4f}, predicted "
                       f"class {a['class_agreement']:.4f}; output spikes: original {a['spikes'][0]}, chip "
                       f"{a['spikes'][1]}")
            if a["spikes"] == [0, 0]:
                out.append("  WARNING: neither side fired an output spike: the agreement says nothing (raise "
                           "the input density or check the thresholds)")
            for e in self.effects:
                how = "alone (original vs original with only this change)" if e["alone"] else \
                    "(chip vs the float graph with every change above)"
                out.append(f"  effect of {e['approximation']!r} {how}: spikes {e['spike_agreement']:.4f}, "
                           f"class {e['class_agreement']:.4f}, output spikes {e['spikes'][0]} -> {e['spikes'][1]}")
        return "\n".join(out)


# -- reading and checking a graph -------------------------------------------------------------------------
def read_graph(path: str | Path):
    import nir
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"{path}: no such NIR file")
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                g = nir.read(p)
            except ValueError as e:
                if "type" not in str(e).lower():
                    raise
                # e.g. Rockpool writes the Input with a batch dimension, (1, N): nir's own type check then
                # fails; the shapes are checked here from the weights instead (parse_graph)
                g = nir.read(p, type_check=False)
    except Exception as e:             # OSError from h5py, KeyError/ValueError from a foreign layout, ...
        raise ConfigError(f"{path}: not a readable NIR file ({type(e).__name__}: {str(e)[:120]})")
    if not isinstance(g, nir.NIRGraph):
        raise ConfigError(f"{path}: holds a single {type(g).__name__} node, not a NIR graph")
    return g


def _vec(node_name: str, what: str, v, n: int) -> np.ndarray:
    a = np.asarray(v, np.float64).reshape(-1)
    if a.size == 1:
        a = np.full(n, a[0])
    if a.size != n:
        raise ConfigError(f"node {node_name!r}: {what} has {a.size} entries but the layer has {n} neurons")
    if not np.all(np.isfinite(a)):
        raise ConfigError(f"node {node_name!r}: {what} contains NaN or infinite values")
    return a


def _chain(g) -> list[str]:
    """The node names from Input to Output of a feed-forward chain (errors name the offending node)."""
    import nir
    ins = [k for k, v in g.nodes.items() if isinstance(v, nir.Input)]
    outs = [k for k, v in g.nodes.items() if isinstance(v, nir.Output)]
    if len(ins) != 1 or len(outs) != 1:
        raise ConfigError(f"graph: needs exactly one Input and one Output node, has inputs {ins} and outputs {outs}")
    for a, b in g.edges:
        for n in (a, b):
            if n not in g.nodes:
                raise ConfigError(f"edge ({a!r}, {b!r}): node {n!r} is not in the graph")
        if a == b:
            raise ConfigError(f"node {a!r}: connects to itself (recurrence); the chip is feed-forward")
    succ: dict[str, list[str]] = {k: [] for k in g.nodes}
    pred: dict[str, list[str]] = {k: [] for k in g.nodes}
    for a, b in dict.fromkeys(map(tuple, g.edges)):
        succ[a].append(b)
        pred[b].append(a)
    chain, seen, cur = [ins[0]], {ins[0]}, ins[0]
    while cur != outs[0]:
        if len(succ[cur]) != 1:
            what = "leads nowhere" if not succ[cur] else f"fans out to {succ[cur]}"
            raise ConfigError(f"node {cur!r}: {what}; the chip carries one feed-forward chain Input -> ... -> Output")
        nxt = succ[cur][0]
        if nxt in seen:
            raise ConfigError(f"node {nxt!r}: edge from {cur!r} closes a loop (recurrence); the chip is feed-forward")
        if len(pred[nxt]) != 1:
            raise ConfigError(f"node {nxt!r}: has several inputs {pred[nxt]} (recurrence or a merge); "
                              "the chip carries one feed-forward chain")
        chain.append(nxt)
        seen.add(nxt)
        cur = nxt
    stray = sorted(set(g.nodes) - seen)
    if stray:
        raise ConfigError(f"node {stray[0]!r}: not on the chain Input -> ... -> Output (side branch or recurrence)")
    return chain


@dataclass
class _Layer:
    linear: str
    neuron: str
    kind: str
    w: np.ndarray          # (fan_in, fan_out), gain folded in
    tau: np.ndarray
    thr: np.ndarray
    beta: np.ndarray
    reset: str
    base_threshold: float | None = None     # the layer threshold a spikeloop export recorded
    dt_power: int = 1                       # the weights scale with dt**dt_power (IF 0, LIF 1, CubaLIF 1-2)
    entry: dict = field(default_factory=dict)          # the chip's layers entry ({"kind": "fc"|"conv", ...})
    pool: list = field(default_factory=list)           # (node, size) of the pools before it
    out_shape: tuple = ()                              # (N,) or NIR's (C, H, W)
    in_shape: tuple = ()                               # the shape arriving (before pools / Flatten); () unknown
    flat_from: tuple | None = None                     # the (C, H, W) a Flatten before it flattened
    gain: np.ndarray | None = None                     # per-neuron input gain folded into w (HWC), pool scale incl.
    pool_scale: float = 1.0                            # 1/k^2 of the AvgPool2d before it (folded into gain)
    bias: np.ndarray | None = None                     # per neuron (fc) / channel (conv), the neuron's gain folded in


def _pair(node_name: str, what: str, v) -> tuple[int, int]:
    if isinstance(v, str):
        raise ConfigError(f"node {node_name!r}: {what} = {v!r}; the chip needs numbers (explicit zero padding)")
    a = np.asarray(v).reshape(-1)
    a = np.broadcast_to(a, (2,)) if a.size == 1 else a
    if a.size != 2 or not np.all(a == np.round(a)):
        raise ConfigError(f"node {node_name!r}: {what} = {v!r}; expected one or two integers")
    return int(a[0]), int(a[1])


def _shape_of(v) -> tuple:
    v = None if v is None else np.asarray(v).reshape(-1)
    return tuple(int(x) for x in v) if v is not None and v.size else ()


def parse_graph(g, dt: float | None = None, drop_biases: bool = False, drop_synapses: bool = False
                ) -> tuple[list[_Layer], float, list[str]]:
    """The chain of ``g`` as float layers (chip orientation and HWC order, gains folded), the ``dt`` used, and
    notes. A layer is ``Linear|Affine|Conv2d -> LIF|CubaLIF|IF``; ``SumPool2d``/``AvgPool2d`` before it become
    its input pooling (:attr:`_Layer.pool`), ``Flatten`` reorders NIR's CHW into the chip's HWC."""
    import nir
    from train.nir_ref import chw_to_hwc
    chain = _chain(g)
    notes: list[str] = []
    body = chain[1:-1]
    kinds = (nir.Linear, nir.Affine, nir.Conv2d, nir.SumPool2d, nir.AvgPool2d, nir.LIF, nir.CubaLIF, nir.IF,
             nir.Flatten)
    for name in body:
        node = g.nodes[name]
        if isinstance(node, nir.NIRGraph):
            raise ConfigError(f"node {name!r}: a sub-graph (snnTorch/Rockpool write recurrent layers so); "
                              "the chip has no recurrence")
        if not isinstance(node, kinds):
            raise ConfigError(f"node {name!r}: {type(node).__name__} is not supported; the chip carries "
                              "Linear/Affine/Conv2d -> LIF/CubaLIF/IF layers, SumPool2d/AvgPool2d and Flatten")
        if isinstance(node, (nir.LIF, nir.CubaLIF, nir.IF)):
            r = np.asarray(node.r, np.float64).reshape(-1)
            if not np.all(np.isfinite(r)) or np.any(r <= 0):
                bad = r[~(np.isfinite(r) & (r > 0))][0]
                raise ConfigError(f"node {name!r}: r = {bad:g} (input resistance); allowed range is r > 0 and finite")
    neurons = [n for n in body if isinstance(g.nodes[n], (nir.LIF, nir.CubaLIF, nir.IF))]
    if not neurons:
        raise ConfigError(f"graph: no LIF/CubaLIF/IF node between Input and Output "
                          f"({[f'{n}:{type(g.nodes[n]).__name__}' for n in body]})")
    # dt: tau/r when one number for the whole graph (unit input gain), else snnTorch's 1e-4
    if dt is None:
        cands = []
        for n in neurons:
            node = g.nodes[n]
            tau = getattr(node, "tau", getattr(node, "tau_mem", None))
            tau = None if tau is None else np.asarray(tau, np.float64).reshape(-1)
            if tau is not None and np.all(np.isfinite(tau)) and np.all(tau > 0):
                cands.append(tau / np.asarray(node.r, np.float64).reshape(-1))
        c = np.concatenate(cands) if cands else np.array([])
        dt = float(c[0]) if c.size and np.all(np.isfinite(c)) and c[0] > 0 and np.allclose(c, c[0], rtol=1e-4) \
            else SNNTORCH_DT
    if not (np.isfinite(dt) and dt > 0):
        raise ConfigError(f"dt={dt}: allowed range is > 0 seconds")
    layers: list[_Layer] = []
    shape = _shape_of((getattr(g.nodes[chain[0]], "input_type", None) or {}).get("input"))
    if len(shape) == 2 and shape[0] == 1:
        shape = shape[1:]                 # Rockpool writes (1, N): a batch dimension
    flat_from = None                      # the 3-D shape a Flatten turned into the current 1-D one
    raw_shape = shape                     # the shape arriving at the next layer (before its pools and Flatten)
    pool, pool_scale = [], 1.0
    i = 0
    while i < len(body):
        name, node = body[i], g.nodes[body[i]]
        if isinstance(node, nir.Flatten):
            if len(shape) == 3:
                s_, e_ = node.start_dim % 3, node.end_dim % 3
                if (s_, e_) != (0, 2):
                    raise ConfigError(f"node {name!r}: Flatten of dims {node.start_dim}..{node.end_dim} of a "
                                      f"{shape} input leaves it {len(shape) - (e_ - s_)}-D; the chip needs a full "
                                      "flatten (start_dim 0, end_dim -1 without the batch)")
                flat_from, shape = shape, (math.prod(shape),)
            i += 1
            continue
        if isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
            if len(shape) != 3:
                raise ConfigError(f"node {name!r}: a pool needs an image (C, H, W) input, got shape {shape}")
            k, st, pd = (_pair(name, w, getattr(node, w)) for w in ("kernel_size", "stride", "padding"))
            C, H, W = shape
            kh = k[0] if H > 1 else 1
            if k[0] != k[1] and H > 1 or k != st or pd != (0, 0) or not 2 <= k[1] <= 8:
                raise ConfigError(f"node {name!r}: pool kernel {k}, stride {st}, padding {pd}; the chip pools square "
                                  "windows of 2..8 with stride = kernel and no padding")
            if H % kh or W % k[1]:
                raise ConfigError(f"node {name!r}: a {k[1]}x{k[1]} pool does not tile the {C}x{H}x{W} input")
            pool.append((name, k[1]))
            if isinstance(node, nir.AvgPool2d):
                pool_scale /= kh * k[1]
            shape = (C, H // kh, W // k[1])
            i += 1
            continue
        if not isinstance(node, (nir.Linear, nir.Affine, nir.Conv2d)):
            raise ConfigError(f"node {name!r}: {type(node).__name__} without a Linear/Affine/Conv2d before it; the "
                              "chip's layers are Linear/Affine/Conv2d -> LIF/CubaLIF/IF")
        if i + 1 >= len(body) or not isinstance(g.nodes[body[i + 1]], (nir.LIF, nir.CubaLIF, nir.IF)):
            nxt = f"{body[i + 1]!r} ({type(g.nodes[body[i + 1]]).__name__})" if i + 1 < len(body) else "the Output"
            raise ConfigError(f"node {name!r}: expected LIF/CubaLIF/IF after it, got {nxt}")
        ln, nn_, lin, neu = name, body[i + 1], node, g.nodes[body[i + 1]]
        w = np.asarray(lin.weight, np.float64)
        if not np.all(np.isfinite(w)):
            raise ConfigError(f"node {ln!r}: weight contains NaN or infinite values")
        bias = getattr(lin, "bias", None)
        conv = isinstance(lin, nir.Conv2d)
        if conv:
            if len(shape) != 3:
                raise ConfigError(f"node {ln!r}: Conv2d needs an image (C, H, W) input, got shape {shape or 'unknown'}")
            if w.ndim != 4:
                raise ConfigError(f"node {ln!r}: Conv2d weight has shape {w.shape}; expected (out, in, kh, kw)")
            C, H, W = shape
            co, ci, kh, kw = w.shape
            st, pd, dl = (_pair(ln, x, getattr(lin, x)) for x in ("stride", "padding", "dilation"))
            if dl != (1, 1) or int(lin.groups) != 1:
                raise ConfigError(f"node {ln!r}: dilation {dl}, groups {lin.groups}; the chip's convolutions have "
                                  "dilation 1 and groups 1")
            if ci != C:
                raise ConfigError(f"node {ln!r}: weight takes {ci} input channels but the previous node gives {C} "
                                  "(shapes do not chain)")
            if H > 1 and (kh != kw or st[0] != st[1] or pd[0] != pd[1]):
                raise ConfigError(f"node {ln!r}: kernel {kh}x{kw}, stride {st}, padding {pd}; the chip's kernels are "
                                  "square with one stride and one padding for both axes")
            if H == 1 and kh != 1:
                raise ConfigError(f"node {ln!r}: a {kh}x{kw} kernel on an input of height 1; expected 1x{kw}")
            k, s_, p_ = kw, st[1], pd[1]
            Ho, Wo = (H + 2 * (p_ if H > 1 else 0) - kh) // (s_ if H > 1 else 1) + 1, (W + 2 * p_ - kw) // s_ + 1
            out_shape = (co, Ho, Wo)
            n_out = co * Ho * Wo
            entry = {"kind": "conv", "channels": co, "kernel": k, "stride": s_, "padding": p_}
            wc = w.transpose(1, 2, 3, 0)              # (Ci, kh, kw, Co): the chip's kernel layout
            if H == 1:
                wc = wc[:, :1]
        else:
            if w.ndim != 2:
                raise ConfigError(f"node {ln!r}: weight has shape {w.shape}; expected (out, in)")
            if len(shape) == 3:
                raise ConfigError(f"node {ln!r}: {type(lin).__name__} after a {shape} image needs a Flatten before it")
            n_out, n_in = w.shape
            size_in = shape[0] if shape else None
            if size_in is not None and n_in != size_in:
                raise ConfigError(f"node {ln!r}: weight takes {n_in} inputs but the previous node gives {size_in} "
                                  "(shapes do not chain)")
            wc = (chw_to_hwc(w, flat_from) if flat_from else w).T      # rows in the chip's HWC order
            out_shape = (n_out,)
            entry = {"kind": "fc", "size": n_out}
        b = None
        if bias is not None:
            b = np.asarray(bias, np.float64).reshape(-1)
            n_b = out_shape[0]
            if b.size == 1:
                b = np.full(n_b, b[0])
            if b.size != n_b:
                raise ConfigError(f"node {ln!r}: bias has {b.size} entries; expected {n_b} (one per output "
                                  f"{'channel' if conv else 'neuron'})")
            if not np.all(np.isfinite(b)):
                raise ConfigError(f"node {ln!r}: bias contains NaN or infinite values")
            if not np.any(b != 0):
                b = None
            elif drop_biases:
                notes.append(f"{ln}: dropped {type(lin).__name__} bias (max |b| = {np.abs(b).max():.4g})")
                b = None

        def per_neuron(what, v, _shape=out_shape, _nn=nn_):
            from train.nir_ref import _arr
            if len(_shape) == 1:
                return _vec(_nn, what, v, _shape[0])
            try:
                a = _arr(v, _shape)
            except ConfigError:
                raise ConfigError(f"node {_nn!r}: {what} of shape {np.shape(v)} does not fit the layer's {_shape}")
            if not np.all(np.isfinite(a)):
                raise ConfigError(f"node {_nn!r}: {what} contains NaN or infinite values")
            return chw_to_hwc(a.reshape(-1), _shape)

        r = per_neuron("r", neu.r)
        if isinstance(neu, nir.IF):
            tau = np.full(n_out, np.inf)
            beta = np.ones(n_out)
            gain = r
            v_leak = np.zeros(n_out)
        else:
            tau = per_neuron("tau" if isinstance(neu, nir.LIF) else "tau_mem",
                             neu.tau if isinstance(neu, nir.LIF) else neu.tau_mem)
            if np.any(tau <= 0):
                raise ConfigError(f"node {nn_!r}: time constants must be > 0")
            beta = 1.0 - dt / tau
            gain = r * dt / tau
            v_leak = per_neuron("v_leak", neu.v_leak)
        power = 0 if isinstance(neu, nir.IF) else 1
        if isinstance(neu, nir.CubaLIF):
            tau_syn = per_neuron("tau_syn", neu.tau_syn)
            alpha = np.clip(1.0 - dt / tau_syn, 0.0, None)
            if alpha.max() > SYN_INSTANT and not drop_synapses:
                raise ConfigError(f"node {nn_!r}: CubaLIF synaptic current keeps {alpha.max():.3f} per step "
                                  f"(tau_syn = {tau_syn.max():.3g} s at dt = {dt:g} s); the chip has no synaptic "
                                  "current (drop it with --drop-synapses and read its effect in the report)")
            w_in = per_neuron("w_in", neu.w_in)
            gain = gain * w_in * np.minimum(1.0, dt / tau_syn)
            if alpha.max() > 0:
                notes.append(f"{nn_}: dropped the synaptic current (it keeps up to {alpha.max():.3f} per step)")
            if np.any(dt < tau_syn):
                power = 2
        if np.any(v_leak != 0):
            raise ConfigError(f"node {nn_!r}: v_leak = {v_leak.max():.4g} (a constant input) cannot be folded: the "
                              "chip's membrane leaks to 0")
        if np.any(beta <= 0) or np.any(beta > 1):
            raise ConfigError(f"node {nn_!r}: tau {tau.min():.3g} s at dt {dt:g} s gives beta = 1 - dt/tau = "
                              f"{beta.min():.4g}; the chip needs 0 < beta <= 1 (give --dt below {tau.min():.3g})")
        thr = per_neuron("v_threshold", neu.v_threshold)
        if np.any(thr <= 0):
            raise ConfigError(f"node {nn_!r}: v_threshold must be > 0, got min {thr.min():.4g}")
        v_reset = neu.v_reset if getattr(neu, "v_reset", None) is not None else 0.0
        v_reset = per_neuron("v_reset", v_reset)
        meta_reset = (neu.metadata or {}).get("spikeloop_reset")
        if isinstance(meta_reset, bytes):
            meta_reset = meta_reset.decode()
        if meta_reset in ("subtract", "zero"):
            reset = str(meta_reset)
        else:
            reset = "zero"
            if np.any(v_reset != 0):
                notes.append(f"{nn_}: reset to v_reset = {v_reset.max():.4g} approximated by a reset to 0")
        gain = np.where(np.abs(gain - 1.0) < 1e-5, 1.0, gain) * pool_scale   # float32 noise of r = tau/dt
        if conv:
            g2 = gain.reshape(-1, out_shape[0])                        # (positions, channels), HWC
            if not np.allclose(g2, g2[0], rtol=1e-6):
                raise ConfigError(f"node {nn_!r}: the input gain (r, tau, w_in) differs between positions of one "
                                  "channel; a convolution shares its kernel, so the chip needs it per channel")
            wf = wc * g2[0]
        else:
            wf = wc * gain[None, :]
        base_thr = (neu.metadata or {}).get("spikeloop_threshold")
        base_thr = float(np.asarray(base_thr).reshape(-1)[0]) if base_thr is not None else None
        L = _Layer(ln, nn_, type(neu).__name__, wf, tau, thr, beta, reset, base_thr, power)
        L.entry, L.pool, L.out_shape, L.in_shape, L.flat_from = entry, pool, out_shape, raw_shape, flat_from
        L.gain, L.pool_scale = gain, pool_scale
        if b is not None:             # the bias joins the input current after the pool: the neuron's gain, no 1/k^2
            L.bias = b * _bias_gain(L)
        layers.append(L)
        pool, pool_scale, flat_from = [], 1.0, None
        shape = raw_shape = out_shape
        i += 2
    if pool:
        raise ConfigError(f"node {pool[-1][0]!r}: a pool after the last neuron layer (the chip's pools feed a layer)")
    out_size = _output_size(g.nodes[chain[-1]])
    n_last = math.prod(shape)
    if out_size is not None and out_size != n_last:
        raise ConfigError(f"node {chain[-1]!r}: Output has {out_size} entries but the last layer has {n_last} "
                          "neurons (shapes do not chain)")
    if len({l.reset for l in layers}) > 1:
        raise ConfigError("graph: layers use different reset modes; the chip has one")
    return layers, dt, notes


def _bias_gain(L: _Layer) -> np.ndarray:
    """The gain a layer's bias takes into the chip's membrane units per output channel (conv) or neuron (fc): the
    neuron node's input gain (``r·dt/tau``, ``r`` for IF), without an AvgPool's ``1/k²`` (the pool is before the
    Linear/Conv2d, the bias after it)."""
    g = L.gain / L.pool_scale
    return g.reshape(-1, L.out_shape[0])[0] if L.entry["kind"] == "conv" else g


def _input_size(node):
    t = getattr(node, "input_type", None) or {}
    v = t.get("input") if isinstance(t, dict) else None
    v = None if v is None else np.asarray(v).reshape(-1)
    return int(np.prod(v)) if v is not None and v.size else None


def _output_size(node):
    t = getattr(node, "output_type", None) or {}
    v = t.get("output") if isinstance(t, dict) else None
    v = None if v is None else np.asarray(v).reshape(-1)
    return int(np.prod(v)) if v is not None and v.size else None


# -- import ----------------------------------------------------------------------------------------------
def _is_chip_units(cfg: ChipConfig, w: np.ndarray, thr: np.ndarray) -> bool:
    """Weights and thresholds already integers in the chip's ranges (a graph this module exported)."""
    def whole(a):
        return bool(np.all(np.abs(a - np.round(a)) < 1e-4))
    if np.any(w != 0) and np.abs(w).max() < 0.5:       # "whole" only because every weight rounds to 0
        return False
    return whole(w) and whole(thr) and round(w.min(initial=0)) >= cfg.weight_min and \
        round(w.max(initial=0)) <= cfg.weight_max and round(thr.max()) <= cfg.membrane_max


def exact_scale(cfg: ChipConfig, w: np.ndarray, thr: np.ndarray, bias: np.ndarray | None = None) -> float | None:
    """A scale ``s`` (LSB per unit) at which every weight ``w·s`` is an integer in the chip's weight range and
    every threshold ``thr·s`` fits the membrane, or ``None``. Tried: powers of two (weights on a binary grid,
    e.g. float16/fixed-point or quantisation-aware trained), and ``K/max|w|`` for ``K = 2**(b-1) - 1``, ``b`` up
    to the weight bits (a symmetric max-abs quantiser). At such a scale the chip's integer membrane is the
    graph's membrane times ``s`` exactly (IF; a LIF's leak still rounds), and with :func:`chip_threshold`
    every spike is the graph's. ``bias`` (chip units per unit, optional): every ``bias·s`` must be an integer in
    the membrane range too."""
    w = np.asarray(w, np.float64)
    m = float(np.abs(w).max()) if w.size else 0.0
    if m == 0 or not np.isfinite(m):
        return None
    tmax = float(np.max(thr))

    def fits(s, tol):              # every weight an integer (a non-zero weight a non-zero one) in range
        ws = w * s
        iw = np.rint(ws)
        if bias is not None:
            bs = np.asarray(bias, np.float64) * s
            if np.abs(bs).max() > cfg.membrane_max or np.any(np.abs(bs - np.rint(bs)) > tol):
                return False
        return (np.abs(iw).max() <= cfg.weight_max and tmax * s <= cfg.membrane_max and
                bool(np.all(np.abs(ws - iw) <= tol)) and not np.any((iw == 0) & (w != 0)))
    top = math.floor(math.log2(cfg.weight_max / m))          # the largest power of two that keeps the range
    for k in range(top - 40, top + 1):                        # the smallest power of two that is exact
        if fits(2.0 ** k, 0.0):                               # (w * 2**k is exact in floating point)
            return 2.0 ** k
    for b in range(2, cfg.weight_bits + 1):
        s = ((1 << (b - 1)) - 1) / m
        if fits(s, 1e-6):
            return s
    return None


def chip_threshold(x: np.ndarray) -> np.ndarray:
    """The integer threshold ``T`` for a real threshold ``x`` in membrane LSBs: the chip fires when its integer
    membrane ``V > T`` and the graph when ``v > x``; for integer ``V``, ``V > x`` exactly when ``V > floor(x)``
    (rounding ``x`` to nearest would fire one LSB late whenever ``V = round(x) > x``). ``x`` within 1e-6 LSB of
    an integer counts as that integer (float noise of ``thr·s``)."""
    x = np.asarray(x, np.float64)
    return np.floor(np.where(np.abs(x - np.rint(x)) < 1e-6, np.rint(x), x))


def import_graph(g, base: ChipConfig | None = None, dt: float | None = None, drop_biases: bool = False,
                 drop_synapses: bool = False, source: str = "<graph>", check_samples: int = 64,
                 check_steps: int = 32, density: float = 0.2, seed: int = 0, sizes: Sequence[int] | None = None):
    """A NIR graph -> ``(ChipConfig, weights, offsets, NirReport)``; widths/lanes come from ``base``.
    ``sizes`` (e.g. the command line's ``--sizes``), when given, must equal the graph's layer sizes.
    The report's agreement compares the chip with the ORIGINAL graph run in float64 by
    :mod:`train.nir_ref`, and lists each approximation with its own effect (``NirReport.effects``)."""
    import nir
    base = base or ChipConfig()
    dt_given = dt is not None
    layers, dt, notes = parse_graph(g, dt, drop_biases, drop_synapses)
    ishape = layers[0].in_shape
    image = any(L.entry["kind"] == "conv" or L.pool for L in layers)
    if image:
        entries = []
        for L in layers:
            entries += [{"kind": "pool", "size": k} for _, k in L.pool] + [L.entry]
        try:
            base = base.replace(layers=tuple(entries), input_shape=ishape, beta=0.5, threshold=1,
                                reset=layers[0].reset, bias=None)
        except ConfigError as e:
            names = [n for L in layers for n in [p for p, _ in L.pool] + [L.linear]]
            raise ConfigError(f"{e} (layers[i] = NIR nodes {names})")
    else:
        sizes_g = (layers[0].w.shape[0],) + tuple(l.w.shape[1] for l in layers)
        base = base.replace(layer_sizes=sizes_g, beta=0.5, threshold=1, reset=layers[0].reset,
                            input_shape=ishape if len(ishape) == 3 else None, layers=None, bias=None)
    if sizes is not None and tuple(sizes) != base.layer_sizes:
        raise ConfigError(f"--sizes {','.join(map(str, sizes))}: the graph's layer sizes are "
                          f"{','.join(map(str, base.layer_sizes))} (import takes them from the graph; omit --sizes "
                          "or give these)")
    one = 1 << base.beta_frac_bits
    rep = NirReport(source=source, dt=dt, approximations=list(notes))
    edits = [_note_edit(g, n, dt) for n in notes]
    weights, offsets, betas, thrs, biases = [], [], [], [], []
    for l, L in enumerate(layers):
        if np.all(np.isinf(L.tau)):
            beta = 1.0                  # IF: the chip's beta = 1 (beta_int = 2**f), exact
        else:
            beta = float(np.mean(L.beta))
            if np.ptp(L.beta) > 0.5 / one:
                rep.approximations.append(f"{L.neuron}: per-neuron beta {L.beta.min():.4f}..{L.beta.max():.4f} "
                                          f"replaced by the layer mean {beta:.4f}")
                edits.append({L.neuron: _leak_edit(np.full(L.beta.shape, beta), L, dt)})
            beta = min(max(beta, 1.0 / one), 1.0 - 1.0 / one)
        bq = 1.0 if beta == 1.0 else min(one - 1, max(1, int(round(beta * one)))) / one
        if abs(bq - beta) > 1e-6:
            rep.approximations.append(f"{L.neuron}: beta {beta:.6f} -> {bq:.6f} ({base.beta_frac_bits} fraction bits)")
            edits.append({L.neuron: _leak_edit(np.full(L.beta.shape, bq), L, dt)})
        if _is_chip_units(base, L.w, L.thr):
            s = 1.0
        else:
            s = exact_scale(base, L.w, L.thr, L.bias) or exact_scale(base, L.w, L.thr) or \
                layer_scale(base, L.w, float(L.thr.max()))
        wq = np.clip(np.rint(L.w * s), base.weight_min, base.weight_max).astype(np.int64)
        if np.any(L.w != 0) and not np.any(wq):
            raise ConfigError(_nothing_left(L, layers, dt, dt_given, base, s))
        tq = np.clip(chip_threshold(L.thr * s), 1, base.membrane_max).astype(np.int64)
        t0 = int(round(L.base_threshold * s)) if L.base_threshold else int(np.round(np.median(tq)))
        t0 = min(max(t0, 1), base.membrane_max)
        off = np.clip(tq - t0, base.offset_min, base.offset_max)
        off = np.clip(t0 + off, 0, base.membrane_max) - t0
        if np.any(off != tq - t0):
            rep.approximations.append(f"{L.neuron}: per-neuron thresholds clipped to the {base.threshold_offset_bits}"
                                      f"-bit offset range (largest error {np.abs(off - (tq - t0)).max()} LSB)")
            edits.append({L.neuron: _threshold_edit((t0 + off) / s, L)})
        if s != 1.0 or np.any(wq != L.w):
            err = np.abs(wq / s - L.w).max()
            rep.approximations.append(f"{L.linear}: weights quantised to {base.weight_bits} bits at {s:.4g} LSB/unit "
                                      f"(largest error {err:.3g} units); threshold {L.thr.max():.4g} -> {t0} LSB")
            # the thresholds as quantised, not as clipped to the offset range: that clip is its own approximation
            # (above), and this edit measures the weights' and thresholds' rounding alone
            edits.append({L.linear: _weight_edit(wq / s, L), L.neuron: _threshold_edit(tq / s, L)})
        if L.bias is not None:          # the chip's bias (ChipConfig.bias), in membrane LSBs
            bs = L.bias * s
            biq = np.clip(np.rint(bs), base.membrane_min, base.membrane_max).astype(np.int64)
            if np.any(np.abs(biq - bs) > 1e-6):
                rep.approximations.append(f"{L.linear}: bias quantised to membrane LSBs at {s:.4g} LSB/unit (largest "
                                          f"error {np.abs(biq - bs).max():.3g} LSB{', clipped to the membrane range' if np.any(np.abs(np.rint(bs)) > base.membrane_max) else ''})")
                edits.append({L.linear: _bias_edit(biq / s, L)})
            biases.append(tuple(int(v) for v in biq))
        else:
            biases.append((0,) * int(L.out_shape[0]))
        weights.append(wq)
        offsets.append(off.astype(np.int64))
        betas.append(bq)
        thrs.append(t0)
        rep.layers.append({"linear": L.linear, "neuron": L.neuron, "kind": L.kind, "layer": L.entry["kind"],
                           "fan_in": int(np.prod(L.w.shape[:-1])), "fan_out": int(np.prod(L.out_shape)),
                           "pools": [k for _, k in L.pool], "beta": float(np.mean(L.beta)), "beta_chip": bq,
                           "scale": s, "threshold": t0, "offsets": [int(off.min()), int(off.max())]})
    cfg = base.replace(beta=tuple(betas), threshold=tuple(thrs),
                       bias=tuple(biases) if any(L.bias is not None for L in layers) else None)
    rep.approximations.append("the chip's membrane is an integer that saturates at "
                              f"{cfg.membrane_min}..{cfg.membrane_max} and its leak rounds half up")
    edits.append(None)
    if check_samples:
        rep.agreement, rep.effects = agreement_report(g, cfg, weights, offsets, layers, dt, rep.approximations,
                                                      edits, check_samples, check_steps, density, seed)
    return cfg, weights, offsets, rep


def _replace(node, **changes):
    """A copy of a NIR node with some parameters changed (NIR nodes are dataclasses)."""
    import dataclasses
    return dataclasses.replace(node, **changes)


def _nir_shape(v: np.ndarray, L: _Layer) -> np.ndarray:
    """A per-neuron vector in the chip's HWC order -> NIR's shape for the layer's neuron node."""
    from train.nir_ref import hwc_to_chw
    return hwc_to_chw(np.asarray(v, np.float64), L.out_shape).reshape(L.out_shape)


def _leak_edit(beta: np.ndarray, L: _Layer, dt: float):
    """The neuron node with leak ``beta`` (HWC) and the same input gain: a LIF with ``tau = dt/(1-beta)``."""
    import nir
    tau = dt / (1.0 - beta)

    def edit(node):
        # the neuron's own input gain r*dt/tau (an AvgPool's 1/k^2 stays in the pool node) is kept: r = gain*tau/dt
        gain = _nir_shape(L.gain / L.pool_scale, L)
        t = _nir_shape(tau, L)
        return nir.LIF(tau=t, r=gain * t / dt, v_leak=np.zeros_like(t), v_threshold=node.v_threshold,
                       v_reset=getattr(node, "v_reset", None), metadata=dict(node.metadata or {}))
    return edit


def _threshold_edit(thr: np.ndarray, L: _Layer):
    def edit(node):
        return _replace(node, v_threshold=_nir_shape(thr, L))
    return edit


def _bias_edit(bdq: np.ndarray, L: _Layer):
    """The Linear/Affine/Conv2d node with the chip's dequantised bias ``bdq`` (per channel / neuron, the gain folded
    in) in the node's own units."""
    def edit(node):
        return _replace(node, bias=(bdq / _bias_gain(L)).reshape(np.shape(node.bias)))
    return edit


def _weight_edit(wdq: np.ndarray, L: _Layer):
    """The Linear/Conv2d node with the dequantised chip weights ``wdq`` (chip orientation, gain folded in)
    turned back into the node's own orientation and gain."""
    from train.nir_ref import hwc_to_chw

    def edit(node):
        import nir
        gain = L.gain
        if L.entry["kind"] == "conv":
            g2 = gain.reshape(-1, L.out_shape[0])[0]
            w = (wdq / g2).transpose(3, 0, 1, 2)
            return _replace(node, weight=w)
        w = (wdq / gain[None, :]).T
        if L.flat_from:
            w = hwc_to_chw(w, L.flat_from)
        return _replace(node, weight=w)
    return edit


def _note_edit(g, note: str, dt: float):
    """The edit that applies one of :func:`parse_graph`'s notes (a dropped bias or synapse, v_reset -> 0)."""
    import nir
    name = note.split(":")[0]
    node = g.nodes.get(name)
    if node is None:
        return None
    if "bias" in note:
        return {name: lambda n: _replace(n, bias=np.zeros_like(np.asarray(n.bias, np.float64)))}
    if "synaptic current" in note:
        def edit(n):
            ts = np.asarray(n.tau_syn, np.float64)
            w_in = np.asarray(n.w_in, np.float64) * np.minimum(1.0, dt / ts)
            return _replace(n, tau_syn=np.full(np.shape(ts), dt / 2), w_in=w_in)
        return {name: edit}
    if "v_reset" in note:
        return {name: lambda n: _replace(n, v_reset=np.zeros_like(np.asarray(n.v_reset, np.float64)))}
    return None


def _nothing_left(L: _Layer, layers: Sequence[_Layer], dt: float, dt_given: bool, cfg: ChipConfig, s: float) -> str:
    """The one-line refusal of a layer whose weights all quantise to 0 LSB, with the ``dt`` range that
    keeps at least its largest weight (at ``dt**dt_power`` scaling) and every leak (``dt < tau``)."""
    m = float(np.abs(L.w).max())
    ratio = 0.501 / (m * s)                # the largest weight must grow by this factor to reach 0.5 LSB
    what = f"--dt {dt:g}" if dt_given else f"dt = {dt:g} s (the default, tau/r)"
    if L.dt_power == 0:
        return (f"node {L.linear!r}: every weight quantises to 0 LSB against threshold {L.thr.max():.4g} at "
                f"{cfg.weight_bits}-bit weights / {cfg.membrane_bits}-bit membranes (largest |w| = {m:.3g}); "
                "the layer would never spike (allowed: weights within a factor "
                f"{cfg.membrane_max * 2:d} of the threshold)")
    lo = max(dt * ratio ** (1.0 / l.dt_power) if l is L else 0.0 for l in layers)
    taus = [float(np.min(l.tau)) for l in layers if np.all(np.isfinite(l.tau))]
    hi = f"{min(taus):.3g})" if taus else "inf)"
    return (f"{what}: node {L.linear!r}'s weights times the input gain r*dt/tau (largest {m:.3g}) all quantise to "
            f"0 LSB against threshold {L.thr.max():.4g}, so the network would never spike; allowed range of dt "
            f"for this graph is [{lo:.3g}, {hi} s")


def import_nir(path: str | Path, base: ChipConfig | None = None, **kw):
    """``path`` (a ``.nir`` file) -> ``(ChipConfig, weights, offsets, NirReport)``; see :func:`import_graph`."""
    return import_graph(read_graph(path), base=base, source=str(path), **kw)


def spike_agreement(a: np.ndarray, b: np.ndarray) -> dict:
    """Agreement of two output spike tensors ``(B, T, N)``: matched spikes / spikes in either (1 if both
    silent), the share of equal entries, and the share of samples with the same predicted class."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    union = int((a | b).sum())
    return {"spike_agreement": float((a & b).sum() / union) if union else 1.0,
            "entry_agreement": float((a == b).mean()),
            "class_agreement": float((a.sum(1).argmax(1) == b.sum(1).argmax(1)).mean()),
            "spikes": [int(a.sum()), int(b.sum())]}


def reference_inputs(cfg: ChipConfig, x: np.ndarray, shape: tuple) -> np.ndarray:
    """Chip-order input spikes ``(B, T, N0)`` (HWC for an image) -> NIR's ``(B, T, *shape)`` (CHW)."""
    from train.nir_ref import hwc_to_chw
    if len(shape) == 3:
        return hwc_to_chw(x.astype(np.float64), shape).reshape(x.shape[:2] + tuple(shape))
    return x.astype(np.float64)


def reference_outputs(y: np.ndarray) -> np.ndarray:
    """NIR's output ``(B, T, *shape)`` -> the chip's ``(B, T, N)`` (HWC for an image) as bool."""
    from train.nir_ref import chw_to_hwc
    B, T = y.shape[:2]
    shape = y.shape[2:]
    flat = y.reshape(B, T, -1)
    return (chw_to_hwc(flat, shape) if len(shape) == 3 else flat) > 0


def agreement_report(g, cfg, weights, offsets, layers, dt, approximations, edits, samples=64, steps=32,
                     density=0.2, seed=0) -> tuple[dict, list]:
    """The chip (fast model) against the ORIGINAL graph in float64 (:func:`train.nir_ref.run_graph`) on random
    events shaped like the input, and the effect of each approximation on its own: the reference with only
    that change against the reference without it. The last entry (the integer membrane: saturation, rounded
    leak) has no float edit; its row compares the chip with the reference carrying every other change."""
    from sim.chip import make_chip
    from train.nir_ref import run_graph
    chain = _chain(g)
    x = np.random.default_rng(seed).random((samples, steps, cfg.layer_sizes[0])) < density
    xr = reference_inputs(cfg, x, layers[0].in_shape)
    ref = reference_outputs(run_graph(g, xr, dt, chain))
    chip = make_chip(cfg, "fast")
    chip.load(weights, offsets)
    out = chip.run(x).output
    total = {"samples": samples, "steps": steps, "density": density, **spike_agreement(ref, out)}
    effects, combined = [], {}
    for text, e in zip(approximations, edits):
        if e is None:
            if text.startswith("the chip's membrane"):
                alone = spike_agreement(reference_outputs(run_graph(g, xr, dt, chain, _compose(combined))), out)
                effects.append({"approximation": text, "alone": False, **alone})
            continue
        for k, f in e.items():
            combined.setdefault(k, []).append(f)
        alone = spike_agreement(ref, reference_outputs(run_graph(g, xr, dt, chain, e)))
        effects.append({"approximation": text, "alone": True, **alone})
    return total, effects


def _compose(edits: dict) -> dict:
    def chain_of(fs):
        def f(node):
            for h in fs:
                node = h(node)
            return node
        return f
    return {k: chain_of(v) for k, v in edits.items()}


def scnn_nmnist_graph(seed: int = 0, side: int = 34, width: tuple = (16, 16, 8), hidden: int = 256,
                      grid: int | None = None, bias: float = 0.0):
    """The NIR paper's N-MNIST SCNN as Sinabs exports it (Conv2d 2->16 5x5 stride 2 padding 1, IF; Conv2d 16->16
    3x3 padding 1, IF; SumPool2d 2; Conv2d 16->8 3x3 padding 1, IF; SumPool2d 2; Flatten; Affine 128->256, IF;
    Affine 256->10, IF, on 2x34x34), built directly as a NIR graph with random weights (normal, std
    1.5/sqrt(fan-in); thresholds 1, zero biases); ``side``/``width``/``hidden`` shrink it. ``grid``: the
    weights rounded to multiples of ``2**-grid`` (a fixed-point grid, as quantisation-aware training leaves
    them). ``bias``: every Conv2d/Affine gets a bias, normal with std ``bias`` (on the grid too; drawn from a
    generator of its own, so the weights are those of ``bias = 0``)."""
    import nir
    rng = np.random.default_rng(seed)
    brng = np.random.default_rng(seed + 1_000_003)

    def biases(n):
        if not bias:
            return np.zeros(n)
        b = brng.normal(0, bias, n)
        return b if grid is None else np.round(b * 2.0 ** grid) / 2.0 ** grid

    def normal(std, shape):
        w = rng.normal(0, std, shape)
        return w if grid is None else np.round(w * 2.0 ** grid) / 2.0 ** grid

    def conv(co, ci, k, s, p):
        return nir.Conv2d(input_shape=None, weight=normal(1.5 / np.sqrt(ci * k * k), (co, ci, k, k)),
                          stride=s, padding=p, dilation=1, groups=1, bias=biases(co))

    def IF(shape):
        return nir.IF(r=np.ones(shape), v_threshold=np.ones(shape), v_reset=np.zeros(shape))
    a, b, c = width
    h0 = (side + 2 - 5) // 2 + 1
    flat = c * (h0 // 4) ** 2
    pool = dict(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0]))
    nodes = {"input": nir.Input(input_type={"input": np.array([2, side, side])}),
             "conv0": conv(a, 2, 5, 2, 1), "if0": IF((a, h0, h0)),
             "conv1": conv(b, a, 3, 1, 1), "if1": IF((b, h0, h0)),
             "pool1": nir.SumPool2d(**pool),
             "conv2": conv(c, b, 3, 1, 1), "if2": IF((c, h0 // 2, h0 // 2)),
             "pool2": nir.SumPool2d(**pool),
             "flat": nir.Flatten(input_type={"input": np.array([c, h0 // 4, h0 // 4])}, start_dim=0),
             "fc0": nir.Affine(weight=normal(1.5 / np.sqrt(flat), (hidden, flat)), bias=biases(hidden)),
             "if3": IF(hidden),
             "fc1": nir.Affine(weight=normal(1.5 / np.sqrt(hidden), (10, hidden)), bias=biases(10)),
             "if4": IF(10),
             "output": nir.Output(output_type={"output": np.array([10])})}
    order = list(nodes)
    return nir.NIRGraph(nodes=nodes, edges=list(zip(order[:-1], order[1:])))


# -- export ----------------------------------------------------------------------------------------------
def chip_to_nir(cfg: ChipConfig, weights: Sequence[np.ndarray], offsets: Sequence[np.ndarray] | None = None,
                dt: float = SNNTORCH_DT):
    """The chip programme as a NIR graph in chip units (weights and thresholds in membrane LSBs): nodes
    ``input``, per neuron layer ``l`` a ``fc{l}`` (Affine, its bias the chip's, ``ChipConfig.bias``, or zero) or
    ``conv{l}`` (Conv2d, its bias the chip's per channel or zero, its stride and
    padding for both axes), then ``lif{l}`` (LIF, ``v_reset = 0``; ``if{l}``, NIR's IF, for ``beta = 1``);
    ``pool{l}`` (SumPool2d) for the pools before a layer, ``flat{l}`` (Flatten) before an fc layer that
    takes an image, its weight columns reordered from the chip's HWC to NIR's CHW; ``output``. Per-neuron
    parameters of a conv layer have NIR's (C, H, W) shape. The reset mode is kept in each neuron node's
    metadata (``spikeloop_reset``); NIR's own LIF/IF reset to ``v_reset``."""
    import nir
    from train.nir_ref import hwc_to_chw
    weights, offsets = cfg.check_weights(weights), cfg.check_offsets(offsets)
    image = cfg.input_shape is not None
    ishape = tuple(cfg.input_shape) if image else (cfg.layer_sizes[0],)
    nodes = {"input": nir.Input(input_type={"input": np.array(ishape)})}
    edges, prev = [], "input"

    def add(name, node):
        nonlocal prev
        nodes[name] = node
        edges.append((prev, name))
        prev = name
    shape = ishape

    def cfg_bias(l):                # in membrane LSBs per channel (fc: neuron): the exported neuron's gain is 1
        b = np.asarray(cfg.bias[l] if cfg.has_bias else np.zeros(cfg.out_channels(l)), np.int64)
        return b.astype(np.float32 if np.abs(b).max(initial=0) <= 1 << 24 else np.float64)   # float32 when exact
    for l in range(cfg.num_layers):
        kind = cfg.layer_kind(l)
        ph, pw = cfg.pool_window(l)
        if (ph, pw) != (1, 1):
            add(f"pool{l}", nir.SumPool2d(kernel_size=np.array([ph, pw]), stride=np.array([ph, pw]),
                                          padding=np.array([0, 0])))
            shape = (shape[0], shape[1] // ph, shape[2] // pw)
        w = weights[l]
        if kind == "conv":
            (kh, kw), st, (pdh, pdw) = cfg.kernel(l), cfg.stride(l), cfg.padding(l)
            sth = st if kh > 1 or shape[1] > 1 else 1
            add(f"conv{l}", nir.Conv2d(input_shape=shape[1:], weight=w.transpose(3, 0, 1, 2).astype(np.float32),
                                       stride=(sth, st), padding=(pdh, pdw), dilation=(1, 1), groups=1,
                                       bias=cfg_bias(l)))
            out = tuple(cfg.out_shape(l))
        else:
            wt = w.T
            if len(shape) == 3:
                add(f"flat{l}", nir.Flatten(input_type={"input": np.array(shape)}, start_dim=0, end_dim=-1))
                wt = hwc_to_chw(wt, shape)
            # always an Affine (a zero bias without one): Sinabs 3.1.3's from_nir maps Affine but not Linear, and
            # nirtorch 1.0 then drops the node and its edges silently (docs/guides/nir.md, "Export")
            add(f"fc{l}", nir.Affine(weight=wt.astype(np.float32), bias=cfg_bias(l)))
            out = (cfg.fan_out(l),)

        def neuron_shape(v, _out=out):
            v = np.asarray(v, np.float32)
            return hwc_to_chw(v, _out).reshape(_out) if len(_out) == 3 else v
        thr = neuron_shape(cfg.threshold[l] + offsets[l])
        meta = {"spikeloop_reset": cfg.reset, "spikeloop_threshold": int(cfg.threshold[l])}
        if cfg.beta_int[l] == 1 << cfg.beta_frac_bits:
            # no v_reset (None means 0): nir <= 1.0.4 (Sinabs' pin) has no IF.v_reset and could not read the file
            add(f"if{l}", nir.IF(r=np.ones(out, np.float32), v_threshold=thr, metadata=meta))
        else:
            tau = np.full(out, dt / (1.0 - cfg.beta_effective[l]), np.float32)
            add(f"lif{l}", nir.LIF(tau=tau, r=(tau / dt).astype(np.float32), v_leak=np.zeros(out, np.float32),
                                   v_threshold=thr, v_reset=np.zeros(out, np.float32), metadata=meta))
        shape = out
    nodes["output"] = nir.Output(output_type={"output": np.array(shape)})
    edges.append((prev, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges)


def export_notes(cfg: ChipConfig, offsets=None) -> list[str]:
    notes = ["the chip's membrane is an integer that saturates and its leak rounds half up; NIR's is real"]
    if cfg.reset == "subtract":
        notes.append("reset by subtraction kept only as node metadata (spikeloop_reset): NIR's LIF and snnTorch's "
                     "import reset to v_reset = 0")
    if offsets is not None and any(np.any(np.asarray(o) != 0) for o in offsets):
        notes.append("per-neuron thresholds (offsets): valid NIR, but snnTorch's import_from_nir needs one "
                     "threshold per layer")
    return notes


def export_nir(path: str | Path, cfg: ChipConfig, weights, offsets=None, dt: float = SNNTORCH_DT) -> Path:
    import nir
    g = chip_to_nir(cfg, weights, offsets, dt)

    def write(p):
        nir.write(p, g)
        _drop_zero_if_resets(p, g)
    return write_atomic(path, write)


def _drop_zero_if_resets(path, g) -> None:
    """Remove the all-zero ``v_reset`` that nir 1.0.8 writes for every IF node: NIR's default is 0, and nir
    <= 1.0.4 (the version Sinabs pins) has no ``IF.v_reset`` and refuses a file that carries one."""
    import h5py
    import nir
    with h5py.File(path, "r+") as f:
        for name, node in g.nodes.items():
            key = f"node/nodes/{name}/v_reset"
            if isinstance(node, nir.IF) and key in f and not np.any(f[key][()]):
                del f[key]


def write_import(out: str | Path, cfg: ChipConfig, weights, offsets, rep: NirReport) -> dict[str, Path]:
    """Write ``config.json``, ``weights.npz`` (``w{l}``, ``o{l}`` offsets) and ``nir_report.{json,txt}`` into
    ``out``, through a temporary directory renamed at the end (nothing partial on failure)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    names = {"config": "config.json", "weights": "weights.npz", "report": "nir_report.json", "text": "nir_report.txt"}
    try:
        (tmp / names["config"]).write_text(json.dumps(cfg.to_dict(), indent=2))
        np.savez(tmp / names["weights"], **{f"w{l}": w for l, w in enumerate(weights)},
                 **{f"o{l}": o for l, o in enumerate(offsets)})
        (tmp / names["report"]).write_text(json.dumps(rep.to_dict(), indent=1, default=float))
        (tmp / names["text"]).write_text(rep.text() + "\n")
        if out.exists():
            if not out.is_dir():
                raise ConfigError(f"--out {out}: is a file, not a directory")
            for n in names.values():
                os.replace(tmp / n, out / n)
        else:
            os.chmod(tmp, 0o777 & ~umask())          # mkdtemp makes it 0700; a plain mkdir follows the umask
            os.replace(tmp, out)
    finally:
        if tmp.exists():
            for f in tmp.iterdir():
                f.unlink()
            tmp.rmdir()
    return {k: out / v for k, v in names.items()}


# -- snnTorch check ---------------------------------------------------------------------------------------
def snntorch_model(g):
    """snnTorch's ``import_from_nir`` of ``g`` (its chatter on stdout silenced)."""
    from snntorch.import_nir import import_from_nir
    with contextlib.redirect_stdout(io.StringIO()):
        return import_from_nir(g)


def run_snntorch(net, x: np.ndarray) -> np.ndarray:
    """Run an ``import_from_nir`` network step by step on ``x`` ``(B, T, N0)``: output spikes ``(B, T, N_L)``."""
    import torch
    from snntorch import utils
    utils.reset(net)
    out = []
    with torch.no_grad():
        xt = torch.as_tensor(np.asarray(x), dtype=torch.float32)
        for t in range(xt.shape[1]):
            o = net(xt[:, t])
            out.append((o[0] if isinstance(o, tuple) else o).numpy() > 0)
    return np.stack(out, axis=1)


def snntorch_agreement(cfg: ChipConfig, weights, x: np.ndarray, offsets=None, chip_output=None) -> dict:
    """Export the programme, load it with snnTorch's ``import_from_nir``, run ``x`` there and on the chip
    (fast model unless ``chip_output`` is given): :func:`spike_agreement` of the two."""
    net = snntorch_model(chip_to_nir(cfg, weights, offsets))
    if chip_output is None:
        from sim.chip import make_chip
        chip = make_chip(cfg, "fast")
        chip.load(weights, offsets)
        chip_output = chip.run(x).output
    return spike_agreement(chip_output, run_snntorch(net, x))
