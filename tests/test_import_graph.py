"""decemb's module graph has no import circle: every module's module-level imports (not those inside functions,
nor under ``if TYPE_CHECKING:``), parsed with ``ast``, form an acyclic graph. The checker itself is tested on
a synthetic package with a circle, so that the test above cannot pass by finding nothing. Optional
dependencies are not imported eagerly."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "decemb"


def module_files(package: Path) -> dict[str, Path]:
    """Dotted module name → file, for every ``.py`` file under ``package`` (a package is its ``__init__``)."""
    found: dict[str, Path] = {}
    for file in sorted(package.rglob("*.py")):
        parts = list(file.relative_to(package.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = file
    return found


def _type_checking(node: ast.If) -> bool:
    test = node.test
    return getattr(test, "id", None) == "TYPE_CHECKING" or getattr(test, "attr", None) == "TYPE_CHECKING"


def module_level(body: list[ast.stmt]) -> Iterator[ast.stmt]:
    """The statements that run when the module is imported: into if/try/with/for/class blocks, not into
    function bodies or ``if TYPE_CHECKING:``."""
    for node in body:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        if isinstance(node, ast.If):
            yield from module_level(node.orelse)
            if not _type_checking(node):
                yield from module_level(node.body)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody, *(handler.body for handler in node.handlers)):
                yield from module_level(block)
        elif isinstance(node, ast.With | ast.ClassDef | ast.For | ast.While):
            yield from module_level(node.body)
        else:
            yield node


def import_graph(package: Path) -> dict[str, set[str]]:
    """Module → the modules of the same package it imports at module level (``from p import name``: the
    submodule ``p.name`` when there is one, else ``p``)."""
    modules = module_files(package)
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, file in modules.items():
        here = name if file.name == "__init__.py" else name.rpartition(".")[0]
        for node in module_level(ast.parse(file.read_text(encoding="utf-8")).body):
            if isinstance(node, ast.Import):
                graph[name] |= {alias.name for alias in node.names if alias.name in modules}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = here.split(".")[: len(here.split(".")) - node.level + 1]
                    base = ".".join([*parts, *([base] if base else [])])
                for alias in node.names:
                    target = f"{base}.{alias.name}"
                    if target in modules or base in modules:
                        graph[name].add(target if target in modules else base)
        graph[name].discard(name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle (``[a, b, ..., a]``), or ``None`` when the graph is acyclic (depth-first search)."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        state[node] = 2
        path.pop()
        return None

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def test_decemb_has_no_import_circle() -> None:
    graph = import_graph(PACKAGE)
    assert len(graph) > 100 and "decemb.records" in graph["decemb.encode"]
    assert "decemb.tasks.base" in graph["decemb.tasks.mteb_replay"]  # moved below tasks/ (#23)
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_checker_finds_a_circle_in_a_synthetic_package(tmp_path: Path) -> None:
    package = tmp_path / "pkg"
    (package / "sub").mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "a.py").write_text("from pkg.sub import b\n\ndef f():\n    from pkg import c\n")
    (package / "sub" / "__init__.py").write_text("")
    (package / "sub" / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    import pkg.a\n")
    (package / "c.py").write_text("try:\n    from . import a\nexcept ImportError:\n    pass\n")
    graph = import_graph(package)
    assert graph["pkg.a"] == {"pkg.sub.b"} and graph["pkg.c"] == {"pkg.a"}
    assert find_cycle(graph) is None  # a's import of c sits in a function, b's of a under TYPE_CHECKING
    (package / "sub" / "b.py").write_text("from ..c import VALUE\n")  # now b -> c -> a -> b at import time
    assert find_cycle(import_graph(package)) == ["pkg.a", "pkg.sub.b", "pkg.c", "pkg.a"]
    assert find_cycle({"x": {"x"}}) == ["x", "x"] and find_cycle({"x": {"y"}, "y": set()}) is None


def test_optional_dependencies_are_not_imported_eagerly() -> None:
    """matplotlib (the ``plots`` extra) and pyarrow (``parquet`` / ``ray``) load only on the paths that use them."""
    code = (
        "import sys, decemb, decemb.cli, decemb.compare, decemb.compare.report, decemb.encode, decemb.records, "
        "decemb.tasks, decemb.distributed.sources, decemb.distributed.shards, decemb.config_reference\n"
        "print(sorted(m for m in ('matplotlib', 'pyarrow') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
