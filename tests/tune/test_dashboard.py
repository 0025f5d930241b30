"""``spikeloop study dashboard`` serves the study's storage on loopback; its API lists the study's trials."""
import json
import os
import subprocess
import sys
import time
import urllib.request
from contextlib import ExitStack
from pathlib import Path

import optuna
import pytest

from tests.loopback import loopback_lock
from tune.config import StudyConfig
from tune.dashboard import free_port
from tune.study import open_study

ROOT = Path(__file__).resolve().parents[2]


def _get(url: str):
    with urllib.request.urlopen(url, timeout=120) as r:      # generous: a loaded machine answers late
        return json.loads(r.read())


def test_dashboard_serves_the_study_on_loopback(tiny_toml, tmp_path):
    storage = f"sqlite:///{tmp_path}/s.db"
    sc = StudyConfig.load(tiny_toml, {"storage": storage, "out": str(tmp_path / "out")})
    study = open_study(sc)
    for k in range(3):       # finished trials without training: the dashboard only reads the storage
        study.add_trial(optuna.trial.create_trial(params={"beta": 0.5 + k / 10},
                                                  distributions={"beta": optuna.distributions.FloatDistribution(0.1, 0.99)},
                                                  values=[0.9 - k / 10, 3.0 + k, 1e5]))
    picking = ExitStack()
    picking.enter_context(loopback_lock())                    # from picking the port until the server answers on it
    port = free_port()
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen([sys.executable, "-m", "tune.cli", "study", "dashboard", "--config", str(tiny_toml),
                             "--storage", storage, "--port", str(port)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline, studies = time.monotonic() + 600, None      # the server's start-up: imports, on a loaded machine
        while time.monotonic() < deadline and studies is None:
            if proc.poll() is not None:
                pytest.fail(f"dashboard exited: {proc.stderr.read()}")
            try:
                studies = _get(f"http://127.0.0.1:{port}/api/studies")["study_summaries"]
            except OSError:
                time.sleep(0.3)
        picking.close()
        assert studies is not None, "dashboard did not answer within 600 s"
        assert [s["study_name"] for s in studies] == ["t"]
        detail = _get(f"http://127.0.0.1:{port}/api/studies/{studies[0]['study_id']}")
        assert len(detail["trials"]) == 3
        assert sorted(t["values"][0] for t in detail["trials"]) == pytest.approx([0.7, 0.8, 0.9])
    finally:
        picking.close()
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=60)


def test_dashboard_refuses_a_missing_study(tiny_toml, tmp_path, capsys):
    from tune.cli import main
    rc = main(["study", "dashboard", "--config", str(tiny_toml), "--storage", f"sqlite:///{tmp_path}/none.db",
               "--name", "nope", "--port", str(free_port())])
    assert rc == 2
    assert "does not exist" in capsys.readouterr().err and not (tmp_path / "none.db").exists()
    storage = f"sqlite:///{tmp_path}/s.db"
    open_study(StudyConfig.load(tiny_toml, {"storage": storage, "out": str(tmp_path / "out")}))
    rc = main(["study", "dashboard", "--config", str(tiny_toml), "--storage", storage,
               "--name", "nope", "--port", str(free_port())])
    assert rc == 2
    assert "no such study" in capsys.readouterr().err
