"""Output paths under faults (issue 19, items 3-7), through the real command line: a refused command leaves no
output folder it made; `train --out RUN` checks every file it will write before training; a full disk leaves
every old file whole (files are replaced only when complete, hw.files.write_atomic) and ends in one line, exit 1,
naming the option and the path; a symbolic link to nothing as an output is refused."""
import os
from pathlib import Path

import pytest

from tests.tune.test_cli_errors import fails_cleanly, spikeloop
from tests.tune.test_study_faults import (_add_trials, _save_result, _sc, fill_disk, refused,  # noqa: F401
                                         tiny_tmpfs)
from tune.study import open_study


# -- 3. a refused export leaves no --dest folder it made ------------------------------------------------------
@pytest.mark.parametrize("case", ["out_of_range", "no_artefacts", "corrupt"])
def test_refused_study_export_leaves_no_dest_folder(case, tiny_toml, tmp_path, capsys):
    sc = _sc(tiny_toml, tmp_path)
    art = tmp_path / "art"
    _save_result(art)
    if case == "corrupt":
        (art / "result.json").write_text((art / "result.json").read_text()[:40])
    _add_trials(open_study(sc), 1, artefacts=None if case == "no_artefacts" else art)
    trial = "5" if case == "out_of_range" else "0"
    dest = tmp_path / "e" / "sub"
    argv = ("study", "export", trial, "--config", tiny_toml, "--storage", sc.storage, "--dest", dest)
    refused(capsys, *argv, fragments=["trial"])
    assert not (tmp_path / "e").exists()                        # neither the folder nor its parent it made
    (tmp_path / "e").mkdir()                                    # a folder that existed before stays
    refused(capsys, *argv, fragments=["trial"])
    assert (tmp_path / "e").is_dir() and not dest.exists()
    if case == "out_of_range":                                  # and through a new interpreter, once
        fails_cleanly(spikeloop(*argv), "trial 5")
        assert (tmp_path / "e").is_dir() and not dest.exists()


# -- 4. train --out RUN: RUN.json / RUN.npz / RUN.png checked before training --------------------------------
@pytest.mark.parametrize("blocked", [".json", ".npz", ".png"])
def test_train_refuses_a_directory_where_one_of_its_files_goes(blocked, tmp_path):
    (tmp_path / f"r{blocked}").mkdir()
    r = spikeloop("train", "--method", "mh", "--dataset", "breast_cancer", "--iters", "100000",
                  "--out", tmp_path / "r")
    fails_cleanly(r, "--out", f"r{blocked} is a directory")
    assert r.stdout == ""                                       # before the data loaded or training started
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"r{blocked}"]


# -- 5 and 6. a full disk: old files kept whole, one line, exit 1, the option and the path -------------------
def _on_full_disk(argv, flag, out: Path, old: dict[str, bytes], mnt: Path):
    """Run ``argv`` writing into ``out`` (which holds ``old`` files) once ``mnt`` is full: exit 1, one line
    naming ``flag`` and ``out``, the old files unchanged, no temporary file left."""
    out.mkdir(parents=True, exist_ok=True)
    for name, data in old.items():
        (out / name).write_bytes(data)
    fill_disk(mnt)
    r = spikeloop(*argv)
    err = r.stderr.strip()
    assert r.returncode == 1, (r.returncode, r.stdout[-1000:], err[-2000:])
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert f"{flag} {out}" in err and "No space left on device" in err, err
    for name, data in old.items():
        assert (out / name).read_bytes() == data, name          # not truncated, not replaced by a partial file
    assert sorted(p.name for p in out.iterdir()) == sorted(old), list(out.iterdir())
    (mnt / "filler").unlink()
    return err


@pytest.fixture
def chip_dir(tmp_path):
    """A small chip folder (config.json + weights.npz) written by `spikeloop verilog`."""
    import numpy as np
    w = tmp_path / "w.npz"
    np.savez(w, w0=np.ones((8, 4), np.int64))
    r = spikeloop("verilog", "--sizes", "8,4", "--weights", w, "--threshold", "4", "--beta", "0.9", "--reset",
                  "subtract", "--out", tmp_path / "chip")
    assert r.returncode == 0, r.stderr
    return tmp_path / "chip"


def test_verilog_onto_a_full_disk_keeps_the_old_design(tiny_tmpfs):
    _on_full_disk(["verilog", "--sizes", "8,4", "--out", tiny_tmpfs / "v"], "--out", tiny_tmpfs / "v",
                  {"spikeloop_core.v": b"// the old design\n", "ports.md": b"old ports\n"}, tiny_tmpfs)


def test_nir_export_and_import_onto_a_full_disk(chip_dir, tiny_tmpfs, tmp_path):
    nir_file = tmp_path / "m.nir"
    assert spikeloop("export", "--model", chip_dir, "--out", nir_file).returncode == 0
    d = tiny_tmpfs / "n"
    err = _on_full_disk(["export", "--model", chip_dir, "--out", d / "m.nir"], "--out", d, {"m.nir": b"old"},
                        tiny_tmpfs)
    assert f"--out {d / 'm.nir'}" in err
    _on_full_disk(["import", nir_file, "--out", tiny_tmpfs / "imp"], "--out", tiny_tmpfs / "imp",
                  {"config.json": b"{}"}, tiny_tmpfs)


