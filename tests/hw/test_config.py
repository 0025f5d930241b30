"""ChipConfig: the encodings and checks the RTL, the model and the drivers share."""
import warnings

import numpy as np
import pytest

from hw.bus import BusMap
from hw.config import COUNTER_NAMES, ChipConfig, ConfigError


def test_beta_encoding_rounds_ties_to_even():
    # f = 2: beta*4 = 1.5 -> 2, 2.5 -> 2 (half to even, Python round); 0.3*4 = 1.2 -> 1
    cfg = ChipConfig(layer_sizes=(2, 2, 2, 2), beta_frac_bits=2, beta=(0.375, 0.625, 0.3))
    assert cfg.beta_int == (2, 2, 1)
    # f = 3: 0.8125*8 = 6.5 -> 6 (round half up would give 7)
    assert ChipConfig(layer_sizes=(2, 2), beta_frac_bits=3, beta=0.8125).beta_int == (6,)


def test_leak_rounds_ties_half_up():
    from sim.model import leak
    # beta_int/2**f = 1/2: 3*0.5 = 1.5 -> 2, -3*0.5 = -1.5 -> -1 (half up, not to even, not away from 0)
    assert leak(np.array([3, -3, 5, -5]), 1, 1).tolist() == [2, -1, 3, -2]


def test_huge_float_weight_names_the_true_range_without_warning():
    cfg = ChipConfig(layer_sizes=(4, 3), weight_bits=4)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ConfigError, match=r"weights\[0\]: values 1e\+30\.\.1e\+30 do not fit 4-bit weights; "
                                              r"allowed range is -8\.\.7"):
            cfg.check_weights([np.full((4, 3), 1e30)])


@pytest.mark.parametrize("dtype", [np.uint64, np.uint32, np.int64])
def test_unsigned_out_of_range_is_rejected_not_wrapped(dtype):
    cfg = ChipConfig(layer_sizes=(4, 3), weight_bits=4, threshold_offset_bits=4)
    big = np.iinfo(dtype).max
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ConfigError, match=rf"weights\[0\]: values {big}\.\.{big} .*allowed range is -8\.\.7"):
            cfg.check_weights([np.full((4, 3), big, dtype)])
        with pytest.raises(ConfigError, match=rf"threshold_offsets\[0\]: values {big}\.\.{big} .*-8\.\.7"):
            cfg.check_offsets([np.full(3, big, dtype)])
    ok = cfg.check_weights([np.full((4, 3), 7, np.uint64)])[0]
    assert ok.dtype == np.int64 and (ok == 7).all()


@pytest.mark.parametrize("field, value", [("weight_bits", 4.0), ("membrane_bits", 12.0), ("lanes", 2.0),
                                          ("beta_frac_bits", 6.0), ("threshold_offset_bits", 4.0)])
def test_a_whole_float_width_is_stored_as_an_int(field, value):
    """8.0 from a JSON/TOML file passes the integer check; kept a float it reached numpy as dtype 'u2.0' (lanes)
    and a traceback from `spikeloop run --config`."""
    cfg = ChipConfig.from_dict({"layer_sizes": [8, 4], field: value})
    assert type(getattr(cfg, field)) is int and getattr(cfg, field) == value
    assert cfg.structure_hash == ChipConfig.from_dict({"layer_sizes": [8, 4], field: int(value)}).structure_hash


def test_counter_names_are_in_read_bus_order():
    cfg = ChipConfig(layer_sizes=(4, 3, 2))
    assert cfg.counter_names == ("spikes_l0", "spikes_l1") + COUNTER_NAMES
    assert BusMap(cfg).num_counters == len(cfg.counter_names)


def test_structure_hash_ignores_runtime_registers():
    cfg = ChipConfig(layer_sizes=(4, 3, 2))
    h = cfg.structure_hash
    assert len(h) == 64 and int(h, 16) >= 0
    assert cfg.replace(beta=0.3, threshold=7, reset="zero").structure_hash == h
    assert cfg.replace(lanes=2).structure_hash != h


