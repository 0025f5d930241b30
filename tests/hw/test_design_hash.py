"""The design hash is of the logic, not of how the Python wrote it (hw.netlist_hash, hw.synth._plan_hash)."""

import json
import re
import subprocess
import sys

import pytest
from amaranth import Elaboratable, Module, Signal
from amaranth.back import rtlil
from amaranth.lib.memory import Memory

from hw.config import ChipConfig
from hw.netlist_hash import netlist_hash


class Small(Elaboratable):
    """Two registers, a comparison and a memory with two read ports, writable in several equivalent ways."""

    def __init__(self, split=False, swap=False, submodule=False, const=3, cmp="lt", init=1, name_a="a"):
        self.split, self.swap, self.submodule = split, swap, submodule
        self.const, self.cmp, self.init = const, cmp, init
        self.a, self.b = Signal(8, name=name_a), Signal(8, name="b")
        self.o, self.p = Signal(8, name="o"), Signal(8, name="p")
        self.q = Signal(name="q")
        self.addr0, self.addr1 = Signal(4, name="addr0"), Signal(4, name="addr1")
        self.r0, self.r1 = Signal(8, name="r0"), Signal(8, name="r1")

    @property
    def ports(self):
        return [self.a, self.b, self.o, self.p, self.q, self.addr0, self.addr1, self.r0, self.r1]

    def elaborate(self, platform):
        m = Module()
        m.submodules.mem = mem = Memory(shape=8, depth=16, init=list(range(16)))
        ports = [mem.read_port(), mem.read_port()]
        rp0, rp1 = ports[::-1] if self.swap else ports
        wp = mem.write_port()
        m.d.comb += [rp0.addr.eq(self.addr0), rp1.addr.eq(self.addr1), self.r0.eq(rp0.data), self.r1.eq(rp1.data),
                     wp.addr.eq(self.a[:4]), wp.data.eq(self.b), wp.en.eq(self.q)]
        x, y = Signal(8, init=self.init), Signal(8)
        inner = Module() if self.submodule else m
        if self.split:
            inner.d.sync += x.eq(self.a + self.const)
            inner.d.sync += y.eq(self.b ^ x)
        else:
            inner.d.sync += [x.eq(self.a + self.const), y.eq(self.b ^ x)]
        if self.submodule:
            m.submodules.inner = inner
        m.d.comb += [self.o.eq(x), self.p.eq(y), self.q.eq(self.a < self.b if self.cmp == "lt" else self.a <= self.b)]
        return m


def _il(**kw) -> str:
    m = Small(**kw)
    return rtlil.convert(m, ports=m.ports, name="top")


def _hash(**kw) -> str:
    return netlist_hash(_il(**kw))


def test_same_logic_written_differently_hashes_the_same():
    base = _hash()
    assert re.fullmatch(r"[0-9a-f]{64}", base)
    for kw in ({"split": True}, {"swap": True}, {"submodule": True}, {"split": True, "swap": True}):
        assert _il(**kw) != _il()                 # another text (names, order) ...
        assert _hash(**kw) == base, kw            # ... of the same logic


def test_other_logic_hashes_otherwise():
    hashes = {_hash(), _hash(const=4), _hash(cmp="le"), _hash(init=0)}
    assert len(hashes) == 4                       # a constant, a comparison, a power-up value


def test_names_and_source_lines_do_not_count_but_a_top_port_name_does():
    il = _il()
    renumbered = re.sub(r"\$(\d+)\b", lambda g: f"${int(g.group(1)) + 1000}", il)
    no_src = re.sub(r'attribute \\src "[^"]*"\n', "", il)
    renamed = il.replace("\\mem", "\\storage")    # a memory's (and its cells') name
    assert renumbered != il and renamed != il
    assert {netlist_hash(t) for t in (il, renumbered, no_src, renamed)} == {netlist_hash(il)}
    assert _hash(name_a="a_in") != netlist_hash(il)


