"""The latency/energy model against numbers worked by hand."""
import numpy as np
import pytest

from hw.config import ConfigError
from sim.power import PROFILES, DeviceProfile, performance


def test_hand_worked_energy():
    prof = DeviceProfile("t", clock_mhz=50.0, static_mw=2.0, synop_pj=1.0, weight_read_pj=10.0,
                         state_read_pj=4.0, state_write_pj=6.0, neuron_update_pj=3.0, event_pj=2.0, cycle_pj=5.0)
    c = {"cycles": np.array([900, 1100]), "synops": np.array([800, 1200]), "weight_reads": np.array([100, 100]),
         "state_reads": np.array([150, 150]), "state_writes": np.array([150, 150]),
         "neuron_updates": np.array([40, 40]), "in_events": np.array([10, 30]), "spikes_l0": np.array([5, 5]),
         "spikes_l1": np.array([1, 3]), "out_events": np.array([1, 3]), "stall_cycles": np.array([7, 7])}
    p = performance(c, prof)
    # means: cycles 1000, synops 1000, wr 100, sr 150, sw 150, nu 40, events 20 + spikes 7
    dyn_pj = 1000 * 1 + 100 * 10 + 150 * 4 + 150 * 6 + 40 * 3 + 27 * 2 + 1000 * 5      # 8674 pJ
    assert p.latency_us == pytest.approx(20.0)                                           # 1000 cycles / 50 MHz
    assert p.fps == pytest.approx(50_000.0)
    assert p.dynamic_energy_nj == pytest.approx(dyn_pj / 1000)
    assert p.static_energy_nj == pytest.approx(40.0)                                     # 2 mW * 20 us
    assert p.energy_nj == pytest.approx(48.674)
    assert p.power_mw == pytest.approx(48.674 / 20.0)
    assert p.fps_per_watt == pytest.approx(1e9 / 48.674)
    assert performance(c, prof, clock_mhz=100.0).latency_us == pytest.approx(10.0)


def test_profiles_and_overrides():
    assert set(PROFILES) >= {"ice40up5k", "artix7"}
    p = DeviceProfile.from_dict({"base": "artix7", "static_mw": 30.0})
    assert p.static_mw == 30.0 and p.synop_pj == PROFILES["artix7"].synop_pj
    with pytest.raises(ConfigError, match="device.base='ecp9'"):
        DeviceProfile.from_dict({"base": "ecp9"})
    with pytest.raises(ConfigError, match=r"device.static_mw=-1.0: allowed range is numbers >= 0"):
        DeviceProfile.from_dict({"base": "artix7", "static_mw": -1.0})
    with pytest.raises(ConfigError, match=r"device.clock_mhz='fast': allowed range is numbers >= 0"):
        DeviceProfile.from_dict({"base": "artix7", "clock_mhz": "fast"})
    with pytest.raises(ConfigError, match="unknown fields"):
        DeviceProfile.from_dict({"base": "artix7", "leakage": 1})


def test_fmax_from_a_synth_report_sets_the_clock(tmp_path):
    import json
    rep = tmp_path / "ice40-up5k.json"
    rep.write_text(json.dumps({"fmax_mhz": 12.65}))
    p = DeviceProfile.from_dict({"base": "ice40up5k", "synth_report": str(rep)})
    assert p.clock_mhz == 12.65
    with pytest.raises(ConfigError, match="no such file"):
        DeviceProfile.from_dict({"base": "ice40up5k", "synth_report": str(tmp_path / "none.json")})


def test_fitted_energies_cover_the_parts():
    """sim/power_fit.json (written by bench/power_calibration.py --write) holds every fitted profile field and
    the structural model's rates (part-independent counts per unit, every term of STRUCTURAL_TERMS)."""
    from dataclasses import fields
    from sim.activity import STRUCTURAL_TERMS, structural_units
    from sim.power import power_fit
    fit = power_fit()
    fitted = {f.name for f in fields(DeviceProfile)} - {"name", "clock_mhz", "static_mw", "source"}
    for name in ("ice40up5k", "ecp5-25k"):
        assert set(fit["profiles"][name]) == fitted
        assert all(getattr(PROFILES[name], k) == v for k, v in fit["profiles"][name].items())
    units = structural_units()
    assert set(units) == set(STRUCTURAL_TERMS)
    assert all(set(units[k]) == set(terms) and all(v >= 0 for v in units[k].values())
               for k, terms in STRUCTURAL_TERMS.items())
