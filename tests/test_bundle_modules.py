"""Each function's bundle carries the project modules its handler imports, and no other.

The bundles are the ones the stack builds (prod on Pulumi's mocks, with alarm webhooks so that
the alarm relay is there too: every function the project deploys); what the handler imports is
found by walking the source's import statements (tests/test_layout.py's graph), not by the
standard library's `modulefinder`, which components/bundle.py uses.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest
from pulumi_mocks import StackRun, run_stack
from test_layout import GRAPH, MODULES

from components import bundle
from components.config import from_stack_file

ROOT = Path(__file__).resolve().parents[1]
FUNCTION = "aws:lambda/function:Function"
# Top-level packages of the project: an archive entry under one of them is our code, not a wheel's.
PROJECT = frozenset(path.parent.name for path in ROOT.glob("*/__init__.py"))


@pytest.fixture(scope="module")
def prod() -> StackRun:
    return run_stack(from_stack_file("prod", overrides={"alarmWebhooks": ["https://chat.example.com/hooks/x"]}))


def imported(handler: str) -> set[str]:
    """The project modules `handler`'s module imports, directly or not, itself and the packages
    around them included (importing `a.b.c` runs `a` and `a.b` first): the import statements of
    its source, lazy ones inside functions too."""
    found: set[str] = set()
    pending = [handler.rpartition(".")[0]]
    while pending:
        module = pending.pop()
        if module in found or module not in MODULES:
            continue
        found.add(module)
        parts = module.split(".")
        pending.extend(".".join(parts[:end]) for end in range(1, len(parts)))
        pending.extend(GRAPH[module])
    return found


def carried(archive: Path) -> tuple[set[str], set[str]]:
    """(the project modules in an archive, its other project files)."""
    with zipfile.ZipFile(archive) as zipped:
        names = [name for name in zipped.namelist() if name.split("/")[0] in PROJECT]
    modules = {
        name.removesuffix(".py").removesuffix("/__init__").replace("/", ".") for name in names if name.endswith(".py")
    }
    return modules, {name for name in names if not name.endswith(".py")}


def test_the_stack_deploys_every_function_the_bundles_know(prod: StackRun) -> None:
    assert sorted(f.inputs["handler"] for f in prod.of_type(FUNCTION)) == sorted(bundle.HANDLERS.values())


@pytest.mark.parametrize("function", sorted(bundle.HANDLERS))
def test_a_bundle_carries_exactly_what_its_handler_imports(prod: StackRun, function: str) -> None:
    (deployed,) = [f for f in prod.of_type(FUNCTION) if f.inputs["handler"] == bundle.HANDLERS[function]]
    modules, others = carried(Path(deployed.inputs["code"].path))
    assert modules == imported(bundle.HANDLERS[function])
    assert others <= {"edge/config.json"}  # the stack's config, nothing else of ours that is not code


def test_the_edge_functions_carry_nothing_of_the_regional_code(prod: StackRun) -> None:
    for handler in ("edge.rewrite.handler", "edge.resize.handler"):
        (deployed,) = [f for f in prod.of_type(FUNCTION) if f.inputs["handler"] == handler]
        modules, _ = carried(Path(deployed.inputs["code"].path))
        assert {module.split(".")[0] for module in modules} == {"edge"}, handler
    rewrite = next(f for f in prod.of_type(FUNCTION) if f.inputs["handler"] == "edge.rewrite.handler")
    modules, _ = carried(Path(rewrite.inputs["code"].path))
    assert "edge.imaging" not in modules and "edge.s3" not in modules  # rewrite decodes nothing


def test_modules_follow_lazy_and_relative_imports(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """components/bundle.py's `modules`, on a package made for it: an import inside a function, a
    relative one, a name that is not a module (`from pkg.a import thing`), the standard library's
    `json` (not ours: left out), and a module nothing imports (left out)."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "a.py").write_text("from . import b\nthing = 1\n")
    (tmp_path / "pkg" / "b.py").write_text("def later():\n    from pkg.sub import c\n")
    (tmp_path / "pkg" / "sub").mkdir()
    (tmp_path / "pkg" / "sub" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "sub" / "c.py").write_text("import json\nfrom pkg.a import thing\n")
    (tmp_path / "pkg" / "unused.py").write_text("")
    monkeypatch.setattr(bundle, "ROOT", tmp_path)
    assert list(bundle.modules("pkg.a.handler")) == ["pkg", "pkg.a", "pkg.b", "pkg.sub", "pkg.sub.c"]


def test_a_function_the_project_does_not_have_is_refused() -> None:
    with pytest.raises(bundle.BundleError, match="no function 'rewrites'"):
        bundle.handler("rewrites")
