"""NIR (Neuromorphic Intermediate Representation, https://neuroir.org) in and out of the chip.

* :func:`import_nir` maps a NIR graph — a feed-forward chain ``Input → (Linear|Affine → LIF|CubaLIF|IF)+ →
  Output`` as snnTorch's ``export_to_nir`` or Rockpool's ``to_nir`` write it — onto a :class:`ChipConfig`
  plus integer weights and threshold offsets, and reports what it had to approximate and how well the chip
  agrees with the graph's float reference on random inputs.
* :func:`chip_to_nir` / :func:`export_nir` write a chip programme as NIR that snnTorch's ``import_from_nir``
  loads (LIF nodes with ``tau = dt/(1-beta)``, ``r = tau/dt``, ``dt = 1e-4``: snnTorch's convention).

Discretisation (NIR is continuous-time): forward Euler with step ``dt`` as snnTorch's importer, so a LIF node
gives ``beta = 1 - dt/tau`` and an input gain ``r·dt/tau`` (folded into the weights). ``dt`` defaults to
``tau/r`` when that is one number for the whole graph (unit gain, snnTorch's and Rockpool's exports), else
``1e-4``. The chip's membrane is integer, saturating and its leak rounds; NIR's is real: these are the
approximations :class:`NirReport` lists, with the measured agreement.

Only numpy, ``nir`` and :mod:`train.quant` are needed here; torch/snnTorch only for :func:`snntorch_agreement`.
"""
from __future__ import annotations

import contextlib
import io
import json
import os
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from hw.config import ChipConfig, ConfigError
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
    agreement: dict = field(default_factory=dict)       # spike/class agreement on random inputs

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
            out.append(f"  agreement with the float reference on {a['samples']} random samples x {a['steps']} steps "
                       f"(density {a['density']}): output spikes {a['spike_agreement']:.4f} (matched/union), "
                       f"entries {a['entry_agreement']:.4f}, predicted class {a['class_agreement']:.4f}")
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


