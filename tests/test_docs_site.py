"""The docs site (mkdocs.yml, docs/) builds with `mkdocs build --strict`: no broken link, anchor or reference,
and the API reference is generated from the docstrings (mkdocstrings)."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def build(config: Path, site: Path) -> subprocess.CompletedProcess:
    """``mkdocs build --strict`` (not ``-q``: with it, mkdocs 1.6 neither shows nor counts the warnings)."""
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1", PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config),
                           "-d", str(site)], capture_output=True, text=True, cwd=config.parent, env=env, timeout=600)


def test_site_builds_strict(tmp_path):
    r = build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert r.returncode == 0, (r.stdout + r.stderr)[-4000:]
    site = tmp_path / "site"
    assert (site / "index.html").exists() and (site / "guides" / "studies" / "index.html").exists()
    ref = (site / "reference" / "hw-config" / "index.html").read_text()
    assert "ChipConfig" in ref and "layer_sizes" in ref                     # rendered from the docstrings
    assert "StudyConfig" in (site / "reference" / "tune" / "index.html").read_text()


@pytest.mark.parametrize("breakage", ["link", "reference"])
def test_strict_build_fails_on_a_broken_link_or_reference(tmp_path, breakage):
    """The same build on a copy of the docs with one broken link (or API reference) must fail."""
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "docs", copy / "docs", ignore=shutil.ignore_patterns("results", "experiments"))
    for d in ("results", "experiments"):                  # pages link into these; copy them cheaply as links
        (copy / "docs" / d).symlink_to(ROOT / "docs" / d, target_is_directory=True)
    shutil.copy(ROOT / "mkdocs.yml", copy / "mkdocs.yml")
    for pkg in ("hw", "sim", "train", "tune"):
        (copy / pkg).symlink_to(ROOT / pkg, target_is_directory=True)
    page = copy / "docs" / "guides" / "chip.md"
    bad = {"link": "\nSee [nowhere](no-such-page.md).\n", "reference": "\n::: hw.config.NoSuchThing\n"}[breakage]
    page.write_text(page.read_text() + bad)
    r = build(copy / "mkdocs.yml", tmp_path / "site")
    assert r.returncode != 0
    assert ("no-such-page.md" if breakage == "link" else "NoSuchThing") in r.stdout + r.stderr


def test_readme_links_name_files_of_the_repository():
    """README.md is outside the site (mkdocs does not check it): its relative links must name existing files."""
    import re
    text = (ROOT / "README.md").read_text()
    links = [l.split("#")[0] for l in re.findall(r"\]\(([^)\s]+)\)", text) if "://" not in l]
    assert len(links) >= 10
    missing = [l for l in links if l and not (ROOT / l).exists()]
    assert not missing, missing


def referenced_modules() -> list[str]:
    """The modules the API reference renders (``::: module`` lines of docs/reference/*.md)."""
    import re
    return [m for page in sorted((ROOT / "docs" / "reference").glob("*.md"))
            for m in re.findall(r"^::: ([\w.]+)\s*$", page.read_text(), re.M)]


def test_api_reference_covers_the_four_packages():
    """hw.config, sim.chip, train.config and every module of tune (issue #20) have a reference entry."""
    mods = set(referenced_modules())
    tune = {f"tune.{p.stem}" for p in (ROOT / "tune").glob("*.py") if p.stem != "__init__"}
    missing = ({"hw.config", "sim.chip", "train.config"} | tune) - mods
    assert not missing, missing


@pytest.mark.parametrize("module", referenced_modules())
def test_reference_docstrings_carry_no_unrecorded_measurements(module):
    """The API reference is part of the site: its docstrings may not state measured numbers (they cannot be
    rendered from a record; they name the record or the docs page instead)."""
    import ast
    from bench import render
    tree = ast.parse((ROOT / (module.replace(".", "/") + ".py")).read_text())
    found = [f"{getattr(n, 'name', module)}: {hit}" for n in ast.walk(tree)
             if isinstance(n, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
             and ast.get_docstring(n) for hit in render.unrecorded_prose(ast.get_docstring(n))]
    assert not found, found
