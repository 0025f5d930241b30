"""Convolutional NIR in and out (issue #22): Conv2d / SumPool2d / Flatten graphs onto conv chips, exact IF
neurons, the faithful import report, and export of conv chips that our import and snnTorch read back."""
import nir
import numpy as np
import pytest
import torch

from hw.config import ChipConfig, ConfigError
from sim.chip import make_chip
from sim.sample import random_spikes
from train import nir as tn
from train.nir_ref import chw_to_hwc, hwc_to_chw, run_graph

CONV_IF = ChipConfig(input_shape=(2, 6, 6), lanes=4, beta=1.0, threshold=(12, 9, 7), reset="zero",
                     layers=({"kind": "conv", "channels": 3, "kernel": 3, "stride": 1, "padding": 1},
                             {"kind": "conv", "channels": 4, "kernel": 3, "stride": 2, "padding": 1},
                             {"kind": "pool", "size": 3}, {"kind": "fc", "size": 5}))


def _programme(cfg, seed=0):
    rng = np.random.default_rng(seed)
    w = [rng.integers(-3, 6, cfg.weight_shape(l)) for l in range(cfg.num_layers)]
    off = [rng.integers(-2, 3, cfg.fan_out(l)) for l in range(cfg.num_layers)]
    return w, off


def test_hwc_chw_reorder_is_exact_and_inverse():
    shape = (3, 4, 5)
    a = np.arange(60)
    hwc = chw_to_hwc(a, shape)
    # element (c, y, x) of the CHW array sits at HWC address (y*W + x)*C + c
    assert all(hwc[(y * 5 + x) * 3 + c] == a[(c * 4 + y) * 5 + x] for c in range(3) for y in range(4) for x in range(5))
    assert np.array_equal(hwc_to_chw(hwc, shape), a)


def test_conv_chip_round_trips_through_nir_exactly(tmp_path):
    """chip -> NIR (Conv2d, IF, SumPool2d, Flatten, Linear) -> file -> import: the same chip, weights and offsets;
    the independent float reference of the file fires exactly the chip's spikes (integer units, no leak)."""
    w, off = _programme(CONV_IF)
    path = tn.export_nir(tmp_path / "c.nir", CONV_IF, w, off)
    import h5py
    with h5py.File(path) as f:          # readable by nir <= 1.0.4 (Sinabs' pin): IF nodes carry no v_reset
        assert "node/nodes/if0/r" in f and "node/nodes/if0/v_reset" not in f
    g = nir.read(path)
    assert [type(g.nodes[n]).__name__ for n in tn._chain(g)] == \
        ["Input", "Conv2d", "IF", "Conv2d", "IF", "SumPool2d", "Flatten", "Affine", "IF", "Output"]
    cfg2, w2, off2, rep = tn.import_graph(g, base=CONV_IF, check_samples=24, check_steps=12, density=0.3)
    assert cfg2 == CONV_IF
    assert all(np.array_equal(a, b) for a, b in zip(w, w2)) and all(np.array_equal(a, b) for a, b in zip(off, off2))
    a = rep.agreement
    assert a["spikes"][0] > 20 and a["spike_agreement"] == 1.0 and a["entry_agreement"] == 1.0
    assert not [e for e in rep.approximations if "IF" in e]                      # IF is exact now