def parse_graph(g, dt: float | None = None, drop_biases: bool = False, drop_synapses: bool = False
                ) -> tuple[list[_Layer], float, list[str]]:
    """The chain of ``g`` as float layers (chip orientation, gains folded), the ``dt`` used, and notes."""
    import nir
    chain = _chain(g)
    notes: list[str] = []
    body = chain[1:-1]
    for name in body:
        node = g.nodes[name]
        if isinstance(node, nir.NIRGraph):
            raise ConfigError(f"node {name!r}: a sub-graph (snnTorch/Rockpool write recurrent layers so); "
                              "the chip has no recurrence")
        if not isinstance(node, (nir.Linear, nir.Affine, nir.LIF, nir.CubaLIF, nir.IF, nir.Flatten)):
            raise ConfigError(f"node {name!r}: {type(node).__name__} is not supported; the chip carries "
                              "Linear/Affine -> LIF/CubaLIF/IF layers")
    body = [n for n in body if not isinstance(g.nodes[n], nir.Flatten)]   # 1-D data: a no-op
    if len(body) % 2 or not body:
        raise ConfigError(f"graph: expected pairs of Linear/Affine -> LIF/CubaLIF/IF between Input and Output, "
                          f"got {[f'{n}:{type(g.nodes[n]).__name__}' for n in body]}")
    for n in body[1::2]:                          # r scales the input: 0 would drop it, < 0 flip its sign
        r = getattr(g.nodes[n], "r", None)
        if r is not None:
            r = np.asarray(r, np.float64)
            if not np.all(np.isfinite(r)):
                raise ConfigError(f"node {n!r}: r contains NaN or infinite values")
            if r.size and np.min(r) <= 0:
                raise ConfigError(f"node {n!r}: r must be > 0, got min {np.min(r):g}")
    # dt: tau/r when one number for the whole graph (unit input gain), else snnTorch's 1e-4
    if dt is None:
        cands = []
        for n in body[1::2]:
            node = g.nodes[n]
            tau = getattr(node, "tau", getattr(node, "tau_mem", None))
            if tau is not None:
                cands.append(np.asarray(tau, np.float64).reshape(-1) / np.asarray(node.r, np.float64).reshape(-1))
        c = np.concatenate(cands) if cands else np.array([])
        dt = float(c[0]) if c.size and np.all(np.isfinite(c)) and c[0] > 0 and np.allclose(c, c[0], rtol=1e-4) \
            else SNNTORCH_DT
    if not (np.isfinite(dt) and dt > 0):
        raise ConfigError(f"dt={dt}: allowed range is > 0 seconds")
    layers: list[_Layer] = []
    size_in = _input_size(g.nodes[chain[0]])
    for k in range(0, len(body), 2):
        ln, nn_ = body[k], body[k + 1]
        lin, neu = g.nodes[ln], g.nodes[nn_]
        if not isinstance(lin, (nir.Linear, nir.Affine)):
            raise ConfigError(f"node {ln!r}: expected Linear/Affine before a neuron layer, got {type(lin).__name__}")
        if not isinstance(neu, (nir.LIF, nir.CubaLIF, nir.IF)):
            raise ConfigError(f"node {nn_!r}: expected LIF/CubaLIF/IF after {ln!r}, got {type(neu).__name__}")
        w = np.asarray(lin.weight, np.float64)
        if w.ndim != 2:
            raise ConfigError(f"node {ln!r}: weight has shape {w.shape}; expected (out, in)")
        if not np.all(np.isfinite(w)):
            raise ConfigError(f"node {ln!r}: weight contains NaN or infinite values")
        n_out, n_in = w.shape
        if size_in is not None and n_in != size_in:
            raise ConfigError(f"node {ln!r}: weight takes {n_in} inputs but the previous node gives {size_in} "
                              "(shapes do not chain)")
        if isinstance(lin, nir.Affine):
            b = np.asarray(lin.bias, np.float64).reshape(-1)
            if np.any(b != 0):
                if not drop_biases:
                    raise ConfigError(f"node {ln!r}: Affine bias (max |b| = {np.abs(b).max():.4g}) cannot be folded: "
                                      "the chip has no bias (retrain without bias, or drop it with --drop-biases)")
                notes.append(f"{ln}: dropped Affine bias (max |b| = {np.abs(b).max():.4g})")
        if isinstance(neu, nir.IF):
            r = _vec(nn_, "r", neu.r, n_out)
            tau = np.full(n_out, np.inf)
            beta = np.ones(n_out)
            gain = r
            v_leak = np.zeros(n_out)
        else:
            tau = _vec(nn_, "tau" if isinstance(neu, nir.LIF) else "tau_mem",
                       neu.tau if isinstance(neu, nir.LIF) else neu.tau_mem, n_out)
            if np.any(tau <= 0):
                raise ConfigError(f"node {nn_!r}: time constants must be > 0")
            r = _vec(nn_, "r", neu.r, n_out)
            beta = 1.0 - dt / tau
            gain = r * dt / tau
            v_leak = _vec(nn_, "v_leak", neu.v_leak, n_out)
        if isinstance(neu, nir.CubaLIF):
            tau_syn = _vec(nn_, "tau_syn", neu.tau_syn, n_out)
            alpha = np.clip(1.0 - dt / tau_syn, 0.0, None)
            if alpha.max() > SYN_INSTANT and not drop_synapses:
                raise ConfigError(f"node {nn_!r}: CubaLIF synaptic current keeps {alpha.max():.3f} per step "
                                  f"(tau_syn = {tau_syn.max():.3g} s at dt = {dt:g} s); the chip has no synaptic "
                                  "current (drop it with --drop-synapses)")
            w_in = _vec(nn_, "w_in", neu.w_in, n_out)
            gain = gain * w_in * np.minimum(1.0, dt / tau_syn)
            if alpha.max() > 0:
                notes.append(f"{nn_}: dropped the synaptic current (it keeps up to {alpha.max():.3f} per step)")
        if np.any(v_leak != 0):
            raise ConfigError(f"node {nn_!r}: v_leak = {v_leak.max():.4g} (a constant input) cannot be folded: the "
                              "chip's membrane leaks to 0")
        if np.any(beta <= 0) or np.any(beta > 1):
            raise ConfigError(f"node {nn_!r}: tau {tau.min():.3g} s at dt {dt:g} s gives beta = 1 - dt/tau = "
                              f"{beta.min():.4g}; the chip needs 0 < beta < 1 (give --dt)")
        thr = _vec(nn_, "v_threshold", neu.v_threshold, n_out)
        if np.any(thr <= 0):
            raise ConfigError(f"node {nn_!r}: v_threshold must be > 0, got min {thr.min():.4g}")
        v_reset = neu.v_reset if getattr(neu, "v_reset", None) is not None else 0.0
        v_reset = _vec(nn_, "v_reset", v_reset, n_out)
        meta_reset = (neu.metadata or {}).get("spikeloop_reset")
        if isinstance(meta_reset, bytes):
            meta_reset = meta_reset.decode()
        if meta_reset in ("subtract", "zero"):
            reset = str(meta_reset)
        else:
            reset = "zero"
            if np.any(v_reset != 0):
                notes.append(f"{nn_}: reset to v_reset = {v_reset.max():.4g} approximated by a reset to 0")
        gain = np.where(np.abs(gain - 1.0) < 1e-5, 1.0, gain)    # float32 noise of r = tau/dt
        base_thr = (neu.metadata or {}).get("spikeloop_threshold")
        base_thr = float(np.asarray(base_thr).reshape(-1)[0]) if base_thr is not None else None
        layers.append(_Layer(ln, nn_, type(neu).__name__, (w * gain[:, None]).T, tau, thr, beta, reset, base_thr))
        size_in = n_out
    out_size = _output_size(g.nodes[chain[-1]])
    if out_size is not None and out_size != size_in:
        raise ConfigError(f"node {chain[-1]!r}: Output has {out_size} entries but the last layer has {size_in} "
                          "neurons (shapes do not chain)")
    if len({l.reset for l in layers}) > 1:
        raise ConfigError("graph: layers use different reset modes; the chip has one")
    return layers, dt, notes


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
    return whole(w) and whole(thr) and round(w.min(initial=0)) >= cfg.weight_min and \
        round(w.max(initial=0)) <= cfg.weight_max and round(thr.max()) <= cfg.membrane_max


