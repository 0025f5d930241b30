"""ChipConfig.update ("all" | "touched") and max_steps: validation, the overlap's banks, the structure hash
(an "all" chip's dict is as before), the step limit of a touched chip and the command-line flags."""
import json

import numpy as np
import pytest

from hw.config import MAX_STEPS_DEFAULT, TOUCHED_UPDATE_LATENCY, UPDATE_LATENCY, ChipConfig, ConfigError


def test_default_is_all_and_its_dict_is_unchanged():
    cfg = ChipConfig(layer_sizes=(4, 3))
    assert cfg.update == "all" and not cfg.touched and cfg.update_latency == UPDATE_LATENCY
    assert "update" not in cfg.to_dict() and "max_steps" not in cfg.to_dict()
    assert cfg.leak_table_depth == 0


def test_touched_round_trips_and_changes_the_structure():
    cfg = ChipConfig(layer_sizes=(4, 3, 2), update="touched", overlap=False, max_steps=20)
    d = json.loads(json.dumps(cfg.to_dict()))
    assert d["update"] == "touched" and d["max_steps"] == 20
    again = ChipConfig.from_dict(d)
    assert again == cfg and again.structure_hash == cfg.structure_hash
    assert cfg.structure_hash != cfg.replace(update="all").structure_hash
    assert cfg.structure_hash != cfg.replace(max_steps=21).structure_hash
    assert cfg.replace(threshold=7).structure_hash == cfg.structure_hash
    assert cfg.update_latency == TOUCHED_UPDATE_LATENCY and cfg.stamp_bits == 5 and cfg.leak_table_depth == 2 * 21


def test_max_steps_means_nothing_with_update_all():
    assert ChipConfig(layer_sizes=(4, 3), max_steps=7).max_steps == MAX_STEPS_DEFAULT
    assert ChipConfig(layer_sizes=(4, 3), max_steps=7) == ChipConfig(layer_sizes=(4, 3))


@pytest.mark.parametrize("kwargs, match", [
    (dict(update="lazy"), r"^update='lazy': allowed values are \('all', 'touched'\)$"),
    (dict(update=None), r"^update=None: allowed values are"),
    (dict(update="touched", overlap=False, max_steps=0), r"^max_steps=0: allowed range is integers 1..65535$"),
    (dict(update="touched", overlap=False, max_steps=2.5), r"^max_steps=2.5: allowed range is integers 1..65535$"),
])
def test_bad_update_settings_are_one_line_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        ChipConfig(layer_sizes=(4, 3, 2), **kwargs)


def test_touched_with_overlap_has_two_membrane_memories():
    """Update by touch overlaps as the default chip does (every layer but the last): two membrane memories,
    layer l in bank l % 2; a one-layer chip has nothing to overlap."""
    assert ChipConfig(layer_sizes=(4, 3), update="touched").state_banks == 1
    conv = {"kind": "conv", "channels": 2, "kernel": 3, "padding": 1}
    cfg = ChipConfig(input_shape=(1, 4, 4), layers=(conv, conv), update="touched")
    assert cfg.touched and cfg.overlapped(0) and cfg.state_banks == 2
    assert ChipConfig(input_shape=(1, 4, 4), layers=(conv, conv), update="touched", overlap=False).state_banks == 1


def test_a_wavefront_chip_has_a_membrane_memory_per_layer_and_no_overlap():
    """docs/chip.md, "Wavefront": layer l in bank l; overlap stored false (no UPDATE streams into a running EVENT
    phase); the field is in the structure only when set, so every other chip's structure hash is as before."""
    cfg = ChipConfig(layer_sizes=(6, 5, 4, 3), update="touched", wavefront=True)
    assert cfg.state_banks == 3 and [cfg.state_bank(l) for l in range(3)] == [0, 1, 2]
    assert not cfg.overlap and not any(cfg.overlapped(l) for l in range(3))
    assert [cfg.bank_base(l) for l in range(3)] == [0, 0, 0]
    assert cfg.to_dict()["wavefront"] is True and "wavefront" not in ChipConfig(update="touched").to_dict()
    assert ChipConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.structure_hash != cfg.replace(wavefront=False, overlap=False).structure_hash


@pytest.mark.parametrize("kwargs, match", [
    ({"wavefront": True}, r"^wavefront=true: built for update='touched' only; set update='touched' \(or "
                          r"wavefront=false\)$"),
    ({"wavefront": "yes", "update": "touched"}, r"^wavefront='yes': allowed values are true and false$"),
])
def test_bad_wavefront_settings_are_one_line_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        ChipConfig(layer_sizes=(4, 3, 2), **kwargs)


def test_a_sample_longer_than_max_steps_is_refused():
    cfg = ChipConfig(layer_sizes=(4, 3), update="touched", max_steps=5)
    cfg.check_spikes(np.zeros((1, 5, 4), bool))
    with pytest.raises(ConfigError, match=r"^spikes: 6 steps per sample; a chip with update='touched' runs at most "
                                          r"max_steps=5 \(its step stamps\), allowed range is 1..5$"):
        cfg.check_spikes(np.zeros((1, 6, 4), bool))
    ChipConfig(layer_sizes=(4, 3)).check_spikes(np.zeros((1, 5000, 4), bool))      # "all": no limit


def test_command_line_flags(tmp_path):
    import argparse
    from hw.cli import chip_arguments, chip_overrides, load_chip
    p = argparse.ArgumentParser()
    chip_arguments(p)
    a = p.parse_args(["--sizes", "6,4,2", "--overlap", "off", "--update", "touched", "--max-steps", "30"])
    cfg = load_chip(None, chip_overrides(a))
    assert cfg.touched and cfg.max_steps == 30 and not cfg.overlap
    with pytest.raises(SystemExit):
        p.parse_args(["--update", "some"])
    with pytest.raises(SystemExit):
        p.parse_args(["--max-steps", "0"])