def test_conv_import_refuses_what_the_chip_cannot_carry():
    w, off = _programme(CONV_IF)
    g = tn.chip_to_nir(CONV_IF, w, off)
    c = g.nodes["conv0"]

    def conv(**kw):
        d = dict(input_shape=c.input_shape, weight=c.weight, stride=c.stride, padding=c.padding, dilation=c.dilation,
                 groups=c.groups, bias=c.bias)
        d.update(kw)
        return nir.Conv2d(**d)
    cases = [(conv(dilation=(2, 2)), "node 'conv0': dilation"),
             (conv(stride=(1, 2)), r"node 'conv0': kernel 3x3, stride \(1, 2\)"),
             (conv(bias=np.ones(5, np.float32)), "node 'conv0': bias has 5 entries; expected 3"),
             (conv(bias=np.array([1.0, np.nan, 0.0])), "node 'conv0': bias contains NaN"),
             (conv(padding="same"), "node 'conv0': padding = 'same'")]
    for node, msg in cases:
        g2 = tn.chip_to_nir(CONV_IF, w, off)
        g2.nodes["conv0"] = node
        with pytest.raises(ConfigError, match=msg):
            tn.import_graph(g2, base=CONV_IF, check_samples=0)
    g2 = tn.chip_to_nir(CONV_IF, w, off)
    g2.nodes["pool2"] = nir.SumPool2d(kernel_size=np.array([3, 3]), stride=np.array([1, 1]), padding=np.array([0, 0]))
    with pytest.raises(ConfigError, match="node 'pool2': pool kernel"):
        tn.import_graph(g2, base=CONV_IF, check_samples=0)
    # a bias dropped on request: listed with its own effect on agreement against the original
    g2 = tn.chip_to_nir(CONV_IF, w, off)
    g2.nodes["conv0"] = conv(bias=np.full(3, 4.0, np.float32))
    _, _, _, rep = tn.import_graph(g2, base=CONV_IF, drop_biases=True, check_samples=16, check_steps=10, density=0.3)
    eff = [e for e in rep.effects if "bias" in e["approximation"]]
    assert len(eff) == 1 and eff[0]["alone"] and eff[0]["spike_agreement"] < 1.0
    # the total is measured against the original graph (with its bias), so it is no better than that one change
    assert rep.agreement["spike_agreement"] == pytest.approx(eff[0]["spike_agreement"], abs=1e-9)


def _snntorch_conv_net(seed=0):
    import snntorch as snn
    torch.manual_seed(seed)
    conv = torch.nn.Conv2d(2, 4, 3, padding=1, bias=False)
    lin = torch.nn.Linear(4 * 6 * 6, 3, bias=False)
    with torch.no_grad():
        conv.weight.mul_(4.0)
        lin.weight.mul_(8.0)
    return torch.nn.Sequential(conv, snn.Leaky(beta=torch.full((4, 6, 6), 0.9), threshold=torch.ones(4, 6, 6),
                                               init_hidden=True),
                               torch.nn.Flatten(), lin,
                               snn.Leaky(beta=torch.full((3,), 0.8), threshold=torch.ones(3), init_hidden=True,
                                         output=True))


def _run_snntorch_unbatched(net, xr):
    """snnTorch's import maps NIR's Flatten(start_dim=0) (no batch axis in NIR) to torch's Flatten(0, -1), which
    would flatten a batch too: run it one sample at a time, without a batch axis."""
    from snntorch import utils
    out = []
    with torch.no_grad():
        for b in range(xr.shape[0]):
            utils.reset(net)
            o = [net(torch.as_tensor(xr[b, t], dtype=torch.float32)) for t in range(xr.shape[1])]
            out.append(np.stack([(v[0] if isinstance(v, tuple) else v).numpy() > 0 for v in o]))
    return np.stack(out)


def test_snntorch_conv2d_leaky_graph_imports_and_agrees():
    from snntorch.export_nir import export_to_nir
    net = _snntorch_conv_net()
    g = export_to_nir(net, torch.zeros(1, 2, 6, 6), ignore_dims=[0])
    cfg, w, off, rep = tn.import_graph(g, base=ChipConfig(lanes=4, weight_bits=16, membrane_bits=32),
                                       check_samples=32, check_steps=20, density=0.3)
    assert cfg.input_shape == (2, 6, 6) and [ly.kind for ly in cfg.layers] == ["conv", "fc"]
    assert cfg.beta_effective[0] == pytest.approx(0.9, abs=2e-3)
    # the independent reference is the network snnTorch itself runs (its import of the same file)
    x = np.random.default_rng(1).random((16, 20, 72)) < 0.3
    xr = tn.reference_inputs(cfg, x, (2, 6, 6))
    ref = tn.reference_outputs(run_graph(g, xr, rep.dt))
    sn = _run_snntorch_unbatched(tn.snntorch_model(g), xr)
    assert (ref == sn).mean() > 0.99 and ref.sum() > 20
    a = rep.agreement
    assert a["spikes"][0] > 20 and a["class_agreement"] >= 0.9 and a["entry_agreement"] > 0.95


