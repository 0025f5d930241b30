"""The house: hw <- sim <- train <- tune. A lower floor never imports an upper one (not even inside a
function), and no package imports itself in a cycle of modules."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FLOORS = ("hw", "sim", "train", "tune")


def imports(path: Path) -> set[str]:
    """Top-level names of the project's packages and their modules that ``path`` imports anywhere."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            out.add(node.module)
            out |= {f"{node.module}.{a.name}" for a in node.names}
    return {m for m in out if m.split(".")[0] in FLOORS}


def modules():
    return sorted(p for f in FLOORS for p in (ROOT / f).rglob("*.py"))


@pytest.mark.parametrize("path", modules(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_upward_import(path):
    floor = FLOORS.index(path.relative_to(ROOT).parts[0])
    upward = sorted(m for m in imports(path) if FLOORS.index(m.split(".")[0]) > floor)
    assert not upward, f"{path.relative_to(ROOT)} imports {upward} from a floor above"


def test_no_module_level_import_cycle():
    """Module-level imports between the project's modules form no cycle."""
    names = {".".join(p.relative_to(ROOT).with_suffix("").parts): p for p in modules()}
    graph = {}
    for name, path in names.items():
        deps = set()
        for node in ast.parse(path.read_text()).body:         # module level only: lazy imports may loop
            mods = []
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                mods = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            deps |= {m for m in mods if m in names and m != name}
        graph[name] = deps
    state = {}

    def visit(n, stack):
        state[n] = "open"
        for d in graph[n]:
            if state.get(d) == "open":
                raise AssertionError(f"import cycle: {' -> '.join(stack + [n, d])}")
            if d not in state:
                visit(d, stack + [n])
        state[n] = "done"
    for n in graph:
        if n not in state:
            visit(n, [])


def test_one_console_command_in_the_top_floor():
    text = (ROOT / "pyproject.toml").read_text()
    assert 'spikeloop = "tune.cli:entry"' in text
