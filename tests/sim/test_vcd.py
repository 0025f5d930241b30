"""``spikeloop run --vcd`` writes a VCD with the core's named signals on the RTL backends; fast refuses."""
import pytest

from sim.cocotb_sim import simulator_available
from tune.cli import main

ARGS = ["run", "--sizes", "8,4,2", "--lanes", "2", "--batch", "1", "--steps", "3", "--density", "0.5",
        "--no-neurobench"]


def _check_vcd(path, names):
    text = path.read_text(errors="replace")
    assert text.lstrip().startswith("$") and "$enddefinitions" in text and "$var" in text
    for n in names:
        assert n in text, n
    assert "#" in text.split("$enddefinitions", 1)[1]       # value changes follow the header


def test_amaranth_writes_vcd(tmp_path):
    assert main(ARGS + ["--backend", "amaranth", "--vcd", str(tmp_path / "a.vcd")]) == 0
    _check_vcd(tmp_path / "a.vcd", ["clk", "busy", "wr__addr"])


@pytest.mark.cocotb
@pytest.mark.parametrize("sim", ["icarus", pytest.param("verilator", marks=pytest.mark.slow)])   # a --trace build: ~90 s
def test_cocotb_backends_write_vcd(tmp_path, sim):
    reason = simulator_available(sim)
    if reason:
        pytest.skip(reason)
    assert main(ARGS + ["--backend", sim, "--vcd", str(tmp_path / "w" / "c.vcd")]) == 0
    _check_vcd(tmp_path / "w" / "c.vcd", ["spikeloop_core" if sim == "icarus" else "clk", "busy"])
    assert [p.name for p in (tmp_path / "w").iterdir()] == ["c.vcd"]         # no partial file left


def test_fast_backend_refuses_vcd(tmp_path, capsys):
    assert main(ARGS + ["--vcd", str(tmp_path / "f.vcd")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "amaranth / icarus / verilator" in err
    assert not (tmp_path / "f.vcd").exists()