def test_conv_chip_export_is_read_by_snntorch():
    """A conv chip without pools (snnTorch's import has no SumPool2d) and with one threshold per layer:
    snnTorch runs the exported file; it agrees with the chip except where the chip's leak rounds."""
    cfg = ChipConfig(input_shape=(2, 6, 6), lanes=4, beta=(0.75, 0.5), threshold=(6, 5), reset="zero",
                     layers=({"kind": "conv", "channels": 3, "kernel": 3, "stride": 1, "padding": 1},
                             {"kind": "fc", "size": 4}))
    rng = np.random.default_rng(2)
    w = [rng.integers(-2, 5, cfg.weight_shape(l)) for l in range(2)]
    g = tn.chip_to_nir(cfg, w)
    x = random_spikes(cfg, 16, 12, 0.3, 3)
    xr = tn.reference_inputs(cfg, x, (2, 6, 6))
    sn = _run_snntorch_unbatched(tn.snntorch_model(g), xr).reshape(out_shape := (16, 12, -1))
    chip = make_chip(cfg, "fast")
    chip.load(w)
    out = chip.run(x).output
    a = tn.spike_agreement(out, sn)
    assert out.sum() > 20 and a["entry_agreement"] > 0.9 and a["class_agreement"] > 0.8


def test_pooled_conv_chip_export_is_read_by_snntorch():
    """snnTorch 1.0 (with nirtorch 2) reads the export's SumPool2d as LPPool2d(norm_type=1), a sum pool: a LIF conv
    chip with a pool runs there and agrees with the chip except where the chip's leak rounds."""
    cfg = ChipConfig(input_shape=(2, 8, 8), lanes=4, beta=(0.75, 0.5), threshold=(6, 5), reset="zero",
                     layers=({"kind": "conv", "channels": 3, "kernel": 3, "stride": 1, "padding": 1},
                             {"kind": "pool", "size": 2}, {"kind": "fc", "size": 4}))
    rng = np.random.default_rng(4)
    w = [rng.integers(-2, 5, cfg.weight_shape(l)) for l in range(2)]
    g = tn.chip_to_nir(cfg, w)
    net = tn.snntorch_model(g)
    assert any(type(m).__name__ == "LPPool2d" and m.norm_type == 1 for m in net.modules())
    x = random_spikes(cfg, 16, 12, 0.3, 5)
    sn = _run_snntorch_unbatched(net, tn.reference_inputs(cfg, x, (2, 8, 8))).reshape(16, 12, -1)
    chip = make_chip(cfg, "fast")
    chip.load(w)
    out = chip.run(x).output
    a = tn.spike_agreement(out, sn)
    assert out.sum() > 20 and a["entry_agreement"] > 0.9 and a["class_agreement"] > 0.8


def scnn_graph(seed=0, side=34, width=(16, 16, 8), hidden=256):
    return tn.scnn_nmnist_graph(seed, side, width, hidden)


def test_nmnist_scnn_maps_onto_the_chip_layer_for_layer():
    g = scnn_graph()
    cfg, w, off, rep = tn.import_graph(g, base=ChipConfig(lanes=8, weight_bits=16, membrane_bits=32), check_samples=0)
    assert cfg.input_shape == (2, 34, 34)
    assert [ly.to_dict() for ly in cfg.layers] == [
        {"kind": "conv", "channels": 16, "kernel": 5, "stride": 2, "padding": 1},
        {"kind": "conv", "channels": 16, "kernel": 3, "stride": 1, "padding": 1}, {"kind": "pool", "size": 2},
        {"kind": "conv", "channels": 8, "kernel": 3, "stride": 1, "padding": 1}, {"kind": "pool", "size": 2},
        {"kind": "fc", "size": 256}, {"kind": "fc", "size": 10}]
    assert cfg.layer_sizes == (2312, 4096, 4096, 512, 256, 10) and cfg.beta_effective == (1.0,) * 5
    # the Flatten's CHW order became the chip's HWC rows: row (y*4 + x)*8 + c holds NIR column c*16 + y*4 + x
    W = np.asarray(g.nodes["fc0"].weight)
    s = rep.layers[3]["scale"]
    assert np.allclose(w[3][(1 * 4 + 2) * 8 + 5] / s, W[:, 5 * 16 + 1 * 4 + 2], atol=1 / s)