# -- convolution and pooling (docs/chip.md, "Convolution and pooling") ----------------------------------
from hw.config import CONV_DECODE_LATENCY, Layer  # noqa: E402
from hw.bus import membranes_from_words, offset_words, unpack_lanes, weight_words  # noqa: E402

DIGITS = dict(input_shape=(1, 8, 8), layers=({"kind": "conv", "channels": 8, "kernel": 3, "padding": 1},
                                             {"kind": "pool", "size": 2}, {"kind": "fc", "size": 10}))


def test_conv_chip_derives_layer_sizes_and_geometry():
    cfg = ChipConfig(**DIGITS, lanes=3)
    assert cfg.layer_sizes == (64, 512, 10) and cfg.num_layers == 2
    assert cfg.layers[0] == Layer("conv", channels=8, kernel=3, padding=1)
    assert [cfg.layer_kind(l) for l in range(2)] == ["conv", "fc"]
    assert cfg.in_shape(0) == (1, 8, 8) and cfg.out_shape(0) == (8, 8, 8)
    assert cfg.raw_in_shape(1) == (8, 8, 8) and cfg.in_shape(1) == (8, 4, 4) and cfg.input_pool(1) == 2
    assert cfg.weight_shape(0) == (1, 3, 3, 8) and cfg.weight_shape(1) == (128, 10)
    assert cfg.groups(0) == 3 and cfg.state_words(0) == 64 * 3 and cfg.state_words(1) == 4
    assert cfg.weight_rows(0) == 9 and cfg.weight_base(1) == 9 * 3 and cfg.state_base(1) == 192
    assert cfg.weight_depth == 27 + 128 * 4 and cfg.state_depth == 196
    assert cfg.decode_latency(0) == CONV_DECODE_LATENCY and cfg.decode_latency(1) == 0
    # acc_bits: the fc layer's 128 rows x 4 pooled events per row is the largest fan-in
    assert cfg.synaptic_fan_in(1) == 512 and cfg.acc_bits == max(16, 8 + 10) + 1
    v = cfg.receptive_counts(0).reshape(8, 8)
    assert v[0, 0] == 4 and v[0, 3] == 6 and v[3, 3] == 9 and cfg.receptive_counts(1).tolist() == [1] * 512


def test_one_dimensional_signal_uses_a_1xk_kernel():
    conv = {"kind": "conv", "channels": 4, "kernel": 5, "stride": 2, "padding": 1}
    cfg = ChipConfig(input_shape=[1, 1, 40], layers=[conv, {"kind": "fc", "size": 10}])
    assert cfg.kernel(0) == (1, 5) and cfg.padding(0) == (0, 1) and cfg.out_shape(0) == (4, 1, 19)
    # 40 + 2 - 5 = 37 is odd: the last padded column is in no window (allowed: it is padding)
    assert cfg.receptive_counts(0).min() == 1
    with pytest.raises(ConfigError, match=r"layers\[1\].size=2: pooling must tile the 4x1x19 input"):
        ChipConfig(input_shape=[1, 1, 40], layers=[conv, {"kind": "pool", "size": 2}, {"kind": "fc", "size": 3}])
    cfg = cfg.replace(layers=({"kind": "conv", "channels": 4, "kernel": 4, "stride": 2, "padding": 1},
                              {"kind": "pool", "size": 2}, {"kind": "fc", "size": 10}))
    assert cfg.out_shape(0) == (4, 1, 20) and cfg.pool_window(1) == (1, 2) and cfg.in_shape(1) == (4, 1, 10)
    assert cfg.weight_shape(0) == (1, 1, 4, 4) and cfg.pool_area(1) == 2


