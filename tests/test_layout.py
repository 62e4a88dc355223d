"""The package's shape: no import cycle between fer_nla modules, lazy imports included."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "fer_nla"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The fer_nla modules ``path`` imports anywhere (top level or inside functions)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        found.update(name for name in names if name in modules)
    return found


def import_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in SRC.rglob("*.py")}
    modules = set(files)
    graph = {}
    for name, path in files.items():
        # a package's __init__ importing its own submodules is how packages re-export, not a cycle
        graph[name] = {m for m in _imports(path, modules) if m != name and not m.startswith(name + ".")}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_the_cycle_finder_finds_a_planted_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle_between_fer_nla_modules():
    cycle = find_cycle(import_graph())
    if cycle is not None:
        pytest.fail("import cycle: " + " -> ".join(cycle))


def test_library_code_leaves_matplotlibs_global_state_alone():
    """No ``matplotlib.use()`` (it switches the backend of the user's whole process) and no pyplot
    (its global figure registry) in library code: figures are ``matplotlib.figure.Figure`` objects."""
    offenders = [str(p.relative_to(SRC)) for p in SRC.rglob("*.py")
                 if "matplotlib.use(" in p.read_text(encoding="utf-8") or "pyplot" in p.read_text(encoding="utf-8")]
    assert not offenders, offenders


def test_one_atomic_write_helper():
    """Temporary-file-and-rename writes live in fer_nla.atomic only (one helper, the umask's modes)."""
    offenders = [str(p.relative_to(SRC)) for p in SRC.rglob("*.py") if p.name != "atomic.py"
                 and ("mkstemp" in p.read_text(encoding="utf-8") or "os.replace(" in p.read_text(encoding="utf-8"))]
    assert not offenders, offenders