def test_small_scnn_on_the_fast_chip_agrees_with_the_float_graph():
    g = scnn_graph(side=18, width=(6, 6, 4), hidden=32)
    _, _, _, rep = tn.import_graph(g, base=ChipConfig(lanes=4, weight_bits=16, membrane_bits=32),
                                   check_samples=32, check_steps=24, density=0.3)
    a = rep.agreement
    assert a["spikes"][0] > 100
    assert a["class_agreement"] >= 0.9
    # the integer chip itself adds nothing beyond the quantisation (the last effect row)
    assert rep.effects[-1]["entry_agreement"] > 0.99


@pytest.mark.cocotb
@pytest.mark.slow       # the Sinabs export's and the snnTorch graph's Verilator tests below cover these kinds by default
def test_small_imported_scnn_is_bit_and_cycle_exact_on_verilator():
    """A small SCNN of the same kinds (conv s2 p1 -> IF, conv -> IF, pool, conv -> IF, pool, flatten, fc -> IF,
    fc -> IF), imported from NIR: Verilator's run of the generated Verilog equals the fast model's in every
    spike, membrane and counter."""
    from tests.compare import assert_same
    from tests.hw.test_cocotb import need
    need("verilator")
    g = scnn_graph(seed=1, side=10, width=(3, 3, 2), hidden=6)
    cfg, w, off, _ = tn.import_graph(g, base=ChipConfig(lanes=2), check_samples=0)
    assert cfg.beta_int == (1 << cfg.beta_frac_bits,) * 5
    x = random_spikes(cfg, 2, 6, 0.4, 5)
    fast, rtl = make_chip(cfg, "fast"), make_chip(cfg, "verilator")
    fast.load(w, off)
    rtl.load(w, off)
    a, b = fast.run(x, record_state=True), rtl.run(x, record_state=True)
    assert a.counters["spikes_l0"].sum() > 0
    assert_same(a, b)


# -- issue #22 item 7: exactness where the weights allow it; a Sinabs export ------------------------------------
SINABS_SMALL = __import__("pathlib").Path(__file__).parent / "data" / "sinabs_scnn_small.nir"


def _sinabs_small():
    """A Sinabs 3.1.3 export (``bench/nir_sinabs.py export ... --side 18 --width 4 4 4 --hidden 16 --grid 12
    --threshold 1.00018310546875 --samples 8 --steps 30 --seed 3``, Sinabs outside the venv) of the N-MNIST
    SCNN's layer kinds with random weights on a 2**-12 grid, and Sinabs' own run of it."""
    d = np.load(str(SINABS_SMALL) + ".run.npz")
    return tn.read_graph(SINABS_SMALL), d["x"], d["out"]


def test_sinabs_export_with_representable_weights_imports_exactly():
    """Weights on a binary grid that fits 16 bits: the import finds the power-of-two scale, the chip's integer
    IF membrane is the graph's times 4096 exactly, and the threshold 1 + 3*2**-14 (4096.75 LSB) becomes 4096
    (V > 4096.75 exactly when V > 4096): the fast chip fires Sinabs' spikes one for one."""
    g, x, sinabs_out = _sinabs_small()
    cfg, w, off, rep = tn.import_graph(g, base=ChipConfig(lanes=4, weight_bits=16, membrane_bits=32),
                                       check_samples=16, check_steps=20, density=0.3)
    assert [d["scale"] for d in rep.layers] == [4096.0] * 5 and cfg.threshold == (4096,) * 5
    x_chip = chw_to_hwc(x.reshape(x.shape[0], x.shape[1], -1), cfg.input_shape) > 0
    chip = make_chip(cfg, "fast")
    chip.load(w, off)
    out = chip.run(x_chip).output
    assert sinabs_out.sum() > 100 and np.array_equal(out, sinabs_out)
    assert rep.agreement["entry_agreement"] == 1.0 and rep.agreement["spikes"][0] > 20
    # rounding the threshold to nearest (4097) fires one LSB late: the same chip then differs
    late = make_chip(cfg.replace(threshold=(4097,) * 5), "fast")
    late.load(w, off)
    assert not np.array_equal(late.run(x_chip).output, sinabs_out)