def test_conv_round_trips_through_dict_and_hashes_stably():
    cfg = ChipConfig(**DIGITS)
    d = cfg.to_dict()
    assert d["layers"][1] == {"kind": "pool", "size": 2} and d["input_shape"] == (1, 8, 8)
    import json
    again = ChipConfig.from_dict(json.loads(json.dumps(d)))
    assert again == cfg and again.structure_hash == cfg.structure_hash
    # FC chips: no new keys, so their dicts and structure hashes are unchanged
    assert set(ChipConfig(layer_sizes=(4, 3)).to_dict()) == {"layer_sizes", "weight_bits", "membrane_bits", "lanes",
                                                            "beta_frac_bits", "threshold_offset_bits", "beta",
                                                            "threshold", "reset", "overlap"}
    assert cfg.replace(threshold=3).structure_hash == cfg.structure_hash
    assert cfg.replace(layers=cfg.layers[:2] + (Layer("fc", size=11),)).layer_sizes == (64, 512, 11)


@pytest.mark.parametrize("kwargs, match", [
    (dict(layers=[{"kind": "fc", "size": 3}]), r"input_shape: required with layers"),
    (dict(input_shape=(1, 8), layers=[{"kind": "fc", "size": 3}]), r"input_shape=\(1, 8\): expected \[C, H, W\]"),
    (dict(input_shape=(1, 8, 8), layers=[{"kind": "max", "size": 3}]), r"layers\[0\].kind='max': allowed values"),
    (dict(input_shape=(1, 8, 8), layers=[]), r"layers=\[\]: expected a non-empty list"),
    (dict(input_shape=(1, 8, 8), layers=[{"kind": "conv", "channels": 2, "kernel": 9}]),
     r"layers\[0\].kernel=9: allowed range is integers 1..7"),
    (dict(input_shape=(1, 4, 4), layers=[{"kind": "conv", "channels": 2, "kernel": 7, "padding": 1}]),
     r"layers\[0\].kernel=7: larger than the padded 1x4x4 input; allowed range is 1..6"),
    (dict(input_shape=(1, 8, 8), layers=[{"kind": "conv", "channels": 2, "kernel": 3, "padding": 3}]),
     r"layers\[0\].padding=3: allowed range is integers 0..2"),
    (dict(input_shape=(1, 8, 8), layers=[{"kind": "conv", "channels": 2, "kernel": 3, "stride": 3}]),
     r"layers\[0\].stride=3: allowed range is integers 1..2"),
    (dict(input_shape=(1, 8, 8), layers=[{"kind": "conv", "channels": 2, "kernel": 3, "stride": 2}]),
     r"layers\[0\].stride=2: leaves input rows/cols of the 1x8x8 input in no window"),
    (dict(input_shape=(1, 9, 9), layers=[{"kind": "conv", "channels": 2, "kernel": 1, "stride": 2}]),
     r"layers\[0\].stride=2: must not exceed kernel=1"),
    (dict(input_shape=(1, 8, 8), layers=[{"kind": "conv", "channels": 0}]),
     r"layers\[0\].channels=0: allowed range is integers 1..65536"),
    (dict(input_shape=(1, 8, 8), layers=[{"kind": "conv"}]), r"layers\[0\].channels: required for a conv layer"),
    (dict(input_shape=(1, 8, 8), layers=[{"kind": "fc", "size": 3, "kernel": 3}]),
     r"layers\[0\].kernel: not a field of a fc layer"),
    (dict(input_shape=(1, 8, 8), layers=[{"kind": "fc", "size": 3}, {"kind": "conv", "channels": 2}]),
     r"layers\[1\]: a conv after an fc layer"),
    (dict(input_shape=(1, 8, 8), layers=[{"kind": "fc", "size": 4}, {"kind": "pool", "size": 2},
                                         {"kind": "fc", "size": 2}]), r"layers\[1\]: a pool after an fc layer"),
    (dict(input_shape=(1, 6, 6), layers=[{"kind": "pool", "size": 4}, {"kind": "fc", "size": 2}]),
     r"layers\[0\].size=4: pooling must tile the 1x6x6 input"),
    (dict(input_shape=(1, 8, 8), layers=[{"kind": "pool", "size": 9}, {"kind": "fc", "size": 2}]),
     r"layers\[0\].size=9: allowed range is integers 2..8"),
    (dict(input_shape=(1, 8, 8), layers=[{"kind": "conv", "channels": 2}, {"kind": "pool", "size": 2}]),
     r"layers\[1\]: a pool cannot be the last entry"),
    (dict(input_shape=(1, 8, 8), layers=[{"kind": "fc", "size": 3, "bogus": 1}]), r"layers\[0\]: unknown fields"),
    (dict(input_shape=(1, 8, 8), layers=[{"kind": "fc", "size": 3}], layer_sizes=(64, 4)),
     r"layer_sizes=\(64, 4\): inconsistent with layers \(derived \[64, 3\]\)"),
    (dict(input_shape=(2, 4, 4), layer_sizes=(16, 3)), r"input_shape=\[2, 4, 4\]: C\*H\*W=32 must equal layer_sizes\[0\]=16"),
    (dict(input_shape=(1, 8, 8), layers=[{"kind": "conv", "channels": 2}], beta=(0.5, 0.5)),
     r"beta: expected one value per layer \(1\)"),
])
def test_bad_conv_config_is_one_line(kwargs, match):
    with pytest.raises(ConfigError, match=match) as e:
        ChipConfig(**kwargs)
    assert "\n" not in str(e.value)