def test_a_real_chip_and_its_script():
    """A chip's hash: stable under renumbering of its netlist's generated names; another for one bit of a constant
    flipped, another chip, target or synthesis option (the Yosys script is in the hash)."""
    from types import SimpleNamespace
    from hw.synth import _board_plan, _plan_hash, _yosys_platform, design_hash
    cfg = ChipConfig(layer_sizes=(6, 5, 3), lanes=2)
    platform, opts = _yosys_platform("ecp5-25k")
    files = _board_plan(platform, opts, cfg, None, 115200, None).files
    files = {n: files[n] for n in ("top.il", "top.ys")}
    h = _plan_hash(SimpleNamespace(files=files))
    assert h == design_hash(cfg, "ecp5-25k") and re.fullmatch(r"[0-9a-f]{16}", h)
    renumbered = re.sub(r"\$(\d+)\b", lambda g: f"${int(g.group(1)) * 7 + 3}", files["top.il"])
    assert renumbered != files["top.il"]
    assert _plan_hash(SimpleNamespace(files={**files, "top.il": renumbered})) == h
    const = re.search(r"    connect \\B (\d+)'([01]+)\n", files["top.il"])   # a cell's constant operand: flip a bit
    flipped = const.group(0).replace(f"'{const.group(2)}", f"'{const.group(2)[:-1]}{1 - int(const.group(2)[-1])}")
    changed = files["top.il"].replace(const.group(0), flipped, 1)
    assert _plan_hash(SimpleNamespace(files={**files, "top.il": changed})) != h
    assert len({h, design_hash(cfg, "ecp5-25k", synth_opts="-dff"), design_hash(cfg.replace(lanes=3), "ecp5-25k"),
                design_hash(cfg, "ice40-up5k")}) == 4


def test_the_hash_is_the_same_in_another_process():
    """No Python ``hash()`` (randomised per process) in the labels: a fresh interpreter gives the same digests."""
    code = ("import json; from tests.hw.test_design_hash import _hash; from hw.synth import design_hash; "
            "from hw.config import ChipConfig; print(json.dumps([_hash(), "
            "design_hash(ChipConfig(layer_sizes=(6, 5, 3), lanes=2), 'ice40-up5k')]))")
    from hw.synth import design_hash
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONHASHSEED": "12345", **__import__("os").environ})
    assert json.loads(out.stdout) == [_hash(), design_hash(ChipConfig(layer_sizes=(6, 5, 3), lanes=2), "ice40-up5k")]


def test_rehash_moves_a_record_from_the_text_hash_at_its_commit(tmp_path):
    """--rehash: a record keeping the old hash (the Yosys input as text) of what its commit builds gets today's hash
    of that input; one whose old hash is not what its commit builds keeps it (it stays stale)."""
    from types import SimpleNamespace
    import amaranth
    from bench import synth_seeds
    from bench.records import ROOT
    from hw.synth import _board_plan, _plan_text_hash, _yosys_platform, design_hash
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "hw"], capture_output=True, text=True)
    if head.returncode or dirty.stdout.strip():
        pytest.skip("needs a git checkout whose hw/ is committed")
    cfg = ChipConfig(layer_sizes=(6, 5, 3), lanes=2)
    platform, opts = _yosys_platform("ice40-up5k")
    old = _plan_text_hash(SimpleNamespace(files=_board_plan(platform, opts, cfg, None, 115200, None).files))
    rec = {"commit": head.stdout.strip(), "dirty": False, "versions": {"amaranth": amaranth.__version__},
           "module": "bench.synth_seeds", "params": {"chip": cfg.to_dict(), "target": "ice40-up5k"},
           "summary": {"ok": 2, "design_hash": old}, "rounds": [{"seed": 1, "design_hash": old},
                                                               {"seed": 2, "design_hash": old}]}
    (tmp_path / "a.json").write_text(json.dumps(rec))
    (tmp_path / "b.json").write_text(json.dumps({**rec, "summary": {"ok": 2, "design_hash": "0123456789abcdef"}}))
    assert synth_seeds.rehash(["a", "b"], folder=tmp_path) == 1
    a = json.loads((tmp_path / "a.json").read_text())
    new = design_hash(cfg, "ice40-up5k")
    assert new != old and a["summary"]["design_hash"] == new and {r["design_hash"] for r in a["rounds"]} == {new}
    assert old in a["summary"]["design_hash_from"]
    assert json.loads((tmp_path / "b.json").read_text())["summary"]["design_hash"] == "0123456789abcdef"
    assert synth_seeds.rehash(["a"], folder=tmp_path) == 0          # today's hash already: unchanged
    assert json.loads((tmp_path / "a.json").read_text()) == a
