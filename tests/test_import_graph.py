"""The house's arrows, read from the source with ``ast``: no import circle between modules, no
private name (``_name``, a module or an attribute) imported from outside the package that owns
it, and the layers import downwards only (compute and models know nothing of io, pipelines,
jobs or web; pipelines nothing of flask, jobs or web; jobs nothing of web).

Imports inside functions count (a lazy import is still an arrow); imports under
``if TYPE_CHECKING:`` do not (they never run).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import ml4paleo

SRC = Path(ml4paleo.__file__).parent
ROOT = "ml4paleo"
FORBIDDEN = {
    "compute": ("ml4paleo.io", "ml4paleo.pipelines", "ml4paleo.jobs", "ml4paleo.web", "flask"),
    "models": ("ml4paleo.io", "ml4paleo.pipelines", "ml4paleo.jobs", "ml4paleo.web", "flask"),
    "io": ("ml4paleo.pipelines", "ml4paleo.jobs", "ml4paleo.web", "flask"),
    "pipelines": ("ml4paleo.jobs", "ml4paleo.web", "flask"),
    "jobs": ("ml4paleo.web", "flask"),
}
"""Layer (first package under ml4paleo) -> the modules it must not import (prefixes)."""


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(SRC.rglob("*.py"))}


def _is_package(name: str) -> bool:
    return MODULES[name].name == "__init__.py"


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imports(name: str) -> list[tuple[str, int]]:
    """(dotted path imported, line) for every import of ``name`` that runs: ``from a.b import c``
    gives ``a.b.c`` (a module or a name in ``a.b``), ``import a.b`` gives ``a.b``."""
    tree = ast.parse(MODULES[name].read_text(), str(MODULES[name]))
    package = name if _is_package(name) else name.rpartition(".")[0]
    out: list[tuple[str, int]] = []

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _type_checking_only(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            out.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            out.extend((f"{base}.{alias.name}", node.lineno) for alias in node.names if alias.name != "*")
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return out


def _target_module(path: str) -> str | None:
    """The ml4paleo module that importing ``path`` loads (the longest module prefix), or None."""
    parts = path.split(".")
    for n in range(len(parts), 0, -1):
        candidate = ".".join(parts[:n])
        if candidate in MODULES:
            return candidate
    return None


GRAPH = {name: {t for path, _ in _imports(name) if (t := _target_module(path)) and t != name} for name in MODULES}


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
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


def _private_owner(path: str) -> str | None:
    """The package that owns the first private part of ``path`` (``a.b._c.d`` -> ``a.b``), or None."""
    parts = path.split(".")
    for i, part in enumerate(parts):
        if part.startswith("_") and not (part.startswith("__") and part.endswith("__")):
            return ".".join(parts[:i])
    return None


def test_the_search_sees_the_package():
    assert {"ml4paleo.cli", "ml4paleo.pipelines.train", "ml4paleo.jobs.store"} <= set(MODULES)
    assert "ml4paleo.pipelines.scoring" in GRAPH["ml4paleo.pipelines.train"]


def test_the_circle_finder_finds_circles():
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _circles({"a": {"b"}, "b": set()}) == []


def test_no_import_circle():
    circles = _circles(GRAPH)
    assert not circles, "import circles: " + "; ".join(" <-> ".join(c) for c in circles)


def _module_aliases(name: str) -> dict[str, str]:
    """Local name -> ml4paleo module, for the modules ``name`` imports as a whole
    (``import ml4paleo.compute.mesh as meshing``, ``from ml4paleo.compute import mesh``)."""
    tree = ast.parse(MODULES[name].read_text(), str(MODULES[name]))
    out = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.update({a.asname: a.name for a in node.names if a.asname and a.name in MODULES})
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.update({a.asname or a.name: f"{node.module}.{a.name}" for a in node.names
                        if f"{node.module}.{a.name}" in MODULES})
    return out


def test_no_private_name_used_through_a_module_of_another_package():
    """``meshing._pack(...)`` is the same reach into another module as importing ``_pack``."""
    found = []
    for name in MODULES:
        aliases = _module_aliases(name)
        for node in ast.walk(ast.parse(MODULES[name].read_text())):
            if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases:
                path = f"{aliases[node.value.id]}.{node.attr}"
                owner = _private_owner(path)
                if owner is not None and not (name == owner or name.startswith(owner + ".")):
                    found.append(f"{MODULES[name].relative_to(SRC.parent)}:{node.lineno} uses {path}")
    assert not found, "private names used across packages:\n" + "\n".join(found)


def test_no_private_name_imported_from_another_package():
    found = []
    for name in MODULES:
        for path, line in _imports(name):
            owner = _private_owner(path)
            if owner is not None and owner.startswith(ROOT) and not (name == owner or name.startswith(owner + ".")):
                found.append(f"{MODULES[name].relative_to(SRC.parent)}:{line} imports {path}")
    assert not found, "private names imported across packages:\n" + "\n".join(found)


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layers_import_downwards(layer):
    found = []
    for name in MODULES:
        if not name.startswith(f"{ROOT}.{layer}.") and name != f"{ROOT}.{layer}":
            continue
        for path, line in _imports(name):
            if any(path == f or path.startswith(f + ".") for f in FORBIDDEN[layer]):
                found.append(f"{MODULES[name].relative_to(SRC.parent)}:{line} imports {path}")
    assert not found, f"{layer} imports upwards:\n" + "\n".join(found)


def test_nothing_inside_imports_the_package_root():
    """The root is the public face (it loads the pipelines on first use): an import of it from
    inside is an arrow up."""
    found = [f"{MODULES[name].relative_to(SRC.parent)}:{line} imports {path}"
             for name in MODULES if name != ROOT for path, line in _imports(name) if _target_module(path) == ROOT]
    assert not found, "imports of the package root:\n" + "\n".join(found)


def test_the_store_reads_and_writes_no_volume():
    """The store's transactions hold records only: the files (zarr metadata, PNGs) are written by
    the job services around them (``ml4paleo.jobs.voxel_size``, ``ml4paleo.jobs.masks``)."""
    found = [f"{MODULES[name].relative_to(SRC.parent)}:{line} imports {path}"
             for name in MODULES if name.startswith(f"{ROOT}.jobs.store")
             for path, line in _imports(name) if path.startswith(f"{ROOT}.io") or path.split(".")[0] == "zarr"]
    assert not found, "the store touches files:\n" + "\n".join(found)
