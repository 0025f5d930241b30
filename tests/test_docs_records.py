"""The docs' measured numbers are rendered from records (bench/records.py, bench/render.py): no drift."""
import json
import re

import pytest

from bench import render
from bench.records import ROOT, Recorder, spread

#: pages whose tables predate the records and are still being converted (issue #20); this list only shrinks
LEGACY: set[str] = set()


def test_every_render_block_matches_its_record():
    drift = render.drift()
    assert not drift, "docs drifted from their records; run `python -m bench.render`:\n" + "\n".join(drift.values())


@pytest.mark.parametrize("page", [p for p in render.doc_files() if str(p.relative_to(ROOT)) not in LEGACY],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_measured_tables_come_from_records(page):
    assert render.unrecorded_tables(page.read_text()) == []


@pytest.mark.parametrize("page", [p for p in render.doc_files() if str(p.relative_to(ROOT)) not in LEGACY],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_measured_prose_comes_from_records(page):
    """A speed ratio, a clock, an energy or a mean ± std in prose is rendered from a record, or its paragraph
    is marked (not measured / not re-measured since COMMIT), or the page is marked historical."""
    assert render.unrecorded_prose(page.read_text()) == []


def test_unrecorded_prose_is_found():
    page = ("# Results\n\nThe fast model is 2.1x faster than numpy.\n\nIt closes timing at 98.3 MHz and\n"
            "uses 70.1 µJ per image; accuracy 0.965 ± 0.018.\n")
    found = render.unrecorded_prose(page)
    assert len(found) == 2 and found[0].startswith("2.1x") and found[1].startswith("98.3 MHz, 70.1 µJ, 0.965 ± 0")
    # rendered, marked, in code, in a table, or a target / setting / size: not a finding
    fine = ("It is <!-- render m value summary.x :.1f -->2.1<!-- end render -->x faster.\n\n"
            "<!-- not measured -->\nSpiker+ reports 780 µs at 180 mW, 140.4 µJ per image.\n\n"
            "<!-- not re-measured since 98f753f -->\n\nAt that commit: 102.38 MHz.\n\n"
            "Run `bench --clock 98.3 MHz`:\n\n```\n2.1x\n```\n\n    indented 3.5x\n\n"
            "| f | MHz |\n|---|---|\n| x | 96.7 |\n\n"
            "The target is ≥ 100 MHz on every seed, at least 5x fewer cycles, below 100 MHz is missed; "
            "a 3x3 conv on 1×8×8 images, 2x34x34 inputs, clock = 25 MHz.\n")
    assert render.unrecorded_prose(fine) == []
    # a marker covers the next paragraph only; a table in between ends it
    assert render.unrecorded_prose("<!-- not measured -->\nA 1.5x\n\nB 1.6x\n") == ["1.6x: B 1.6x"]
    assert len(render.unrecorded_prose("<!-- not measured -->\n| a |\n|---|\n| 1 |\nThen 1.6x.\n")) == 1
    assert render.unrecorded_prose("<!-- historical page: not re-measured since 98f753f -->\n1.6x\n") == []


def test_unrecorded_times_resources_and_changes_are_found():
    """Path delays, CPU seconds, power, resources and relative changes are measurements too (issue #20's
    review: they escaped the first pattern); a target after a comparator, a plain share or a count is not."""
    page = ("The path is 9.3–10.1 ns, 7.59 ns of it routing.\n\nImports cost about 2 CPU s; +42 % CPU time.\n\n"
            "It uses 7941 logic cells, 4141 LUT4, 2989 FF at 30 mW.\n\nA frame takes 1.05 ms, Spiker+ 780 µs.\n")
    found = render.unrecorded_prose(page)
    assert [f.split(":")[0] for f in found] == ["9.3–10.1 ns, 7.59 ns", "2 CPU s, +42 %",
                                                "7941 logic cells, 4141 LUT4, 2989 FF, 30 mW", "1.05 ms, 780 µs"]
    fine = ("A target of at most 390 µs per image, a 40 % cut, 5 % of the weights, 8 lanes, 3 seeds.\n\n"
            "It is <!-- render m value summary.x -->9.3<!-- end render --> ns.\n")
    assert render.unrecorded_prose(fine) == []
    # an admonition's indented body is prose, not an indented code block
    admonition = '!!! note "Measured"\n    The chip runs 3.5x faster\n    at 98.3 MHz.\n\nAfter it.\n'
    assert render.unrecorded_prose(admonition) == ["3.5x, 98.3 MHz: The chip runs 3.5x faster at 98.3 MHz."]
    assert render.unrecorded_prose("Text:\n\n    indented code 3.5x\n") == []
    # a figure (a plot the renderer cannot draw) is a measurement too, unless marked
    assert render.unrecorded_prose("Text.\n\n![Pareto](exp/pareto.png)\n") == ["figure exp/pareto.png: !Pareto"]
    assert render.unrecorded_prose("<!-- not re-measured since 98f753f -->\n![Pareto](exp/pareto.png)\n") == []


def test_renderer_catches_drift_and_missing_records(tmp_path):
    with Recorder("probe", folder=tmp_path, seeds=[3, 4], params={"k": 1}) as rec:
        for s in (3, 4):
            rec.round(seed=s, acc=0.5 + s / 100)
        rec.summary["acc"] = spread(r["acc"] for r in rec.rounds)
    record = json.loads((tmp_path / "probe.json").read_text())
    assert record["seeds"] == [3, 4] and len(record["rounds"]) == 2 and record["machine"]["load_after"]
    good = "x <!-- render probe value summary.acc.mean :.3f -->0.535<!-- end render --> y"
    assert render.render_text(good, tmp_path) == good
    stale = good.replace("0.535", "0.600")
    assert render.render_text(stale, tmp_path) == good
    with pytest.raises(render.RenderError, match="no record"):
        render.render_text("<!-- render nope value a -->1<!-- end render -->", tmp_path)
    with pytest.raises(render.RenderError, match="has no 'summary.nope'"):
        render.render_text("<!-- render probe value summary.nope -->1<!-- end render -->", tmp_path)


def test_unrecorded_tables_are_found():
    page = "| a | b |\n|---|---|\n| 1 | 2 |\n\n<!-- not measured -->\n| port | width |\n|---|---|\n| x | 8 |\n"
    assert render.unrecorded_tables(page) == ["| a | b |"]
    old = "<!-- not re-measured since 98f753f -->\n| f | MHz |\n|---|---|\n| x | 96.7 |\n"
    assert render.unrecorded_tables(old) == []
    assert render.unrecorded_tables(old.replace("98f753f", "HEAD")) == ["| f | MHz |"]
    page = "<!-- historical page: not re-measured since 98f753f -->\n| f | MHz |\n|---|---|\n| x | 96.7 |\n"
    assert render.unrecorded_tables(page) == [] and render.history_commits(page) == ["98f753f"]


@pytest.mark.parametrize("page", render.doc_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_history_markers_name_real_commits(page):
    """A table kept as 'not re-measured since COMMIT' names a commit of this repository."""
    import subprocess
    for commit in render.history_commits(page.read_text()):
        r = subprocess.run(["git", "cat-file", "-e", f"{commit}^{{commit}}"], cwd=ROOT, capture_output=True)
        assert r.returncode == 0, f"{page.name}: 'not re-measured since {commit}': no such commit"


def _synth_records(text: str) -> set[str]:
    """The ``synth_seeds`` records a page renders (a block's record and the records a ``table`` view lists)."""
    names = set()
    for m in re.finditer(r"<!-- render (\S+)([^>]*?)-->", text):
        names |= {n for n in [m.group(1), *m.group(2).split()] if n.startswith("synth_seeds_")}
    return names


#: where the docs state Fmax as today's: the README, the synthesis table's first section and the chip
#: specification's standing against issue 23 (a page's section runs to its next ``## `` heading)
TODAYS_FMAX = {"README.md": None, "docs/synth_table.md": "## Today's RTL",
               "docs/chip.md": "### Standing against issue 23's targets"}


def _todays_text() -> str:
    """The text of every page section in :data:`TODAYS_FMAX`."""
    parts = []
    for page, section in TODAYS_FMAX.items():
        text = (ROOT / page).read_text()
        if section is not None:
            assert section in text, f"{page}: no section {section!r}"
            text = text.split(section, 1)[1].split("\n## ", 1)[0]
        parts.append(text)
    return "\n".join(parts)


def test_stated_fmax_is_of_todays_rtl():
    """Every Fmax the README states, and those of the pages' sections in :data:`TODAYS_FMAX`, is of today's RTL: each
    ``synth_seeds`` record rendered there was built from the Yosys input today's code gives its chip
    (:func:`bench.synth_seeds.design_status`, a netlist written per chip, nothing synthesised). When the RTL
    changes, re-measure (``python -m bench.synth_seeds ... --publish``) or move the figure to a history section."""
    from bench.synth_seeds import design_status
    names = _synth_records(_todays_text())
    assert names
    status = {n: design_status(json.loads((ROOT / "docs" / "results" / f"{n}.json").read_text())) for n in sorted(names)}
    assert {n: s for n, s in status.items() if s[0] != "current"} == {}


def test_stated_rtl_figures_are_of_todays_rtl():
    """A record of a figure that depends on the RTL beyond Fmax (the RTL-activity energy: ``bench.energy_per_image``,
    ``bench.spiker_compare``), that says which RTL it measured (``params.design_hash``) and is rendered where
    :data:`TODAYS_FMAX` says figures are today's, is of today's RTL (its module's ``design_status``). Such records
    from before the hash (the README's history of the energy changes) are named there as measured at their commit."""
    import importlib
    found = {}
    for name in set(re.findall(r"<!-- render (\S+)", _todays_text())):
        path = ROOT / "docs" / "results" / f"{name}.json"
        rec = json.loads(path.read_text()) if path.exists() else {}
        status = getattr(importlib.import_module(rec["module"]), "design_status", None) if rec else None
        if status and not name.startswith("synth_seeds_") and rec["params"].get("design_hash"):
            found[name] = status(rec)
    assert "energy_per_image_today" in found
    assert {n: s for n, s in found.items() if s[0] != "current"} == {}


def test_synth_records_of_a_page_are_found():
    text = ("a <!-- render synth_seeds_a line -->x<!-- end render --> b <!-- render synth_seeds_b table synth_seeds_c "
            "synth_seeds_d -->\n|t|\n<!-- end render --> <!-- render event_bound stat x -->1<!-- end render -->")
    assert _synth_records(text) == {"synth_seeds_a", "synth_seeds_b", "synth_seeds_c", "synth_seeds_d"}
