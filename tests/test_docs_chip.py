"""docs/chip.md says what the code does: the asynchronous mode refuses conv/pool chips, the first sections
point to the conv schedule (decoder fill D_l), and max_fan_in is an upper bound (checked on real chips)."""
import re
from pathlib import Path

import numpy as np
import pytest

from hw.config import ChipConfig, ConfigError
from sim.chip import make_chip

DOC = (Path(__file__).resolve().parents[1] / "docs" / "chip.md").read_text()
CONV = ChipConfig(input_shape=(1, 6, 6), layers=({"kind": "conv", "channels": 2, "kernel": 3, "padding": 1},
                                                 {"kind": "pool", "size": 2}, {"kind": "fc", "size": 3}))


def section(title: str) -> str:
    m = re.search(rf"^##+ {re.escape(title)}.*?$(.*?)(?=^## |\Z)", DOC, re.M | re.S)
    assert m, title
    return m.group(1)


def test_async_mode_refuses_conv_and_pool_chips_and_the_doc_says_so():
    chip = make_chip(CONV, "async")
    with pytest.raises(ConfigError, match="fully-connected chips only"):
        chip.load([np.zeros(CONV.weight_shape(l), np.int64) for l in range(CONV.num_layers)])
    text = section("Asynchronous event order")
    assert "Fully-connected chips only" in text and "refused" in text


def test_network_and_schedule_sections_cover_conv_layers():
    assert "Convolution and pooling" in section("Network") and "conv" in section("Network")
    sched = section("Schedule (cycle count)")
    assert "D_l" in sched and "V_e" in sched and "Convolution and pooling" in sched


def test_max_fan_in_is_an_upper_bound_in_doc_docstring_and_fact():
    assert "upper bound" in section("Convolution and pooling").split("acc_bits")[1][:300]
    assert "upper bound" in ChipConfig.synaptic_fan_in.__doc__
    # every weight 1, every input spiking: the most any neuron of the conv layer receives (its membrane
    # after one step, no leak/threshold effects below saturation) is the bound only in the interior
    cfg = CONV.replace(threshold=CONV.membrane_max, membrane_bits=16)
    chip = make_chip(cfg, "fast")
    chip.load([np.ones(cfg.weight_shape(l), np.int64) for l in range(cfg.num_layers)])
    r = chip.run(np.ones((1, 1, cfg.layer_sizes[0]), np.uint8), record_state=True)
    beta = cfg.beta_int[0] / (1 << cfg.beta_frac_bits)
    received = np.round(r.state[0][0, 0] / beta)          # u' = leak(v); v = the additions (no spike)
    bound = cfg.synaptic_fan_in(0)
    assert received.max() == bound and received.min() < bound


def test_bias_section_states_the_order_cost_and_what_is_not_built():
    from hw.config import BIAS_UPDATE_STAGES, UPDATE_LATENCY
    text = section("Bias")
    assert "`v = clamp(acc + b_j)`" in text and f"`P = {UPDATE_LATENCY + BIAS_UPDATE_STAGES}`" in text
    assert "Not built with `update = \"touched\"`" in text
    with pytest.raises(ConfigError, match="not built with update='touched'"):
        ChipConfig(layer_sizes=(4, 3), overlap=False, update="touched", bias=((1, 2, 3),))
    assert ChipConfig(layer_sizes=(4, 3), bias=((1, 2, 3),)).update_latency == UPDATE_LATENCY + BIAS_UPDATE_STAGES
    assert "7 on a chip with a bias" in section("Schedule (cycle count)")
