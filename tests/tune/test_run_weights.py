"""`spikeloop run --weights`: a programme from a file (as `spikeloop import` / `study export` write it) runs as
given; a file that does not fit the chip is one line and exit code 2."""
import numpy as np

from tests.tune.test_cli_errors import fails_cleanly, spikeloop
from tune.cli import main

ARGS = ["run", "--sizes", "4,3,2", "--lanes", "2", "--steps", "4", "--batch", "2", "--density", "1", "--threshold", "10",
        "--beta", "0.9", "--reset", "subtract",
        "--no-neurobench"]


def counts(out: str) -> list[str]:
    return [line.split("output spike counts ")[1].split("  ")[0] for line in out.splitlines()
            if "output spike counts" in line]


def test_run_uses_the_weights_and_offsets_of_the_file(tmp_path, capsys):
    silent, loud = tmp_path / "silent.npz", tmp_path / "loud.npz"
    np.savez(silent, w0=np.zeros((4, 3), int), w1=np.zeros((3, 2), int))
    np.savez(loud, w0=np.full((4, 3), 100), w1=np.full((3, 2), 100))
    assert main([*ARGS, "--weights", str(silent)]) == 0
    assert counts(capsys.readouterr().out) == ["[0, 0]", "[0, 0]"]
    assert main([*ARGS, "--weights", str(loud)]) == 0
    assert counts(capsys.readouterr().out) == ["[4, 4]", "[4, 4]"]        # every input every step: both fire always
    # threshold offsets in the file are loaded too: +127 LSB on output neuron 1 keeps it below threshold
    w1 = np.full((3, 2), 2)                         # 3 hidden spikes x 2 = 6 LSB per step against threshold 10
    np.savez(loud, w0=np.full((4, 3), 100), w1=w1)
    assert main([*ARGS, "--weights", str(loud)]) == 0
    plain = [eval(c) for c in counts(capsys.readouterr().out)]
    np.savez(loud, w0=np.full((4, 3), 100), w1=w1, o0=np.zeros(3, int), o1=np.array([0, 127]))
    assert main([*ARGS, "--weights", str(loud)]) == 0
    trimmed = [eval(c) for c in counts(capsys.readouterr().out)]
    assert all(p[1] > 0 for p in plain) and all(t[1] == 0 for t in trimmed)
    assert [p[0] for p in plain] == [t[0] for t in trimmed]


def test_run_refuses_weights_that_do_not_fit(tmp_path):
    bad = tmp_path / "bad.npz"
    np.savez(bad, w0=np.zeros((5, 3), int), w1=np.zeros((3, 2), int))
    fails_cleanly(spikeloop(*ARGS, "--weights", bad), "weights[0]", "shape")
    fails_cleanly(spikeloop(*ARGS, "--weights", tmp_path / "nope.npz"), "--weights", "no such file")
