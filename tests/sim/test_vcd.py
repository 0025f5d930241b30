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


# -- --vcd-signals / --vcd-steps: smaller waveforms ---------------------------------------------------------
def _parse(path):
    """(vars: id -> set of leaf names, changes: list of (time, id, value)) of a VCD."""
    from sim.vcd import _change
    ids, changes, t, body = {}, [], 0, False
    for line in path.read_text(errors="replace").splitlines():
        s = line.strip()
        if s.startswith("$var"):
            tok = s.split()
            ids.setdefault(tok[3], set()).add(tok[4])
        elif s.startswith("$enddefinitions"):
            body = True
        elif body and s.startswith("#"):
            t = int(s[1:])
        elif body and _change(s):
            ident, value = _change(s)
            changes.append((t, ident, value))
    return ids, changes


def _value_at(changes, ident, t):
    v = None
    for ct, ci, cv in changes:
        if ct > t:
            break
        if ci == ident:
            v = cv
    return v


@pytest.mark.parametrize("backend", ["amaranth", pytest.param("icarus", marks=pytest.mark.cocotb)])
def test_vcd_signals_and_steps_keep_only_what_was_asked(tmp_path, backend):
    if backend != "amaranth" and simulator_available(backend):
        pytest.skip(simulator_available(backend))
    args = ["run", "--sizes", "8,4,2", "--lanes", "2", "--batch", "2", "--steps", "4", "--density", "0.5",
            "--no-neurobench", "--backend", backend]
    assert main(args + ["--vcd", str(tmp_path / "full.vcd")]) == 0
    assert main(args + ["--vcd", str(tmp_path / "part.vcd"), "--vcd-signals", "busy,events_in__*",
                        "--vcd-steps", "1:3"]) == 0
    full_ids, full = _parse(tmp_path / "full.vcd")
    part_ids, part = _parse(tmp_path / "part.vcd")
    leaves = set().union(*part_ids.values())
    assert {"busy", "events_in__valid", "events_in__payload"} <= leaves
    assert all(n == "busy" or n.startswith("events_in__") for n in leaves), leaves
    assert (tmp_path / "part.vcd").stat().st_size * 20 < (tmp_path / "full.vcd").stat().st_size
    # every value in the window is the full waveform's value at that time
    for t, ident, value in part[::7]:
        assert _value_at(full, ident, t) == value, (t, ident)
    # two windows (steps 1-2 of each sample): changes of the kept signals before, between and after are gone
    times = sorted({t for t, _, _ in part})
    kept_full = sorted({t for t, i, _ in full if i in part_ids})
    assert times[0] > kept_full[0] and times[-1] < kept_full[-1]
    gaps = [t for t in kept_full if times[0] < t < times[-1] and t not in times]
    assert gaps, "the time between the two samples' windows was kept"


def test_vcd_filter_options_are_checked_in_one_line(tmp_path, capsys):
    base = ARGS + ["--backend", "amaranth"]
    for extra, fragment in ((["--vcd-steps", "3:1"], "expected A:B"), (["--vcd-signals", "a,,b"], "patterns"),
                            (["--vcd-steps", "5:9", "--vcd", str(tmp_path / "x.vcd")], "the run has 3 steps"),
                            (["--vcd-signals", "busy"], "give --vcd FILE"),
                            (["--vcd-signals", "no_such_signal", "--vcd", str(tmp_path / "y.vcd")],
                             "no_such_signal matches no signal")):
        with pytest.raises(SystemExit) if "expected" in fragment or "patterns" in fragment else _nothing():
            code = main(base + extra)
            assert code == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and fragment in err, err
    assert not (tmp_path / "x.vcd").exists() and not (tmp_path / "y.vcd").exists()
    assert not list(tmp_path.glob(".*"))                      # no partial or full temporary file left


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False
