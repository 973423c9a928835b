"""The package reads as its pipeline: imports point down it, never back up, and functions stay short.

paths, progress, reference, table (the run-table contract) -> corpus -> tokens -> mixture -> proxy -> runs ->
online (DoReMi, ODM) -> laws -> optimize -> validate -> published, olmix, plots -> fit -> report -> cli. Every import inside `mixkit/`, function-level
ones included, is read from the source.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mixkit"

# Rank of each top-level part: a module may import parts of lower or equal rank only.
RANK = {"paths": 0, "progress": 0, "reference": 0, "table": 0, "corpus": 1, "tokens": 2, "mixture": 3, "proxy": 4, "runs": 5,
        "online": 5.5, "laws": 6, "optimize": 7, "validate": 7.5, "published": 8, "olmix": 8, "plots": 8, "fit": 8.5,
        "report": 9, "cli": 10}
# Edges the rank order would allow but the design rules out.
FORBIDDEN = {("proxy", "table"), ("laws", "proxy"), ("laws", "runs")}
MAX_FUNCTION_LINES = 60
MAX_NESTING = 4


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The mixkit modules `name` imports (`from package import submodule` counts as both)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("mixkit")}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            if not base.startswith("mixkit"):
                continue
            # `from package import x` runs the package's face even when x is a submodule.
            out |= {base} | {f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in known}
    return {m for m in out if m in known and m != name}


def _graph() -> dict[str, set[str]]:
    mods = _modules()
    return {name: _imports(name, path, set(mods)) for name, path in mods.items()}


def _part(module: str) -> str:
    return module.split(".")[1] if "." in module else "mixkit"


def test_imports_never_point_back_up_the_pipeline():
    bad = []
    for mod, deps in _graph().items():
        a = _part(mod)
        for dep in deps:
            b = _part(dep)
            if a == b or "mixkit" in (a, b):
                continue
            assert a in RANK and b in RANK, f"new top-level part {a} or {b}: give it a rank in this test"
            if RANK[b] > RANK[a] or (a, b) in FORBIDDEN:
                bad.append(f"{mod} -> {dep}")
    assert not bad, "imports against the pipeline:\n" + "\n".join(sorted(bad))


def test_no_import_cycles():
    # Package faces count too: a module that imports its own package's face closes a circle.
    graph = _graph()
    state: dict[str, int] = {}

    def visit(node, stack):
        state[node] = 1
        for dep in graph.get(node, ()):
            if state.get(dep) == 1:
                pytest.fail("import cycle: " + " -> ".join(stack[stack.index(dep):] + [dep]))
            if dep not in state:
                visit(dep, stack + [dep])
        state[node] = 2

    for mod in graph:
        if mod not in state:
            visit(mod, [mod])


def _nesting(node: ast.AST, depth: int = 0) -> int:
    """Deepest block (if, for, while, with, try) inside `node`; an elif is a sibling, not a level."""
    blocks = (ast.If, ast.For, ast.While, ast.With, ast.Try)
    deepest = depth
    for field, value in ast.iter_fields(node):
        for child in value if isinstance(value, list) else [value]:
            if not isinstance(child, ast.AST) or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef,
                                                                    ast.ClassDef, ast.Lambda)):
                continue
            is_elif = isinstance(node, ast.If) and field == "orelse" and len(value) == 1 and isinstance(child, ast.If)
            deepest = max(deepest, _nesting(child, depth + (isinstance(child, blocks) and not is_elif)))
    return deepest


def test_functions_are_short_and_shallow():
    long, deep = [], []
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            lines = node.end_lineno - node.lineno + 1
            if lines > MAX_FUNCTION_LINES:
                long.append(f"{name}.{node.name}: {lines} lines")
            if _nesting(node) > MAX_NESTING:
                deep.append(f"{name}.{node.name}: {_nesting(node)} levels")
    assert not long and not deep, "split these by meaning:\n" + "\n".join(long + deep)


def test_the_checks_can_fail(tmp_path):
    # The graph reader sees function-level imports, the hidden kind the rank check exists for.
    probe = tmp_path / "probe.py"
    probe.write_text("def f():\n    from mixkit.runs import sweep\n    from . import table\n")
    deps = _imports("mixkit.proxy.probe", probe, {"mixkit.runs", "mixkit.runs.sweep", "mixkit.proxy.table"})
    assert deps == {"mixkit.runs", "mixkit.runs.sweep", "mixkit.proxy.table"}
    nested = ast.parse("def f():\n" + "".join("    " * (i + 1) + "if x:\n" for i in range(5)) + "    " * 6 + "pass\n")
    assert _nesting(nested.body[0]) == 5
    chain = ast.parse("def f():\n    if a:\n        pass\n    elif b:\n        pass\n    elif c:\n        pass\n")
    assert _nesting(chain.body[0]) == 1
