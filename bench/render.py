"""Render the docs' measured tables and numbers from records (see bench/records.py).

    python -m bench.render            # rewrite every render block in README.md and docs/ from docs/results/
    python -m bench.render --check    # exit 1 and show what drifted, change nothing

A block is ``<!-- render NAME VIEW [ARG ...] -->`` ... ``<!-- end render -->`` (one line or many). ``NAME`` is a
record in docs/results/; ``VIEW`` is ``value`` (``ARG`` = a dotted path into the record, then an optional
format spec such as ``:.2f``) or a key of ``VIEWS`` in the module that wrote the record.
"""
from __future__ import annotations

import argparse
import difflib
import importlib
import re
import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.records import PUBLISHED, ROOT, load  # noqa: E402

BLOCK = re.compile(r"<!-- render (?P<spec>[^>]*?) -->(?P<body>.*?)<!-- end render -->", re.S)


class RenderError(Exception):
    pass


def doc_files(root: Path = ROOT) -> list[Path]:
    """README.md and every markdown page under docs/ (the site's sources)."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def lookup(record: dict, path: str):
    x = record
    for key in path.split("."):
        if isinstance(x, list):
            x = x[int(key)]
        elif isinstance(x, dict) and key in x:
            x = x[key]
        else:
            raise RenderError(f"record {record.get('name')!r} has no {path!r} (stuck at {key!r})")
    return x


def render_spec(spec: str, folder: Path = PUBLISHED) -> str:
    parts = spec.split()
    if len(parts) < 2:
        raise RenderError(f"render block {spec!r}: expected 'NAME VIEW [ARG ...]'")
    name, view, args = parts[0], parts[1], parts[2:]
    try:
        record = load(name, folder)
    except FileNotFoundError:
        raise RenderError(f"render block {spec!r}: no record {folder.name}/{name}.json") from None
    if view == "value":
        if not args:
            raise RenderError(f"render block {spec!r}: 'value' needs a dotted path")
        v = lookup(record, args[0])
        return format(v, args[1][1:] if len(args) > 1 and args[1].startswith(":") else "")
    module = record.get("module")
    if not module:
        raise RenderError(f"render block {spec!r}: record {name!r} names no module with VIEWS")
    views = getattr(importlib.import_module(module), "VIEWS", {})
    if view not in views:
        raise RenderError(f"render block {spec!r}: {module} has no view {view!r} (has {sorted(views)})")
    return views[view](record, *args)


def render_text(text: str, folder: Path = PUBLISHED) -> str:
    def one(m: re.Match) -> str:
        body = render_spec(m["spec"], folder)
        multiline = "\n" in m["body"] or "\n" in body
        inner = f"\n{body.strip(chr(10))}\n" if multiline else body
        return f"<!-- render {m['spec']} -->{inner}<!-- end render -->"
    return BLOCK.sub(one, text)


def drift(files=None, folder: Path = PUBLISHED) -> dict[Path, str]:
    """{file: unified diff} for every file whose render blocks differ from their records."""
    out = {}
    for f in files or doc_files():
        text = f.read_text()
        new = render_text(text, folder)
        if new != text:
            out[f] = "".join(difflib.unified_diff(text.splitlines(True), new.splitlines(True), str(f), "rendered"))
    return out


NOT_MEASURED = "<!-- not measured -->"
#: the line before a table of results that were measured once and not since: the commit they were measured at
#: (the page must say so in words too; tests check that the commit exists)
HISTORY = re.compile(r"<!-- not re-measured since ([0-9a-f]{7,40}) -->")


#: a page of results measured once, kept as the lab notebook of their commits (the page says so in words):
#: ``<!-- historical page: not re-measured since COMMIT -->`` anywhere on it exempts its prose and tables
HISTORICAL_PAGE = re.compile(r"<!-- historical page: not re-measured since ([0-9a-f]{7,40}) -->")


def history_commits(text: str) -> list[str]:
    """The commits named by ``<!-- not re-measured since COMMIT -->`` markers."""
    return HISTORY.findall(text) + HISTORICAL_PAGE.findall(text)


def unrecorded_tables(text: str) -> list[str]:
    """Markdown tables with digits in their body that stand outside render blocks and are not marked
    ``<!-- not measured -->`` (a table of settings or ports, not of results) or ``<!-- not re-measured since
    COMMIT -->`` (results of an older commit, said so on the page) on the line before, on a page not marked
    :data:`HISTORICAL_PAGE`."""
    if HISTORICAL_PAGE.search(text):
        return []
    text = BLOCK.sub("", text)
    found, lines = [], text.splitlines()
    i = 0
    while i < len(lines):
        if lines[i].lstrip().startswith("|") and i + 1 < len(lines) and re.match(r"\s*\|[\s:|-]+\|\s*$", lines[i + 1]):
            j = i + 2
            while j < len(lines) and lines[j].lstrip().startswith("|"):
                j += 1
            marked = i > 0 and (lines[i - 1].strip() == NOT_MEASURED or HISTORY.fullmatch(lines[i - 1].strip()))
            if not marked and any(re.search(r"\d", row) for row in lines[i + 2:j]):
                found.append(lines[i].strip())
            i = j
        else:
            i += 1
    return found


#: numbers prose may only carry from a record: speed ratios (``2.1x``), clocks (``98.3 MHz``), energies
#: (``70.1 µJ``), FPS/W and mean ± std; times (``9.3 ns`` path delays, ``1.3 s`` of CPU, ``1.05 ms``, ``780 µs``),
#: power (``30 mW``), resources (``4141 LUT4``, ``2989 FF``, ``7941 logic cells``) and relative changes
#: (``+42 %``). A number right after a comparator (``≥ 100 MHz``: a target) or a setting's ``=`` is not a
#: result; nor is a product of sizes (``3x3``, ``1×8×8``).
MEASURED = re.compile(r"(?<![\w.≥≤<>=~/+−-])(?<![≥≤<>=] )(?<!up to )(?<!below )(?<!above )(?<!under )"
                      r"(?<!least )(?<!most )(?<!than )"
                      r"(?:[+−]\d[\d,]*(?:\.\d+)?\s?%"
                      r"|\d[\d,]*(?:\.\d+)?(?:[–-]\d[\d,]*(?:\.\d+)?)?"
                      r"(?:\s?x(?![\w×])|\s?(?:MHz|µJ|uJ|nJ|mJ|ns|ms|µs|mW|LUT4s?|LUTs|FFs?|CPU s)\b|\s?FPS/W"
                      r"|\s±\s\d|\slogic cells\b|\sflip-flops\b))")


def unrecorded_prose(text: str) -> list[str]:
    """Paragraphs of prose (outside render blocks, code, inline code and tables) that carry a measured-looking
    number (:data:`MEASURED`) or a figure (an image: a plot the renderer cannot draw) and are not marked: ``<!-- not measured -->`` (a definition, a setting, a
    figure from a paper) or ``<!-- not re-measured since COMMIT -->`` (a result of that commit, said so on the
    page) on the line before the paragraph, or the page marked :data:`HISTORICAL_PAGE`. Returns the offending
    numbers with their paragraph's first words."""
    if HISTORICAL_PAGE.search(text):
        return []
    text = BLOCK.sub("⟦rendered⟧", text)
    found, para, marked, prev, fence = [], [], False, "", False

    def flush():
        body = re.sub(r"`[^`]*`", "", " ".join(para))
        figures = [f"figure {m}" for m in re.findall(r"!\[[^]]*\]\(([^)\s]+)[^)]*\)", body)]  # a plot: measured
        body = re.sub(r"\[([^]]*)\]\([^)]*\)", r"\1", body)            # links: their text only
        hits = [m.group(0).strip() for m in MEASURED.finditer(body)] + figures
        if hits and not marked:
            found.append(f"{', '.join(hits)}: {body.strip()[:80]}")

    admonition = False                          # inside a ``!!! note`` block: its 4-space body is prose
    for line in text.splitlines():
        st = line.strip()
        if st.startswith("```"):
            fence = not fence
            continue
        if st.startswith(("!!!", "???")):
            admonition = True
            line = st = ""                      # the header: a paragraph break (its title is not prose)
        elif admonition and st and not line.startswith("    "):
            admonition = False
        elif admonition:
            line = line[4:]
        if fence or line.startswith("    ") and not para:
            continue
        if st.startswith("|"):                  # a table (tables have their own test) ends a paragraph
            if para:
                flush()
            para, prev = [], line
            continue
        if not st or st.startswith("<!--") or st.startswith("#"):
            if para:
                flush()
            para = []
            if st.startswith("#"):
                para, marked = [st], prev.strip() == NOT_MEASURED or bool(HISTORY.fullmatch(prev.strip()))
                flush()
                para = []
            if st:
                prev = line
            continue
        if not para:
            marked = prev.strip() == NOT_MEASURED or bool(HISTORY.fullmatch(prev.strip()))
        para.append(st)
        prev = line
    if para:
        flush()
    return found


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="report drift, change nothing (exit 1 on drift)")
    a = ap.parse_args(argv)
    try:
        changed = drift()
    except RenderError as e:
        print(f"render: {e}", file=sys.stderr)
        return 1
    for f, diff in changed.items():
        if a.check:
            sys.stdout.write(diff)
        else:
            f.write_text(render_text(f.read_text()))
            print(f"rendered {f.relative_to(ROOT)}")
    return 1 if (a.check and changed) else 0


if __name__ == "__main__":
    sys.exit(main())