def test_study_export_and_report_onto_a_full_disk(tiny_toml, tmp_path, tiny_tmpfs):
    sc = _sc(tiny_toml, tmp_path)
    art = tmp_path / "art"
    _save_result(art)
    _add_trials(open_study(sc), 2, artefacts=art)
    e = tiny_tmpfs / "e"
    _on_full_disk(["study", "export", "0", "--config", tiny_toml, "--storage", sc.storage, "--dest", e], "--dest",
                  e, {"spikeloop_core.v": b"// old\n"}, tiny_tmpfs)
    rep = tiny_tmpfs / "rep"
    _on_full_disk(["study", "report", "--config", tiny_toml, "--storage", sc.storage, "--report-dir", rep],
                  "--report-dir", rep, {"pareto.png": b"old png", "report.md": b"# old\n"}, tiny_tmpfs)


def test_a_directory_where_a_file_goes_stays_exit_2(tmp_path):
    """The other half of the one rule: a path the user can correct is exit 2 (hw.cli.writing)."""
    (tmp_path / "v" / "spikeloop_core.v").mkdir(parents=True)
    fails_cleanly(spikeloop("verilog", "--sizes", "8,4", "--out", tmp_path / "v"), "--out", "writing failed")


# -- 7. a symbolic link to nothing as an output ---------------------------------------------------------------
def test_a_dangling_symlink_as_out_is_refused(tiny_toml, tmp_path):
    gone = tmp_path / "gone" / "dir"
    o = tmp_path / "o"
    o.symlink_to(gone)
    fails_cleanly(spikeloop("study", "run", "--config", tiny_toml, "--storage", f"sqlite:///{tmp_path}/s.db",
                            "--out", o), f"--out {o} is a symbolic link to {gone}, which does not exist")
    fails_cleanly(spikeloop("verilog", "--sizes", "8,4", "--out", o),
                  f"--out {o} is a symbolic link to {gone}, which does not exist")
    fails_cleanly(spikeloop("verilog", "--sizes", "8,4", "--out", o / "sub"), f"{o} is a symbolic link to {gone}")
    assert not (tmp_path / "gone").exists() and not (tmp_path / "s.db").exists()
    assert os.path.islink(o)


def test_a_dangling_symlink_as_study_out_in_the_toml_is_refused(study_toml, tmp_path, capsys):
    """The TOML's ``[study] out`` goes through the same check as ``--out`` (hw.cli.check_writable, as written:
    resolving it would follow the link), before the storage is made or any trial runs."""
    gone = tmp_path / "gone" / "dir"
    o = tmp_path / "o"
    o.symlink_to(gone)
    db = tmp_path / "s.db"
    for out in (o, o / "sub"):
        err = refused(capsys, "study", "run", "--config", study_toml(out=str(out)), "--storage", f"sqlite:///{db}",
                      fragments=["[study] out", str(out), f"symbolic link to {gone}, which does not exist"])
        assert "--out" not in err
    assert not (tmp_path / "gone").exists() and not db.exists() and os.path.islink(o)
    # the flag still names itself when it overrides the TOML
    refused(capsys, "study", "run", "--config", study_toml(out=str(tmp_path / "fine")), "--storage",
            f"sqlite:///{db}", "--out", o, fragments=[f"--out {o} is a symbolic link to {gone}"])
    assert not db.exists()


def test_study_run_whose_report_meets_a_full_disk(tiny_toml, tmp_path, tiny_tmpfs, monkeypatch, capsys):
    """The study runs (trials kept in the storage), its report then meets a full disk: exit 1, one line naming
    --out, the old report files whole."""
    import tune.objective
    from tests.tune.test_study_faults import _main
    monkeypatch.setattr(tune.objective, "objective", lambda trial, sc, data: (0.9, 3.0 + trial.number, 1e5))
    rep = tiny_tmpfs / "o" / "report"
    rep.mkdir(parents=True)
    old = {"pareto.png": b"old png", "report.md": b"# old\n"}
    for name, data in old.items():
        (rep / name).write_bytes(data)
    fill_disk(tiny_tmpfs)
    code, out, err = _main(capsys, "study", "run", "--config", tiny_toml, "--storage", f"sqlite:///{tmp_path}/s.db",
                           "--n-trials", "4", "--out", tiny_tmpfs / "o")
    lines = [l for l in err.strip().splitlines() if l.startswith("spikeloop")]
    assert code == 1 and len(lines) == 1 and "Traceback" not in err, err[-2000:]
    assert f"--out {rep}" in lines[0] and "No space left on device" in lines[0], lines
    assert {n: (rep / n).read_bytes() for n in old} == old and sorted(p.name for p in rep.iterdir()) == sorted(old)
