"""Two worker processes share one study on a real PostgreSQL server on loopback.

The fixture installs PostgreSQL with apt-get when it is missing (root only) and starts a throwaway
cluster on a free loopback port; the test is skipped, with the reason, only where that cannot be done.
"""
import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from optuna.trial import TrialState

from tests.loopback import loopback_lock
from tune.config import StudyConfig
from tune.study import CLAIM_ATTR, open_study


def _pg_bin():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(found[-1]) if found else None


def _install():
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        return "PostgreSQL server not installed and not root to apt-get it"
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    r = subprocess.run(["apt-get", "install", "-y", "-qq", "postgresql"], env=env, capture_output=True, text=True,
                       timeout=600)
    if r.returncode:
        subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=600)
        r = subprocess.run(["apt-get", "install", "-y", "-qq", "postgresql"], env=env, capture_output=True,
                           text=True, timeout=600)
    return None if r.returncode == 0 else f"apt-get install postgresql failed: {r.stderr[-300:]}"


@pytest.fixture(scope="module")
def postgres_url():
    with loopback_lock():                         # the install, and from picking the port until the server listens
        if _pg_bin() is None:
            reason = _install()
            if reason:
                pytest.skip(reason)
        bindir = _pg_bin()
        base = Path(tempfile.mkdtemp(prefix="spikeloop-pg-"))     # pytest's tmp root is 0700: not for postgres
        data, sock = base / "data", base / "sock"
        sock.mkdir()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        as_user = []
        if os.geteuid() == 0:                         # initdb refuses to run as root
            shutil.chown(base, "postgres")
            shutil.chown(sock, "postgres")
            as_user = ["runuser", "-u", "postgres", "--"]
        run = lambda *cmd: subprocess.run(as_user + list(cmd), check=True, capture_output=True, text=True,
                                          timeout=600)
        run(f"{bindir}/initdb", "-D", str(data), "-A", "trust", "-U", "postgres")
        run(f"{bindir}/pg_ctl", "-D", str(data), "-l", str(base / "log"), "-w", "-t", "600", "-o",
            f"-p {port} -k {sock} -c listen_addresses=127.0.0.1", "start")
    try:
        run(f"{bindir}/createdb", "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "spikeloop")
        yield f"postgresql://postgres@127.0.0.1:{port}/spikeloop"
    finally:
        run(f"{bindir}/pg_ctl", "-D", str(data), "-m", "fast", "-w", "-t", "600", "stop")
        shutil.rmtree(base, ignore_errors=True)


def test_two_workers_share_a_postgres_study(postgres_url, tiny_toml, tmp_path):
    n = 5
    cmd = [sys.executable, "-m", "tune.cli", "study", "run", "--config", str(tiny_toml), "--storage", postgres_url,
           "--name", "pg", "--n-trials", str(n)]
    procs = [subprocess.Popen(cmd + ["--out", str(tmp_path / f"w{i}")], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for i in range(2)]
    outs = [p.communicate(timeout=600)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outs
    sc = StudyConfig.load(tiny_toml, {"storage": postgres_url, "name": "pg"})
    trials = open_study(sc).trials
    done = [t for t in trials if t.state == TrialState.COMPLETE]
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    assert len(done) + len(pruned) == n                                # the requested count, nothing lost
    assert done and all("dead_network" in t.user_attrs for t in pruned)  # a pruned trial here is a dead net
    assert len({t.number for t in trials}) == len(trials)             # no duplicates
    assert all(t.state != TrialState.RUNNING for t in trials)
    surplus = [t for t in trials if t.state == TrialState.FAIL]
    assert all("surplus" in t.user_attrs for t in surplus)            # any extra trial says why it stopped
    workers = {t.system_attrs[CLAIM_ATTR] for t in done + pruned}    # the pid of the process that ran it
    assert len(workers) == 2                                           # both processes did trials
