"""hw.env.environ: variables set for a block, then as they were (unset again if unset), also when it raises."""
import os

import pytest

from hw.env import environ


def test_set_for_the_block_then_restored(monkeypatch):
    monkeypatch.setenv("SPIKELOOP_T_A", "old")
    monkeypatch.delenv("SPIKELOOP_T_B", raising=False)
    with pytest.raises(RuntimeError):
        with environ({"SPIKELOOP_T_A": "new", "SPIKELOOP_T_B": "1"}):
            assert os.environ["SPIKELOOP_T_A"] == "new" and os.environ["SPIKELOOP_T_B"] == "1"
            raise RuntimeError
    assert os.environ["SPIKELOOP_T_A"] == "old" and "SPIKELOOP_T_B" not in os.environ


def test_a_refused_value_leaves_nothing_set(monkeypatch):
    """os.environ refuses a value that is not a str part-way through: the ones set before it were left set."""
    monkeypatch.delenv("SPIKELOOP_T_A", raising=False)
    with pytest.raises(TypeError):
        with environ({"SPIKELOOP_T_A": "1", "SPIKELOOP_T_B": 2}):
            pass
    assert "SPIKELOOP_T_A" not in os.environ and "SPIKELOOP_T_B" not in os.environ
