"""hwflow's packages form layers: no import cycles between them, and nothing below the
command line imports it.

Every import counts, including the lazy ones inside functions (a lazy import hides a
cycle from Python, not from the design). Units are hwflow's subpackages and top-level
modules (``hwflow.ir``, ``hwflow.flow``, ``hwflow.rtl``, ...).
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: package name -> source directory (rtl/ and sim/ are mapped into hwflow)
PACKAGES = {"hwflow": ROOT / "hwflow", "hwflow.rtl": ROOT / "rtl", "hwflow.sim": ROOT / "sim"}

def _modules() -> dict[str, Path]:
    mods = {}
    for pkg, base in PACKAGES.items():
        for f in base.rglob("*.py"):
            rel = f.relative_to(base)
            if "templates" in rel.parts or (pkg == "hwflow" and rel.parts[0] in ("rtl", "sim")):
                continue
            parts = list(rel.with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            mods[".".join([pkg, *parts])] = f
    return mods


#: Modules that are units of their own: copied into every BUILD and run there without
#: hwflow, they import nothing from it (checked below), so they cannot close a cycle.
STANDALONE = ("hwflow.sim.beats",)


def _unit(module: str) -> str:
    if module in STANDALONE:
        return module
    return module.split(".")[1] if "." in module else "hwflow"


def _imports(module: str, path: Path, mods: dict[str, Path]) -> set[str]:
    """The hwflow modules ``module`` imports (anywhere in its body)."""
    here = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(here[: len(here) - node.level + 1] + [node.module or ""]).strip(".") \
                if node.level else node.module or ""
            names = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for name in names:
            while name and name not in mods:
                name = name.rpartition(".")[0]
            if name.startswith("hwflow"):
                out.add(name)
    return out


def _graph() -> dict[str, dict[str, set[str]]]:
    """unit -> imported unit -> the importing modules."""
    mods = _modules()
    graph: dict[str, dict[str, set[str]]] = {}
    for module, path in mods.items():
        for target in _imports(module, path, mods):
            a, b = _unit(module), _unit(target)
            if a != b:
                graph.setdefault(a, {}).setdefault(b, set()).add(module)
    return graph


def _cycle(graph) -> list[str] | None:
    """One cycle of units, or None."""
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(u):
        state[u] = 1
        stack.append(u)
        for v in graph.get(u, {}):
            if state.get(v) == 1:
                return stack[stack.index(v):] + [v]
            if v not in state and (found := visit(v)):
                return found
        stack.pop()
        state[u] = 2
        return None

    for u in list(graph):
        if u not in state and (found := visit(u)):
            return found
    return None


def test_no_import_cycles_between_units():
    graph = _graph()
    cycle = _cycle(graph)
    where = [f"{a} -> {b} in {sorted(graph[a][b])}" for a, b in zip(cycle, cycle[1:])] if cycle else []
    assert cycle is None, "import cycle: " + "; ".join(where)


def test_only_the_command_line_imports_the_commands_and_the_api():
    graph = _graph()
    for unit, allowed in (("commands", {"cli"}), ("cli", set()), ("api", {"cli", "commands", "hwflow"})):
        users = {a: sorted(graph[a][unit]) for a in graph if unit in graph[a] and a not in allowed}
        assert not users, f"hwflow.{unit} is imported from below: {users}"


def test_standalone_modules_import_nothing_from_hwflow():
    mods = _modules()
    for module in STANDALONE:
        assert _imports(module, mods[module], mods) == set(), module
