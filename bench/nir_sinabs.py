"""A one-off check against Sinabs: the NIR paper's N-MNIST SCNN built in Sinabs (IAF with SingleSpike and a
reset to zero, random weights x 2.5, no biases), exported with ``sinabs.to_nir``, run by Sinabs itself on
random events; then imported by spikeloop and run on the fast chip at two widths, and run by train/nir_ref.py.

Sinabs 3.1.3 pins ``nir <= 1.0.4`` and does not go into the project's venv. The export step runs with Sinabs,
nir 1.0.4 and nirtorch 1.0 installed into a throwaway folder (``pip install --target DIR --no-deps sinabs==3.1.3
nir==1.0.4 nirtorch==1.0 pbr``) in front of the venv; the check step runs in the project's venv:

    PYTHONPATH=DIR python -m bench.nir_sinabs export OUT.nir --seed 0
    python -m bench.nir_sinabs check OUT.nir [OUT2.nir ...] [--publish]
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

B, T, DENSITY = 16, 60, 0.2
WIDTHS = ((16, 32), (8, 16))


def export(path: str, seed: int, side: int = 34, width: tuple = (16, 16, 8), hidden: int = 256, grid: int | None = None,
           threshold: float = 1.0, samples: int = B, steps: int = T, bias: float = 0.0) -> None:
    """Build, export and run one Sinabs SCNN (``side``/``width``/``hidden`` shrink it). ``grid``: weights rounded to
    multiples of ``2**-grid`` (a binary fixed-point grid, as quantisation-aware training leaves them; float32
    holds them exactly); ``threshold`` of every IAF (Sinabs fires at ``v >= threshold``, NIR and the chip at
    ``v > threshold``: a threshold off the weights' grid keeps the two from ever meeting a tie). ``bias``: every
    Conv2d and Linear gets a bias, torch's default draw times ``bias`` (on the grid too); 0: no biases."""
    import nir
    import sinabs
    import sinabs.layers as sl
    import torch
    from sinabs.activation import MembraneReset, SingleSpike
    torch.manual_seed(seed)
    a, b, c = width
    h0 = (side + 2 - 5) // 2 + 1

    def iaf():
        return sl.IAFSqueeze(batch_size=samples, spike_fn=SingleSpike, reset_fn=MembraneReset(),
                             spike_threshold=threshold)
    on = bias != 0
    net = torch.nn.Sequential(
        torch.nn.Conv2d(2, a, 5, 2, 1, bias=on), iaf(),
        torch.nn.Conv2d(a, b, 3, 1, 1, bias=on), iaf(), sl.SumPool2d(2),
        torch.nn.Conv2d(b, c, 3, 1, 1, bias=on), iaf(), sl.SumPool2d(2),
        torch.nn.Flatten(), torch.nn.Linear(c * (h0 // 4) ** 2, hidden, bias=on), iaf(),
        torch.nn.Linear(hidden, 10, bias=on), iaf())
    with torch.no_grad():
        for m in net:
            if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear)):
                m.weight.mul_(2.5)
                if grid is not None:
                    m.weight.copy_(torch.round(m.weight * 2.0 ** grid) / 2.0 ** grid)
                if on:
                    m.bias.mul_(bias)
                    if grid is not None:
                        m.bias.copy_(torch.round(m.bias * 2.0 ** grid) / 2.0 ** grid)
    g = sinabs.to_nir(net, torch.zeros(samples, 2, side, side))
    # to_nir runs the net on its zero input to trace it: with biases that charges the IAF membranes, and the run
    # below must start from rest as NIR's (and the chip's) does
    sinabs.reset_states(net)
    # sinabs 3.1.3 leaves some types None, which nir 1.0.4's writer cannot store: fill them in
    q = h0 // 2
    for k, (i, o) in {"4": ((b, h0, h0), (b, q, q)), "7": ((c, q, q), (c, q // 2, q // 2)),
                      "8": ((c, q // 2, q // 2), (c * (q // 2) ** 2,))}.items():
        g.nodes[k].input_type, g.nodes[k].output_type = {"input": np.array(i)}, {"output": np.array(o)}
    for k, hw in (("0", (side, side)), ("2", (h0, h0)), ("5", (q, q))):
        g.nodes[k].input_shape = np.array(hw)
    for v in g.nodes.values():
        for attr in ("weight", "bias", "r", "v_threshold"):
            if isinstance(getattr(v, attr, None), torch.Tensor):
                setattr(v, attr, getattr(v, attr).detach().numpy())
    nir.write(path, g)
    x = (np.random.default_rng(1000 + seed).random((samples, steps, 2, side, side)) < DENSITY).astype(np.float32)
    with torch.no_grad():
        out = net(torch.as_tensor(x.reshape(samples * steps, 2, side, side))).reshape(samples, steps, 10).numpy() > 0
    np.savez_compressed(path + ".run.npz", x=x, out=out, seed=seed, grid=-1 if grid is None else grid, bias=bias)
    print(f"{path}: Sinabs fired {int(out.sum())} output spikes")


def readback(path: str, samples: int, steps: int, seed: int, density: float) -> None:
    """Sinabs reads a spikeloop export (``spikeloop export``/``train.nir.export_nir``) with ``sinabs.from_nir`` and runs
    it on random events; saves ``PATH.readback.npz``: the input ``x`` (samples, steps, C, H, W), ``out`` (Sinabs as it
    reads the file) and ``out_strict`` (the same network with Sinabs' conventions set to NIR's IF: each IAF fires at
    ``v > T`` — Sinabs fires at ``v >= threshold``, so its threshold becomes ``T + 1/2``, which on integer membranes
    is the same —, one spike per step and a reset to ``v_reset = 0`` — ``from_nir`` builds every IF as an IAF with
    Sinabs' defaults, ``MultiSpike`` and ``MembraneSubtract`` — and no ``min_v_mem = -threshold`` floor, which
    ``from_nir`` gives every IF and NIR's IF has not)."""
    import nir
    import sinabs
    import sinabs.layers as sl
    import torch
    from sinabs.activation import MembraneReset, SingleSpike
    g = nir.read(path)
    shape = tuple(int(v) for v in np.asarray(g.nodes["input"].input_type["input"]).reshape(-1))
    x = (np.random.default_rng(seed).random((samples, steps) + shape) < density).astype(np.float32)
    outs = {}
    for strict in (False, True):
        net = sinabs.from_nir(g, batch_size=samples)
        names = [n for n, _ in net.named_children()]        # the nodes Sinabs built (a dropped one is missing)
        if strict:
            for m in net.modules():
                if isinstance(m, (sl.IAF, sl.IAFSqueeze)):
                    with torch.no_grad():
                        m.spike_threshold.add_(0.5)
                    m.min_v_mem = None
                    m.spike_fn, m.reset_fn = SingleSpike, MembraneReset()
        with torch.no_grad():
            y = net(torch.as_tensor(x.reshape((samples * steps,) + shape)))      # IAFSqueeze: sample-major
        y = y[0] if isinstance(y, tuple) else y
        outs["out_strict" if strict else "out"] = y.reshape(samples, steps, -1).numpy() > 0
        outs["modules"] = np.array(names)
    np.savez_compressed(path + ".readback.npz", x=x, seed=seed, **outs)
    print(f"{path}: Sinabs ran {', '.join(outs['modules'])}; output spikes {int(outs['out'].sum())} "
          f"(NIR's conventions: {int(outs['out_strict'].sum())})")


def check(paths: list[str], args) -> None:
    from bench.records import Recorder, spread
    from hw.config import ChipConfig
    from sim.chip import make_chip
    from train import nir as tn
    from train.nir_ref import chw_to_hwc, run_graph
    seeds = []
    rows = {f"{wb}-bit / {mb}-bit": [] for wb, mb in WIDTHS}
    refs = []
    biases = {float(np.load(p + ".run.npz").get("bias", 0.0)) for p in paths}
    if len(biases) > 1:
        raise SystemExit(f"check: the files mix networks with and without biases ({sorted(biases)}); check them apart")
    bias = biases.pop()
    # networks with biases on every layer (export --bias) are their own record
    with Recorder("nir_sinabs_bias" if bias else "nir_sinabs", args=args,
                  params={"samples": B, "steps": T, "density": DENSITY, "widths": WIDTHS, "bias": bias,
                          "sinabs": "3.1.3 (nir 1.0.4, nirtorch 1.0, outside the venv)"},
                  seeds=seeds, script=__file__) as rec:
        for path in paths:
            d = np.load(path + ".run.npz")
            x, sin, seed = d["x"], d["out"], int(d["seed"])
            seeds.append(seed)
            rec.seeds = seeds
            g = tn.read_graph(path)
            ref = None
            for wb, mb in WIDTHS:
                cfg, w, off, rep = tn.import_graph(g, base=ChipConfig(lanes=8, weight_bits=wb, membrane_bits=mb),
                                                   check_samples=0)
                assert cfg.has_bias == bool(bias)
                chip = make_chip(cfg, "fast")
                chip.load(w, off)
                out = chip.run(chw_to_hwc(x.reshape(B, T, -1), (2, 34, 34)) > 0).output
                a = tn.spike_agreement(sin, out)
                rec.round(seed=seed, weight_bits=wb, membrane_bits=mb, what="chip vs sinabs", **a)
                rows[f"{wb}-bit / {mb}-bit"].append(a)
                if ref is None:
                    ref = tn.reference_outputs(run_graph(g, x.astype(float), rep.dt))
            r = tn.spike_agreement(sin, ref)
            rec.round(seed=seed, what="train.nir_ref vs sinabs", **r)
            refs.append(r)
            print(path, r, flush=True)
        for key, v in rows.items():
            rec.summary[key] = {k: spread([a[k] for a in v]) for k in ("class_agreement", "spike_agreement",
                                                                       "entry_agreement")}
        rec.summary["nir_ref"] = {k: spread([a[k] for a in refs]) for k in ("class_agreement", "spike_agreement",
                                                                            "entry_agreement")}


def table(record: dict) -> str:
    s, p = record["summary"], record["params"]
    out = ["| against Sinabs' own run | predicted class | output spikes (matched/union) | entries |", "|---|---|---|---|"]
    for key, v in s.items():
        name = "train/nir_ref.py (float64)" if key == "nir_ref" else f"the chip, {key}"
        out.append(f"| {name} | {v['class_agreement']['mean']:.3f} ± {v['class_agreement']['std']:.3f} | "
                   f"{v['spike_agreement']['mean']:.3f} ± {v['spike_agreement']['std']:.3f} | "
                   f"{v['entry_agreement']['mean']:.4f} ± {v['entry_agreement']['std']:.4f} |")
    biased = (f", a bias on every Conv2d and Linear (torch's default draw x {p['bias']:g}), imported without "
              "--drop-biases") if p.get("bias") else ""
    out += ["", f"Mean ± std over {len(record['seeds'])} Sinabs networks (seeds {record['seeds']}){biased}, {p['samples']} "
            f"samples x {p['steps']} steps of random events at density {p['density']} each; Sinabs {p['sinabs']}."]
    return "\n".join(out)


VIEWS = {"table": table}


def main(argv=None) -> int:
    from bench.records import add_record_args
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="step", required=True)
    e = sub.add_parser("export")
    e.add_argument("path")
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--side", type=int, default=34)
    e.add_argument("--width", type=int, nargs=3, default=[16, 16, 8])
    e.add_argument("--hidden", type=int, default=256)
    e.add_argument("--grid", type=int, default=None, help="round the weights to multiples of 2**-GRID")
    e.add_argument("--threshold", type=float, default=1.0)
    e.add_argument("--samples", type=int, default=B)
    e.add_argument("--steps", type=int, default=T)
    e.add_argument("--bias", type=float, default=0.0, help="biases on every layer: torch's default draw times BIAS")
    r = sub.add_parser("readback", help="Sinabs reads and runs a spikeloop export (Sinabs outside the venv)")
    r.add_argument("path")
    r.add_argument("--samples", type=int, default=8)
    r.add_argument("--steps", type=int, default=20)
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--density", type=float, default=0.3)
    c = sub.add_parser("check")
    c.add_argument("paths", nargs="+")
    add_record_args(c)
    a = ap.parse_args(argv)
    if a.step == "readback":
        readback(a.path, a.samples, a.steps, a.seed, a.density)
    elif a.step == "export":
        export(a.path, a.seed, a.side, tuple(a.width), a.hidden, a.grid, a.threshold, a.samples, a.steps, a.bias)
    else:
        check(a.paths, a)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