def import_graph(g, base: ChipConfig | None = None, dt: float | None = None, drop_biases: bool = False,
                 drop_synapses: bool = False, source: str = "<graph>", check_samples: int = 64,
                 check_steps: int = 32, density: float = 0.2, seed: int = 0):
    """A NIR graph -> ``(ChipConfig, weights, offsets, NirReport)``; widths/lanes come from ``base``."""
    base = base or ChipConfig()
    layers, dt, notes = parse_graph(g, dt, drop_biases, drop_synapses)
    sizes = (layers[0].w.shape[0],) + tuple(l.w.shape[1] for l in layers)
    base = base.replace(layer_sizes=sizes, beta=0.5, threshold=1, reset=layers[0].reset)
    one = 1 << base.beta_frac_bits
    rep = NirReport(source=source, dt=dt, approximations=list(notes))
    weights, offsets, betas, thrs = [], [], [], []
    for l, L in enumerate(layers):
        if np.all(np.isinf(L.tau)):
            beta = 1.0 - 1.0 / one
            rep.approximations.append(f"{L.neuron}: IF (no leak) approximated by beta = {beta:.5f} (largest below 1)")
        else:
            beta = float(np.mean(L.beta))
            if np.ptp(L.beta) > 0.5 / one:
                rep.approximations.append(f"{L.neuron}: per-neuron beta {L.beta.min():.4f}..{L.beta.max():.4f} "
                                          f"replaced by the layer mean {beta:.4f}")
            beta = min(max(beta, 1.0 / one), 1.0 - 1.0 / one)
        bq = min(one - 1, max(1, int(round(beta * one)))) / one
        if abs(bq - beta) > 1e-6:
            rep.approximations.append(f"{L.neuron}: beta {beta:.6f} -> {bq:.6f} ({base.beta_frac_bits} fraction bits)")
        if _is_chip_units(base, L.w, L.thr):
            s = 1.0
        else:
            s = layer_scale(base, L.w, float(L.thr.max()))
        wq = np.clip(np.rint(L.w * s), base.weight_min, base.weight_max).astype(np.int64)
        if np.any(L.w != 0) and not np.any(wq):
            raise ConfigError(f"node {L.linear!r}: every weight rounds to 0 on the chip (largest |w| "
                              f"{np.abs(L.w).max():.3g} units at {s:.3g} LSB/unit, dt {dt:g} s); the layer could "
                              "never spike — check --dt (default: tau/r of the graph)")
        tq = np.clip(np.rint(L.thr * s), 1, base.membrane_max).astype(np.int64)
        t0 = int(round(L.base_threshold * s)) if L.base_threshold else int(np.round(np.median(tq)))
        off = np.clip(tq - t0, base.offset_min, base.offset_max)
        off = np.clip(t0 + off, 0, base.membrane_max) - t0
        if np.any(off != tq - t0):
            rep.approximations.append(f"{L.neuron}: per-neuron thresholds clipped to the {base.threshold_offset_bits}"
                                      f"-bit offset range (largest error {np.abs(off - (tq - t0)).max()} LSB)")
        if s != 1.0:
            err = np.abs(wq / s - L.w).max()
            rep.approximations.append(f"{L.linear}: weights quantised to {base.weight_bits} bits at {s:.4g} LSB/unit "
                                      f"(largest error {err:.3g} units); threshold {L.thr.max():.4g} -> {t0} LSB")
        weights.append(wq)
        offsets.append(off.astype(np.int64))
        betas.append(bq)
        thrs.append(t0)
        rep.layers.append({"linear": L.linear, "neuron": L.neuron, "kind": L.kind, "fan_in": L.w.shape[0],
                           "fan_out": L.w.shape[1], "beta": float(np.mean(L.beta)), "beta_chip": bq, "scale": s,
                           "threshold": t0, "offsets": [int(off.min()), int(off.max())]})
    cfg = base.replace(beta=tuple(betas), threshold=tuple(thrs))
    rep.approximations.append("the chip's membrane is an integer that saturates at "
                              f"{cfg.membrane_min}..{cfg.membrane_max} and its leak rounds half up")
    if check_samples:
        rep.agreement = agreement(cfg, weights, offsets, layers, check_samples, check_steps, density, seed)
    return cfg, weights, offsets, rep