def test_exact_scale_and_chip_threshold():
    cfg = ChipConfig(weight_bits=8, membrane_bits=16)
    w = np.array([3, -5, 0, 127]) / 64.0
    assert tn.exact_scale(cfg, w, np.array([1.0])) == 64.0
    assert tn.exact_scale(cfg, w / 3.0, np.array([1.0])) == pytest.approx(127 * 3 / (127 / 64))  # max-abs grid
    assert tn.exact_scale(cfg, np.array([0.1, 0.3337]), np.array([1.0])) is None                  # off any grid
    assert tn.exact_scale(cfg, np.array([1e-12, 1.0]), np.array([1.0])) is None    # 1e-12 would become 0
    assert tn.chip_threshold(np.array([4096.75, 4096.0, 4095.9999999999])).tolist() == [4096, 4096, 4096]


@pytest.mark.cocotb
@pytest.mark.slow
def test_sinabs_export_is_bit_and_cycle_exact_on_verilator():
    """The Sinabs export above on Verilator: the generated Verilog equals the fast model (every spike, membrane
    and counter), so it, too, fires Sinabs' spikes. Slow: the default suite runs the same layer kinds with a bias
    on every layer on Verilator (tests/train/test_nir_bias.py)."""
    from tests.compare import assert_same
    from tests.hw.test_cocotb import need
    need("verilator")
    g, x, sinabs_out = _sinabs_small()
    cfg, w, off, _ = tn.import_graph(g, base=ChipConfig(lanes=4, weight_bits=16, membrane_bits=32), check_samples=0)
    x_chip = chw_to_hwc(x[:2, :12].reshape(2, 12, -1), cfg.input_shape) > 0
    fast, rtl = make_chip(cfg, "fast"), make_chip(cfg, "verilator")
    fast.load(w, off)
    rtl.load(w, off)
    a, b = fast.run(x_chip, record_state=True), rtl.run(x_chip, record_state=True)
    assert np.array_equal(a.output, sinabs_out[:2, :12]) and a.counters["spikes_l0"].sum() > 0
    assert_same(a, b)


@pytest.mark.cocotb
def test_snntorch_conv2d_leaky_graph_is_bit_and_cycle_exact_on_verilator():
    """The snnTorch Conv2d+Leaky export above, imported: Verilator's run of the generated Verilog equals the
    fast model's (which agrees with snnTorch's run, test_snntorch_conv2d_leaky_graph_imports_and_agrees)."""
    from snntorch.export_nir import export_to_nir
    from tests.compare import assert_same
    from tests.hw.test_cocotb import need
    need("verilator")
    g = export_to_nir(_snntorch_conv_net(), torch.zeros(1, 2, 6, 6), ignore_dims=[0])
    cfg, w, off, _ = tn.import_graph(g, base=ChipConfig(lanes=4, weight_bits=16, membrane_bits=32), check_samples=0)
    x = random_spikes(cfg, 2, 8, 0.3, 4)
    fast, rtl = make_chip(cfg, "fast"), make_chip(cfg, "verilator")
    fast.load(w, off)
    rtl.load(w, off)
    a, b = fast.run(x, record_state=True), rtl.run(x, record_state=True)
    assert a.output.sum() > 0
    assert_same(a, b)


@pytest.mark.slow
def test_full_nmnist_scnn_on_a_weight_grid_is_exact_on_the_fast_chip():
    """The issue's architecture at full size (2x34x34) with random weights on a 2**-14 grid: the import takes the
    power-of-two scale 2**14 for every layer and the fast chip fires the float graph's spikes one for one."""
    g = tn.scnn_nmnist_graph(21, grid=14)
    cfg, w, off, rep = tn.import_graph(g, base=ChipConfig(lanes=8, weight_bits=16, membrane_bits=32),
                                       check_samples=4, check_steps=40)
    assert [d["scale"] for d in rep.layers] == [2.0 ** 14] * 5
    a = rep.agreement
    assert a["spikes"][0] > 20 and a["entry_agreement"] == 1.0 and a["spike_agreement"] == 1.0
