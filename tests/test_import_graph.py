"""The project's import graph: no cycles, and the layers only import downwards.

Every module under corpus/, index/, search/ and the top-level ui.py with its parts ui_state.py,
ui_layout.py and ui_serve.py is parsed with ``ast`` (nothing is imported). An edge A -> B is an
``import``/``from … import`` in A that names project module B. Two graphs are checked:

- the module-level graph (what runs when A is imported; ``if TYPE_CHECKING:`` blocks do not
  count): no cycle, and a layer imports only the layers before it (corpus -> index -> search -> ui);
- the full graph, which adds the deferred (function-level, lazy) imports and calls of
  ``importlib.import_module("…")`` / ``__import__("…")`` with a literal name: no cycle either, and
  downwards too, except :data:`DEFERRED_UPWARD` (one commented entry).
"""
from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("corpus", "index", "search")
UI_MODULES = ("ui", "ui_state", "ui_layout", "ui_serve")
LAYER = {"corpus": 0, "index": 1, "search": 2, **{m: 3 for m in UI_MODULES}}


def module_name(path: Path) -> str:
    """Dotted module name of a project file (``corpus/readers/__init__.py`` -> ``corpus.readers``)."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_files() -> dict[str, Path]:
    """Module name -> file for every module of the three packages, ui.py and its parts."""
    files = {m: ROOT / f"{m}.py" for m in UI_MODULES}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            files[module_name(path)] = path
    return files


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _dynamic_import(node: ast.AST) -> ast.Import | None:
    """``importlib.import_module("a.b")`` / ``import_module("a.b")`` / ``__import__("a.b")`` with a
    literal absolute name, as the equivalent ``import a.b`` (so a lazy import cannot hide in a call)."""
    if not (isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str) and not node.args[0].value.startswith(".")):
        return None
    f = node.func
    name = f.attr if isinstance(f, ast.Attribute) else f.id if isinstance(f, ast.Name) else ""
    if name not in ("import_module", "__import__"):
        return None
    return ast.Import(names=[ast.alias(name=node.args[0].value)])


def all_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Every import of the module, deferred ones (inside functions) and literal dynamic ones included."""
    found: list[ast.Import | ast.ImportFrom] = []
    for n in ast.walk(tree):
        if isinstance(n, (ast.Import, ast.ImportFrom)):
            found.append(n)
        elif (dyn := _dynamic_import(n)) is not None:
            found.append(dyn)
    return found


def module_level_imports(tree: ast.Module) -> list[ast.Import | ast.ImportFrom]:
    """Import statements run when the module is imported: top level, inside try/if/with, not in defs."""
    found: list[ast.Import | ast.ImportFrom] = []
    pending: list[ast.stmt] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            found.append(node)
        elif isinstance(node, ast.If):
            if not _is_type_checking(node):
                pending.extend(node.body)
            pending.extend(node.orelse)
        elif isinstance(node, ast.Try):
            pending.extend(node.body + node.orelse + node.finalbody)
            for handler in node.handlers:
                pending.extend(handler.body)
        elif isinstance(node, ast.With):
            pending.extend(node.body)
    return found


def _resolve(name: str, modules: set[str]) -> str | None:
    """The project module that ``name`` refers to (itself, or its nearest enclosing package)."""
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def imported_modules(module: str, path: Path, modules: set[str], *, deferred: bool = False) -> set[str]:
    """Project modules that ``module`` imports at module level (with ``deferred``: anywhere)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    is_package = path.name == "__init__.py"
    targets: set[str] = set()
    for node in (all_imports(tree) if deferred else module_level_imports(tree)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        else:
            base = node.module or ""
            if node.level:
                anchor = module.split(".")
                if not is_package:
                    anchor = anchor[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            # ``from pkg import sub`` imports the submodule pkg.sub when there is one.
            names = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                     for alias in node.names]
        for name in names:
            target = _resolve(name, modules)
            if target is not None and target != module:
                targets.add(target)
    return targets


@functools.cache
def import_graph(deferred: bool = False) -> dict[str, set[str]]:
    """Module -> project modules it imports at module level (with ``deferred``: anywhere in it)."""
    files = project_files()
    modules = set(files)
    return {mod: imported_modules(mod, path, modules, deferred=deferred) for mod, path in files.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a path ``[a, b, …, a]``, or None when the graph has none."""
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state:
                cycle = visit(nxt)
                if cycle:
                    return cycle
        stack.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            cycle = visit(start)
            if cycle:
                return cycle
    return None