def import_nir(path: str | Path, base: ChipConfig | None = None, **kw):
    """``path`` (a ``.nir`` file) -> ``(ChipConfig, weights, offsets, NirReport)``; see :func:`import_graph`."""
    return import_graph(read_graph(path), base=base, source=str(path), **kw)


def float_reference(layers: Sequence[_Layer], x: np.ndarray) -> np.ndarray:
    """The NIR graph under the chip's discretisation in float64: output spikes ``(B, T, N_L)``."""
    B, T, _ = x.shape
    u = [np.zeros((B, L.w.shape[1])) for L in layers]
    out = np.zeros((B, T, layers[-1].w.shape[1]), bool)
    for t in range(T):
        h = x[:, t].astype(np.float64)
        for l, L in enumerate(layers):
            v = u[l] + h @ L.w
            s = v > L.thr
            lv = v * L.beta
            u[l] = lv - s * L.thr if L.reset == "subtract" else np.where(s, 0.0, lv)
            h = s.astype(np.float64)
        out[:, t] = h
    return out


def spike_agreement(a: np.ndarray, b: np.ndarray) -> dict:
    """Agreement of two output spike tensors ``(B, T, N)``: matched spikes / spikes in either (1 if both
    silent), the share of equal entries, and the share of samples with the same predicted class."""
    a, b = np.asarray(a, bool), np.asarray(b, bool)
    union = int((a | b).sum())
    return {"spike_agreement": float((a & b).sum() / union) if union else 1.0,
            "entry_agreement": float((a == b).mean()),
            "class_agreement": float((a.sum(1).argmax(1) == b.sum(1).argmax(1)).mean()),
            "spikes": [int(a.sum()), int(b.sum())]}


