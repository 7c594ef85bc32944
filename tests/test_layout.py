"""The layout's arrows: which package may import which, and no import cycle anywhere.

docs/architecture.md draws the same rules. The graph is read from the source (every import
statement: at the top, inside functions, under TYPE_CHECKING), so a lazy import is an arrow too.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Each top-level package, and the project packages it may import besides itself. Everything not
# listed is forbidden; `ops` is in no one's list but the tests' (its entry point, `python -m ops`,
# is ops/__main__.py).
MAY_IMPORT: dict[str, frozenset[str]] = {
    # What runs at the edge (the viewer function's twin, rewrite, resize): itself alone.
    "edge": frozenset(),
    # The regional sync job: the edge's settings, grammar and image code.
    "sync": frozenset({"edge"}),
    # The catalogue's regional functions: the same.
    "catalog": frozenset({"edge"}),
    # The alarm relay: nothing.
    "alerts": frozenset(),
    # What a stack creates: the code it deploys (bundles, handler constants), never the emulator.
    "components": frozenset({"edge", "sync", "catalog", "alerts"}),
    # The emulator: what it runs, and the stack's config and viewer code from components.
    "localcdn": frozenset({"edge", "sync", "catalog", "components"}),
    # The benchmarks: the engine and the emulator, never the operator commands; tests/hostile.py's
    # hostile inputs are the ones the tests refuse.
    "bench": frozenset({"edge", "sync", "catalog", "components", "localcdn", "tests"}),
    # The operator commands: on top of everything (the cost estimate reads the benchmarks' models).
    "ops": frozenset({"edge", "sync", "catalog", "components", "localcdn", "bench"}),
    # The policy pack: its own SDK only.
    "policy": frozenset(),
    # The package host (provider/__main__.py) and the Pulumi program (__main__.py): the components.
    "provider": frozenset({"components"}),
    "__main__": frozenset({"components"}),
    # The tests: anything.
    "tests": frozenset({"edge", "sync", "catalog", "alerts", "components", "localcdn", "bench", "ops", "policy"}),
}


# Folders that hold no code of ours: the virtualenvs, caches and npm's packages.
_NOT_OURS = {".venv", ".thumbor", ".cache", ".git", "node_modules", "__pycache__"}


def _sources() -> dict[str, Path]:
    """Every module of the project by its dotted name: each .py file under the repository (a
    root-level one and a folder without __init__.py too: an import of either is an arrow all
    the same), tests/ included."""
    found: dict[str, Path] = {}
    for path in sorted(ROOT.rglob("*.py")):
        relative = path.relative_to(ROOT)
        if _NOT_OURS & set(relative.parts) or any(part.startswith(".") for part in relative.parts):
            continue
        parts = relative.with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" and len(parts) > 1 else parts)] = path
    return found


MODULES = _sources()


# Calls that import a module named by a string: invisible to this graph and to the bundles'
# module finder, so code that ships (SHIPPED) must not make them.
_STRING_IMPORTS = {"__import__", "import_module"}
SHIPPED = ("edge", "sync", "catalog", "alerts")


def _statements(tree: ast.AST) -> list[ast.Import | ast.ImportFrom]:
    return [node for node in ast.walk(tree) if isinstance(node, ast.Import | ast.ImportFrom)]


def _resolve(name: str) -> str | None:
    """The project module `name` is, or None (the standard library, a third-party package)."""
    return name if name in MODULES else None


def imports(module: str) -> set[str]:
    """The project modules `module` imports: `from a import b` is `a.b` when that is a module, `a`
    otherwise (a package's __init__ that an import passes through is not an arrow of its own)."""
    path = MODULES[module]
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found: set[str] = set()
    for node in _statements(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            modules = [f"{base}.{alias.name}" for alias in node.names if _resolve(f"{base}.{alias.name}")]
            names = modules if len(modules) == len(node.names) else [*modules, base]
        found.update(n for n in map(_resolve, names) if n is not None and n != module)
    return found


GRAPH = {module: imports(module) for module in MODULES}


def _top(module: str) -> str:
    return module.split(".")[0]


def test_every_package_has_its_rule() -> None:
    assert {_top(module) for module in MODULES} == set(MAY_IMPORT)


def test_the_graph_sees_the_imports_it_must() -> None:
    """The reader itself: a top-level import, a lazy one, one under TYPE_CHECKING and a `from a import b`."""
    assert "edge.settings" in GRAPH["sync.job"]  # from edge.settings import ...
    assert "edge.imaging" in GRAPH["edge.resize"]  # from edge import imaging, inside a function
    assert "sync.job" in GRAPH["sync.backfill"]
    assert "components.config" in GRAPH["__main__"]


@pytest.mark.parametrize("package", sorted(MAY_IMPORT))
def test_each_package_imports_only_what_its_rule_allows(package: str) -> None:
    wrong = sorted(
        f"{module} imports {imported}"
        for module, targets in GRAPH.items()
        if _top(module) == package
        for imported in targets
        if _top(imported) != package and _top(imported) not in MAY_IMPORT[package]
    )
    assert not wrong, wrong


def test_nothing_imports_the_operator_commands_but_their_entry_point() -> None:
    outside = sorted(
        module
        for module, targets in GRAPH.items()
        if _top(module) not in ("ops", "tests") and any(_top(t) == "ops" for t in targets)
    )
    assert not outside, f"import ops/ from outside it: {outside}"


@pytest.mark.parametrize("package", SHIPPED)
def test_shipped_code_imports_no_module_named_by_a_string(package: str) -> None:
    """importlib.import_module("edge.s3") or __import__(...) would be an import neither this graph
    nor components/bundle.py's module finder sees: a bundle without the module, an outage on AWS."""
    found = []
    for module, path in MODULES.items():
        if _top(module) != package:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            called = node.func if isinstance(node, ast.Call) else None
            name = getattr(called, "id", None) or getattr(called, "attr", None)
            if name in _STRING_IMPORTS:
                found.append(f"{module}:{node.lineno}")
    assert not found, found


def test_the_graph_sees_every_python_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A root-level module and a folder without __init__.py are modules too; virtualenvs are not."""
    (tmp_path / "helpers.py").write_text("")
    (tmp_path / "loose").mkdir()
    (tmp_path / "loose" / "x.py").write_text("")
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / ".venv" / "lib").mkdir(parents=True)
    (tmp_path / ".venv" / "lib" / "site.py").write_text("")
    (tmp_path / "node_modules").mkdir()
    (tmp_path / "node_modules" / "x.py").write_text("")
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    assert sorted(_sources()) == ["helpers", "loose.x", "pkg"]


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_the_cycle_finder_finds_a_cycle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_imports_itself_back() -> None:
    assert _cycles(GRAPH) == []
