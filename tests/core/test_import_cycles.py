"""No import cycles among core modules: every import statement (module level or inside a function) of every
core module is read with `ast`, the module graph is built, and its strongly connected components must all be
single modules. (A function-level import that closes a cycle works at run time but still ties the two modules
together: one of them belongs elsewhere.)"""
import ast
from pathlib import Path

from data_paths import ROOT

CORE = ROOT / "core"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, root: Path, modules: set) -> set:
    """The `modules` that `path` imports (a name imported from a package counts as its submodule if it is one)."""
    name = module_name(path, root)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - (node.level - 1)]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            targets = [mod] + [f"{mod}.{a.name}" for a in node.names]
        else:
            continue
        for t in targets:
            if t in modules and t != name:
                out.add(t)
    return out


def import_graph(package_dir: Path = CORE) -> dict:
    """{module: the package's modules it imports}."""
    root = package_dir.parent
    files = sorted(package_dir.rglob("*.py"))
    modules = {module_name(f, root) for f in files}
    return {module_name(f, root): imports_of(f, root, modules) for f in files}


def cycles(graph: dict) -> list:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles_in_core():
    graph = import_graph()
    assert "core.pipeline" in graph and "core.engines.registry" in graph["core.pipeline"]
    assert cycles(graph) == []


def test_the_cycle_finder_finds_cycles(tmp_path):
    """Relative, absolute and function-level imports all count (so the test above can fail)."""
    pkg = tmp_path / "core"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from .sub import b\n")
    (pkg / "sub" / "b.py").write_text("import core.c\n")
    (pkg / "c.py").write_text("from . import a\n")
    (pkg / "d.py").write_text("from .a import f\n")
    (pkg / "e.py").write_text("import os\nfrom .d import f\n")
    graph = import_graph(pkg)
    assert graph["core.e"] == {"core.d"} and graph["core.sub.b"] == {"core.c"}
    assert cycles(graph) == [["core.a", "core.c", "core.sub.b"]]