def agreement(cfg, weights, offsets, layers, samples=64, steps=32, density=0.2, seed=0) -> dict:
    from sim.chip import make_chip
    x = np.random.default_rng(seed).random((samples, steps, cfg.layer_sizes[0])) < density
    chip = make_chip(cfg, "fast")
    chip.load(weights, offsets)
    d = spike_agreement(float_reference(layers, x), chip.run(x).output)
    return {"samples": samples, "steps": steps, "density": density, **d}


# -- export ----------------------------------------------------------------------------------------------
def chip_to_nir(cfg: ChipConfig, weights: Sequence[np.ndarray], offsets: Sequence[np.ndarray] | None = None,
                dt: float = SNNTORCH_DT):
    """The chip programme as a NIR graph in chip units (weights and thresholds in membrane LSBs): nodes
    ``input``, ``fc{l}`` (Linear), ``lif{l}`` (LIF, ``v_reset = 0``), ``output``. The reset mode is kept in
    each LIF node's metadata (``spikeloop_reset``); NIR's own LIF resets to ``v_reset``."""
    import nir
    if any(cfg.layer_kind(l) == "conv" or cfg.pool_area(l) > 1 for l in range(cfg.num_layers)):
        raise ConfigError("NIR export: conv and pool layers are not exported yet (fc-only chips); "
                          f"this chip has layers {[ly.to_dict() for ly in cfg.layers]}")
    weights, offsets = cfg.check_weights(weights), cfg.check_offsets(offsets)
    nodes = {"input": nir.Input(input_type={"input": np.array([cfg.layer_sizes[0]])})}
    edges, prev = [], "input"
    for l in range(cfg.num_layers):
        n = cfg.fan_out(l)
        tau = np.full(n, dt / (1.0 - cfg.beta_effective[l]), np.float32)
        nodes[f"fc{l}"] = nir.Linear(weight=weights[l].T.astype(np.float32))
        nodes[f"lif{l}"] = nir.LIF(tau=tau, r=(tau / dt).astype(np.float32), v_leak=np.zeros(n, np.float32),
                                   v_threshold=(cfg.threshold[l] + offsets[l]).astype(np.float32),
                                   v_reset=np.zeros(n, np.float32),
                                   metadata={"spikeloop_reset": cfg.reset,
                                             "spikeloop_threshold": int(cfg.threshold[l])})
        edges += [(prev, f"fc{l}"), (f"fc{l}", f"lif{l}")]
        prev = f"lif{l}"
    nodes["output"] = nir.Output(output_type={"output": np.array([cfg.layer_sizes[-1]])})
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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str | Path, write) -> Path:
    """Call ``write(tmp_path)`` on a temporary file beside ``path``, then rename it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=path.suffix, dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        os.chmod(tmp, 0o666 & ~_umask())          # mkstemp makes 0600; a written file follows the umask
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def export_nir(path: str | Path, cfg: ChipConfig, weights, offsets=None, dt: float = SNNTORCH_DT) -> Path:
    import nir
    g = chip_to_nir(cfg, weights, offsets, dt)
    return write_atomic(path, lambda p: nir.write(p, g))


def write_import(out: str | Path, cfg: ChipConfig, weights, offsets, rep: NirReport) -> dict[str, Path]:
    """Write ``config.json``, ``weights.npz`` (``w{l}``, ``o{l}`` offsets) and ``nir_report.{json,txt}`` into
    ``out``, through a temporary directory renamed at the end (nothing partial on failure)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
    os.chmod(tmp, 0o777 & ~_umask())              # mkdtemp makes 0700; the folder follows the umask
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
