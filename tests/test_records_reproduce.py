"""Deterministic records reproduce from today's code: one round of each published cycle record, run again, gives the
values on record. The fast model is exact and these benches draw their inputs from seeds, so any difference means
the code changed what the record (and the docs rendered from it) describes: re-publish it with the command it
stores (``record["command"]``). Speed records are not deterministic; ``bench.recheck`` re-runs those."""
import math

import pytest

from bench.records import load


def _numbers(d: dict) -> dict:
    return {k: v for k, v in d.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _assert_same(published: dict, got: dict, what: str):
    pub, now = _numbers(published), _numbers(got)
    assert set(pub) <= set(now) | {"seed", "density", "rate"}, f"{what}: fields {set(pub) - set(now)} gone"
    diff = {k: (pub[k], now[k]) for k in pub if k in now and not math.isclose(pub[k], now[k], rel_tol=1e-9, abs_tol=1e-12)}
    assert diff == {}, f"{what}: today's code gives other values than the record; re-publish it"


@pytest.mark.parametrize("net, density, rate", [("conv 3x3", 0.02, 0.07), ("fc 256-256-128-16", 0.1, 0.01)])
def test_event_bound_round_reproduces(net, density, rate):
    from bench.bench_event_bound import measure, networks
    rec = load("event_bound")
    batch, steps = rec["params"]["batch"], rec["params"]["steps"]
    (published,) = [r for r in rec["rounds"] if r["net"] == net and r["density"] == density and r["rate"] == rate
                    and r["seed"] == 0]
    _assert_same(published, measure(networks()[net], density, rate, 0, batch, steps), f"event_bound {net}")


def test_chip_schedule_round_reproduces():
    from bench.bench_chip import CHIPS, NETWORK, schedule_row
    from sim.sample import random_spikes, random_weights
    rec = load("chip_schedule")
    steps, samples = rec["params"]["steps"], rec["params"]["samples"]
    got = schedule_row(NETWORK, random_weights(NETWORK, seed=0, input_density=0.1),
                       random_spikes(NETWORK, samples, steps, 0.1, seed=2))
    for label in CHIPS:
        (published,) = [r for r in rec["rounds"] if r["row"] == "0.1" and r["seed"] == 0 and r["chip"] == label]
        _assert_same(published, got[label], f"chip_schedule {label}")


def test_mnist_cycles_round_reproduces():
    from bench.bench_mnist import measure_round
    rec = load("mnist_cycles")
    p = rec["params"]
    (published,) = [r for r in rec["rounds"] if r["lanes"] == 8 and r["seed"] == 0]
    got = measure_round(8, 0, p["samples"], {"on": True, "off": False}.get(p["overlap"]), p["threshold"], p["beta"])
    assert got["overlap"] == published["overlap"]
    _assert_same(published, got, "mnist_cycles")
    _assert_same(published["parts"], got["parts"], "mnist_cycles parts")
