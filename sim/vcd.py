"""Smaller waveforms: a VCD reduced to chosen signals and to a window of time steps (``spikeloop run --vcd
--vcd-signals PATTERN[,PATTERN] --vcd-steps A:B``), the same for every RTL backend.

The simulators write the whole design (the default chip: 193 MB for 4 samples of 20 steps); the backend then
streams that file through :func:`filter_vcd` into the requested one, line by line (memory: one time stamp's
changes and the last value of each kept signal).

* Signals: glob patterns (:mod:`fnmatch`, case-sensitive) matched against a signal's name (``busy``,
  ``events_in__valid``) or its dotted scope path (``bench.top.busy``, ``*.sequencer.*``).
* Steps ``A:B``: time steps ``A .. B-1`` of every sample, as clock cycles the host driver recorded
  (:attr:`sim.driver.HostDriver.cycles` at the start of each step); a window starts with the value of every
  kept signal at its first cycle, so a viewer shows the state the window begins in.
"""
from __future__ import annotations

import argparse
import fnmatch
import os
from pathlib import Path
from typing import Sequence

from hw.config import ConfigError


def signal_patterns(text: str) -> tuple[str, ...]:
    """An argparse type: comma-separated glob patterns, none empty."""
    pats = tuple(p.strip() for p in text.split(","))
    if not text.strip() or any(not p or any(c.isspace() for c in p) for p in pats):
        raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated signal name patterns like "
                                         "busy,events_*,*.sequencer.*")
    return pats


def step_window(text: str) -> tuple[int, int]:
    """An argparse type: ``A:B`` (time steps A .. B-1, 0-based; ``A:`` to the end, ``:B`` from 0)."""
    a, sep, b = text.partition(":")
    try:
        lo = int(a) if a.strip() else 0
        hi = int(b) if b.strip() else None
    except ValueError:
        lo = hi = -1
    if not sep or lo < 0 or (hi is not None and hi <= lo):
        raise argparse.ArgumentTypeError(f"{text!r}: expected A:B, time steps A to B-1 with 0 <= A < B "
                                         "(e.g. 2:5; A: to the end)")
    return lo, (hi if hi is not None else 1 << 62)


def step_cycles(marks: Sequence[Sequence[int]], steps: tuple[int, int]) -> list[tuple[int, int]]:
    """Cycle windows ``[c0, c1)`` of the time steps ``steps`` of each sample, from the driver's marks (per
    sample: the cycle each step started at, then the cycle its last step ended at); empty ones dropped."""
    lo, hi = steps
    out = []
    for m in marks:
        T = len(m) - 1
        if lo < T:
            out.append((int(m[lo]), int(m[min(hi, T)])))
    return out


def filter_vcd(src: str | Path, dest: str | Path, signals: Sequence[str] | None = None,
               cycles: Sequence[tuple[int, int]] | None = None) -> dict:
    """Write ``src`` (a VCD) to ``dest`` with only the signals matching ``signals`` (all if ``None``) and
    only the clock cycles in ``cycles`` (windows ``[c0, c1)`` counted in rising edges of ``clk``; all if
    ``None``). Returns ``{"signals": kept, "windows": written}``. A pattern that matches nothing, or windows
    without a ``clk`` signal, is a ConfigError (``dest`` is then not written)."""
    src, dest = Path(src), Path(dest)
    part = dest.with_name(f".{dest.name}.part")
    kept: set[str] = set()
    matched = {p: False for p in signals or ()}
    clk, names = None, []
    windows = sorted(cycles) if cycles is not None else [(0, 1 << 62)]
    try:
        with open(src, errors="replace") as f, open(part, "w") as out:
            scopes, pending, emitted = [], [], []          # scope stack; scopes not yet written; written flags
            for line in f:
                s = line.strip()
                if s.startswith("$scope"):
                    scopes.append(s.split()[2] if len(s.split()) > 2 else "?")
                    pending.append(line)
                    emitted.append(False)
                    continue
                if s.startswith("$upscope"):
                    if scopes:
                        scopes.pop()
                        pending.pop()
                        if emitted.pop():
                            out.write(line)
                    continue
                if s.startswith("$var"):
                    tok = s.split()
                    ident, name = tok[3], " ".join(t for t in tok[4:] if t != "$end")
                    leaf = tok[4]
                    path = ".".join(scopes + [leaf])
                    names.append(leaf)
                    if clk is None and leaf == "clk":
                        clk = ident
                    hit = [p for p in matched if fnmatch.fnmatchcase(leaf, p) or fnmatch.fnmatchcase(path, p)
                           or fnmatch.fnmatchcase(name, p)]
                    for p in hit:
                        matched[p] = True
                    if signals is None or hit:
                        kept.add(ident)
                        for k, l in enumerate(pending):        # open the scopes this signal lives in
                            if l is not None:
                                out.write(l)
                                pending[k] = None
                        emitted = [True] * len(emitted)
                        out.write(line)
                    continue
                if s.startswith("$enddefinitions"):
                    out.write(line)
                    break
                if not scopes:
                    out.write(line)                            # $date, $timescale, $comment ...
            missing = [p for p, m in matched.items() if not m]
            if missing:
                sample = ", ".join(dict.fromkeys(n for n in names if not n.startswith("$")))
                raise ConfigError(f"--vcd-signals: {','.join(missing)} matches no signal of the design "
                                  f"(names include: {sample[:300]})")
            if cycles is not None and clk is None:
                raise ConfigError("--vcd-steps: the waveforms have no clk signal to count cycles by")
            _body(f, out, kept, clk, windows)
        os.replace(part, dest)
    finally:
        if part.exists():
            part.unlink()
    return {"signals": len(kept), "windows": len(windows) if cycles is not None else None}


def _change(s: str) -> tuple[str, str] | None:
    """``(identifier, value)`` of a value-change line, or None for anything else."""
    if not s:
        return None
    c = s[0]
    if c in "01xzXZ":
        return s[1:], c
    if c in "bBrRsS":
        value, _, ident = s.partition(" ")
        return (ident.strip(), value) if ident else None
    return None


def _body(f, out, kept: set, clk: str | None, windows: list) -> None:
    """The value changes after ``$enddefinitions``: per time stamp, the kept changes inside a window, and on
    entering a window a snapshot of every kept signal."""
    last: dict[str, str] = {}
    rises, clk_value, w, inside = 0, None, 0, False
    stamp, block = None, []

    def flush():
        nonlocal rises, clk_value, w, inside
        changed = []
        for ident, value in block:
            if ident == clk and value != clk_value:
                if value == "1":
                    rises += 1
                clk_value = value
            if ident in kept:
                last[ident] = value
                changed.append(ident)
        while w < len(windows) and rises >= windows[w][1]:
            w, inside = w + 1, False
        now_in = w < len(windows) and windows[w][0] <= rises < windows[w][1]
        if now_in and stamp is not None:
            idents = sorted(last) if not inside else list(dict.fromkeys(changed))
            if idents:
                out.write(f"{stamp}\n")
                for ident in idents:
                    v = last[ident]
                    out.write(f"{v}{ident}\n" if len(v) == 1 else f"{v} {ident}\n")
        inside = now_in
        block.clear()

    for line in f:
        s = line.strip()
        if s.startswith("#"):
            flush()
            stamp = s
        else:
            ch = _change(s)
            if ch is not None:
                block.append(ch)
    flush()
