"""Each function's bundle carries the project modules its handler imports, and no other.

The bundles are the ones the stack builds (prod on Pulumi's mocks, with alarm webhooks so that
the alarm relay is there too: every function the project deploys); what the handler imports is
found by walking the source's import statements (tests/test_layout.py's graph), not by the
standard library's `modulefinder`, which components/bundle.py uses.
"""

from __future__ import annotations

import ast
import re
import sys
import zipfile
from pathlib import Path

import pytest
from pulumi_mocks import StackRun, run_stack
from test_layout import GRAPH, MODULES, _statements

from components import bundle
from components.config import from_stack_file

ROOT = Path(__file__).resolve().parents[1]
FUNCTION = "aws:lambda/function:Function"
# The project's top-level names (packages, folders and root-level modules): an archive entry
# under one of them is our code, not a wheel's.
PROJECT = frozenset(module.split(".")[0] for module in MODULES)
# What Lambda's Python runtime has besides the standard library: "the AWS SDK for Python (Boto3)
# and its dependencies" (Lambda Developer Guide, "Working with .zip file archives for Python
# Lambda functions"); every other package a carried module imports must be in its bundle.
RUNTIME = frozenset({"boto3", "botocore", "urllib3", "s3transfer", "jmespath", "dateutil", "six"})


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
        names = [name for name in zipped.namelist() if name.split("/")[0].removesuffix(".py") in PROJECT]
    modules = {
        name.removesuffix(".py").removesuffix("/__init__").replace("/", ".") for name in names if name.endswith(".py")
    }
    return modules, {name for name in names if not name.endswith(".py")}


def test_the_architecture_document_lists_what_each_bundle_carries(prod: StackRun) -> None:
    """docs/architecture.md's table, row by row, against prod's archives (each package's
    __init__ is said once under the table)."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    rows = re.findall(r"^\| `([\w-]+)` \([^)]*\) \| `([\w.]+)` \| (.+) \|$", text, flags=re.MULTILINE)
    assert sorted(function for function, _, _ in rows) == sorted(bundle.HANDLERS)
    for function, handler, listed in rows:
        assert bundle.HANDLERS[function] == handler
        said = {
            f"{package}.{module}"
            for package, modules in re.findall(r"`(\w+)`: ((?:`\w+`(?:, )?)+)", listed)
            for module in re.findall(r"`(\w+)`", modules)
        }
        (deployed,) = [f for f in prod.of_type(FUNCTION) if f.inputs["handler"] == handler]
        modules, _ = carried(Path(deployed.inputs["code"].path))
        assert said == {m for m in modules if "." in m}, function


def test_the_stack_deploys_every_function_the_bundles_know(prod: StackRun) -> None:
    assert sorted(f.inputs["handler"] for f in prod.of_type(FUNCTION)) == sorted(bundle.HANDLERS.values())


@pytest.mark.parametrize("function", sorted(bundle.HANDLERS))
def test_a_bundle_carries_exactly_what_its_handler_imports(prod: StackRun, function: str) -> None:
    (deployed,) = [f for f in prod.of_type(FUNCTION) if f.inputs["handler"] == bundle.HANDLERS[function]]
    modules, others = carried(Path(deployed.inputs["code"].path))
    # prod serves no q=auto: its bundles carry no numpy, and so not the metric that needs it
    assert modules == imported(bundle.HANDLERS[function]) - {"edge.perceptual"}
    # the stack's config (read by edge.settings) whenever it is imported, nothing else of ours that is not code
    assert others == ({"edge/config.json"} if "edge.settings" in modules else set())


def _third_party(source: str) -> set[str]:
    """The top-level packages a module's source imports (any statement, lazy ones too) that are
    neither the standard library nor the project's."""
    found = set()
    for node in _statements(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
            found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - PROJECT


@pytest.mark.parametrize("stack", ["prod", "thirdparty", "dev+auto+jxl"])
def test_every_package_a_bundle_imports_is_in_it_or_in_the_runtime(stack: str) -> None:
    """The carried modules' third-party imports, against the bundle's own top-level entries and the
    runtime's SDK. Two are imported only behind a stack's choice, and may be absent without it:
    the JPEG XL encoder (a stack whose formats list jxl; rewrite refuses fm=jxl elsewhere) and
    numpy (a stack with a qualityTarget; rewrite refuses q=auto elsewhere). The third stack turns
    both on, and there every import must be carried."""
    if stack == "dev+auto+jxl":
        formats = ["avif", "webp", "jpeg", "png", "jxl"]
        overrides = {"qualityTarget": "good", "defaultQuality": "auto", "formats": formats, "standardFormats": formats}
        run = run_stack(from_stack_file("dev", overrides=overrides))
    else:
        run = run_stack(from_stack_file(stack))
    for deployed in run.of_type(FUNCTION):
        # The metadata function reads originals (catalog/ingest.py: edge.imaging's limits and
        # decoder), never encodes: it needs neither, whatever the stack.
        stackless = deployed.inputs["handler"] == "catalog.ingest.handler"
        optional = {"pillow_jxl", "numpy"} if stack != "dev+auto+jxl" or stackless else set()
        with zipfile.ZipFile(Path(deployed.inputs["code"].path)) as zipped:
            names = zipped.namelist()
            present = {name.split("/")[0].removesuffix(".py") for name in names}
            ours = [name for name in names if name.endswith(".py") and name.split("/")[0] in PROJECT]
            sources = [zipped.read(name).decode() for name in ours]
        needed = set().union(*map(_third_party, sources))
        missing = needed - present - RUNTIME - optional
        assert not missing, f"{deployed.inputs['handler']} imports {sorted(missing)}, which its bundle lacks"


def test_the_metric_ships_with_numpy_and_only_with_it() -> None:
    """A q=auto stack's resize carries edge/perceptual.py and numpy; a stack without carries neither."""
    auto = run_stack(from_stack_file("dev", overrides={"qualityTarget": "good"}))
    plain = run_stack(from_stack_file("dev"))
    for run, expected in ((auto, True), (plain, False)):
        (resize,) = [f for f in run.of_type(FUNCTION) if f.inputs["handler"] == "edge.resize.handler"]
        with zipfile.ZipFile(Path(resize.inputs["code"].path)) as zipped:
            names = zipped.namelist()
        assert ("edge/perceptual.py" in names) is expected
        assert any(name.startswith("numpy/") for name in names) is expected


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


def test_imports_the_finder_cannot_follow_are_a_bundle_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A handler that imports a folder without __init__.py, or a module that does not exist."""
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "a.py").write_text("from loose import x\n")
    (tmp_path / "loose").mkdir()
    (tmp_path / "loose" / "x.py").write_text("")
    (tmp_path / "pkg" / "b.py").write_text("import pkg.missing\n")
    monkeypatch.setattr(bundle, "ROOT", tmp_path)
    for handler in ("pkg.a.handler", "pkg.b.handler"):
        with pytest.raises(bundle.BundleError, match=f"cannot follow the imports of {handler}"):
            bundle.modules(handler)


def test_a_function_the_project_does_not_have_is_refused() -> None:
    with pytest.raises(bundle.BundleError, match="no function 'rewrites'"):
        bundle.handler("rewrites")
