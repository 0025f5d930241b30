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
