"""The package builds without setuptools' warnings, and an installed copy carries its data files (the fitted
power model and the Verilog models of the vendor primitives, found by sim.cocotb_sim.primitive_models)."""
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_builds_quietly_and_carries_the_primitive_models(tmp_path):
    src = tmp_path / "src"                  # a copy: no build/ left in the work tree, none reused from it
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for pkg in ("hw", "sim", "train", "tune"):
        shutil.copytree(ROOT / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-v", "--no-deps", "--no-build-isolation",
                        "-w", str(tmp_path), str(src)], capture_output=True, text=True, timeout=1800)
    assert r.returncode == 0, r.stderr[-3000:]
    log = r.stdout + r.stderr
    assert "would be ignored" not in log, log[log.find("would be ignored") - 2000:][:4000]
    (wheel,) = tmp_path.glob("spikeloop-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in ("sim/power_fit.json", "sim/primitives/ecp5/DP16KD.v", "sim/primitives/ecp5/MULT18X18D.v",
              "sim/primitives/ice40/SB_SPRAM256KA.v"):
        assert f in names, f
    assert not any("__pycache__" in n or n.startswith(("tests/", "bench/")) for n in names)
    # an installed copy (the wheel unpacked) finds its primitive models
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    code = ("from sim.cocotb_sim import primitive_models as p; "
            "print([f.name for f in p('ecp5') + p('ice40')], p('ecp5')[0].is_relative_to(%r))" % str(site))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                         env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin"}, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip() == "['DP16KD.v', 'MULT18X18D.v', 'SB_SPRAM256KA.v'] True"


def test_setup_installs_the_system_packages_a_fresh_debian_lacks(tmp_path):
    """scripts/setup.sh asks apt-get for Icarus, g++ and make (Verilator builds C++) and python3-venv (Debian's
    Python has no ensurepip without it) when they are missing — here a PATH without them and a fake apt-get."""
    repo, fake = tmp_path / "repo", tmp_path / "bin"
    (repo / "scripts").mkdir(parents=True)
    fake.mkdir()
    shutil.copy(ROOT / "scripts" / "setup.sh", repo / "scripts" / "setup.sh")
    (repo / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    for tool in ("cat", "sha256sum", "cut", "id", "grep", "dirname"):
        (fake / tool).symlink_to(shutil.which(tool))
    log = tmp_path / "apt.log"
    (fake / "apt-get").write_text(f"#!/bin/bash\necho \"$*\" >> {log}\n")
    (fake / "python3").write_text("#!/bin/bash\nexit 1\n")             # no ensurepip, no venv
    for f in ("apt-get", "python3"):
        (fake / f).chmod(0o755)
    env = {"PATH": str(fake), "HOME": str(tmp_path)}
    subprocess.run(["/bin/bash", str(repo / "scripts" / "setup.sh")], env=env, capture_output=True, timeout=60)
    lines = log.read_text().splitlines()
    assert lines[0] == "update -qq" and lines[1] == "install -y -qq iverilog g++ make python3-venv", lines
    # with a venv and the tools present, nothing is asked for
    log.unlink()
    for tool in ("iverilog", "g++", "make"):
        (fake / tool).write_text("#!/bin/bash\n")
        (fake / tool).chmod(0o755)
    venv = repo / ".venv" / "bin"
    venv.mkdir(parents=True)
    for tool in ("python", "pip"):
        (venv / tool).write_text("#!/bin/bash\nexit 0\n")
        (venv / tool).chmod(0o755)
    r = subprocess.run(["/bin/bash", str(repo / "scripts" / "setup.sh")], env=env, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    assert not log.exists()