def test_conv_weights_offsets_and_membranes_in_memory_order():
    cfg = ChipConfig(input_shape=(2, 3, 3), layers=({"kind": "conv", "channels": 3, "kernel": 2},
                                                    {"kind": "fc", "size": 2}), lanes=2, weight_bits=8)
    assert cfg.out_shape(0) == (3, 2, 2) and cfg.groups(0) == 2 and cfg.state_words(0) == 8
    w0 = np.arange(2 * 2 * 2 * 3).reshape(2, 2, 2, 3) - 12
    w1 = np.zeros((12, 2), int)
    with pytest.raises(ConfigError, match=r"weights\[0\]: expected shape \(2, 2, 2, 3\), got \(8, 3\)"):
        cfg.check_weights([w0.reshape(8, 3), w1])
    words = weight_words(cfg, [w0, w1])
    assert len(words) == cfg.weight_depth == 8 * 2 + 12
    r = (1 * 2 + 0) * 2 + 1                        # tap (c=1, ky=0, kx=1)
    assert unpack_lanes(words[r * 2], 8, 2) == w0[1, 0, 1, :2].tolist()
    assert unpack_lanes(words[r * 2 + 1], 8, 2) == [w0[1, 0, 1, 2], 0]
    off = [np.arange(12) % 5 - 2, np.zeros(2, int)]
    ow = offset_words(cfg, off)
    pos = 3                                         # (y', x') = (1, 1): neurons 9, 10, 11
    assert unpack_lanes(ow[pos * 2], 8, 2) == off[0][9:11].tolist()
    assert unpack_lanes(ow[pos * 2 + 1], 8, 2) == [off[0][11], 0]
    # membranes: the offset words read back as membranes give the neurons in HWC order again
    from hw.bus import pack_lanes
    mw = [pack_lanes(unpack_lanes(w, 8, 2), cfg.acc_bits) for w in ow]
    back = membranes_from_words(cfg, mw)
    assert back[0].tolist() == off[0].tolist() and back[1].tolist() == [0, 0]


def test_input_address_packs_coordinates():
    cfg = ChipConfig(input_shape=(2, 3, 5), layers=({"kind": "conv", "channels": 1, "kernel": 1},))
    # bc = clog2(2) = 1, bx = clog2(5) = 3: (y << 4) | (x << 1) | c
    i = (2 * 5 + 4) * 2 + 1                          # y=2, x=4, c=1
    assert cfg.input_address(i) == (2 << 4) | (4 << 1) | 1
    assert all(cfg.input_index(cfg.input_address(k)) == k for k in range(30))
    assert cfg.index_bits == 2 + 3 + 1 and cfg.packed_input
    fc = ChipConfig(input_shape=(2, 3, 5), layers=({"kind": "fc", "size": 4},))
    assert not fc.packed_input and fc.input_address(i) == i
    assert ChipConfig(layer_sizes=(30, 4)).index_bits == fc.index_bits