def test_graph_sees_the_known_edges():
    """The walker finds real edges (so an empty graph cannot pass the checks below)."""
    graph = import_graph()
    assert "corpus.records" in graph
    assert "corpus.readers.pdf" in graph
    assert "index.config" in graph["index.embedder"]
    assert "search.views_html" in graph["ui_layout"]
    assert {"ui_state", "ui_layout", "ui_serve"} <= graph["ui"]
    assert "index.hf_env" in graph["index.embedder"] and "index.hf_env" in graph["index.e5_offline"]
    assert "ui" in import_graph(deferred=True)["search.cli"]  # seen although it is inside cmd_serve


def test_module_imports_have_no_cycle():
    """No chain of module-level imports leads back to where it started."""
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


#: Deferred imports allowed to go up a layer, each with its reason. Nothing else may, and no
#: deferred import may close a cycle (lazy imports of optional third-party packages such as
#: faiss, pytesseract or torch are not project modules and never make an edge).
DEFERRED_UPWARD = {
    ("search.cli", "ui"),  # `seisaku serve` starts the app; Gradio/FastAPI load for that command only
}


def test_no_cycle_even_through_deferred_imports():
    """A function-level import is no excuse for a cycle anywhere: e5_offline and the embedder, the
    chunker and page shapes, the loader and the document worker, corpus.errors and index.errors
    used to import each other that way."""
    full = import_graph(deferred=True)
    cycle = find_cycle(full)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])
    assert "index.embedder" not in full["index.e5_offline"]
    assert "corpus.loader" not in full["corpus.worker"] and "corpus.loader" not in full["corpus.shapes"]
    assert "index.errors" not in full["corpus.errors"]


def test_deferred_imports_go_downwards_too():
    """Only the entries of DEFERRED_UPWARD import a later layer, even inside a function."""
    full = import_graph(deferred=True)
    upward = {(m, t) for m, ts in full.items() for t in ts
              if LAYER[t.split(".")[0]] > LAYER[m.split(".")[0]]}
    assert upward == DEFERRED_UPWARD


def test_the_walker_sees_deferred_and_dynamic_imports(tmp_path: Path):
    """Imports inside functions, relative ones and ``importlib.import_module("…")`` are edges."""
    src = (
        "import importlib\n"
        "def f():\n"
        "    from corpus import records\n"
        "    importlib.import_module('index.config')\n"
        "    __import__('search.records')\n"
        "    from . import chunker\n"
    )
    modules = {"corpus.records", "corpus.chunker", "corpus.x", "index.config", "search.records"}
    tree = ast.parse(src)
    assert module_level_imports(tree) and len(all_imports(tree)) == 5
    path = tmp_path / "x.py"  # read as module corpus.x
    path.write_text(src, encoding="utf-8")
    assert imported_modules("corpus.x", path, modules) == set()
    assert imported_modules("corpus.x", path, modules, deferred=True) == {
        "corpus.records", "corpus.chunker", "index.config", "search.records"}


def test_only_the_serve_command_imports_the_app():
    """ui.py (Gradio, FastAPI) is loaded by `seisaku serve` alone: no other module imports it, and
    search/cli.py only inside cmd_serve."""
    importers = sorted(m for m, ts in import_graph(deferred=True).items() if "ui" in ts)
    assert importers == ["search.cli"]
    tree = ast.parse((ROOT / "search" / "cli.py").read_text(encoding="utf-8"))
    holders = [f.name for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)
               for n in ast.walk(f) if isinstance(n, ast.Import) and any(a.name == "ui" for a in n.names)]
    assert holders == ["cmd_serve"]


def test_the_app_parts_are_imported_by_the_app_only():
    """ui_state, ui_layout and ui_serve (Gradio, FastAPI) are loaded through ui.py alone: nothing
    outside the ui modules imports them, not even deferred."""
    full = import_graph(deferred=True)
    for part in UI_MODULES[1:]:
        importers = sorted(m for m, ts in full.items() if part in ts)
        assert importers and all(m in UI_MODULES for m in importers), (part, importers)


def test_find_cycle_reports_a_cycle():
    """The cycle finder itself: a -> b -> c -> a is reported, a tree is not."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


@pytest.mark.parametrize("module", sorted(project_files()))
def test_layers_import_only_downwards(module):
    """corpus imports nothing from index/search/ui, index nothing from search/ui, search nothing from ui."""
    graph = import_graph()
    layer = LAYER[module.split(".")[0]]
    upward = sorted(t for t in graph[module] if LAYER[t.split(".")[0]] > layer)
    assert upward == [], f"{module} imports a later layer at module level: {upward}"
