"""The package's shape: every command a leaf, no import cycles, every module named.

The command modules (what `cli.py` calls) may import library modules only, never each other;
the library modules never import a command.  Imports inside functions count as much as those at
the top: a cycle hidden in a function is still a cycle.
"""
import ast
from pathlib import Path

import dcgan_complete

PACKAGE = Path(dcgan_complete.__file__).parent
COMMANDS = {"complete", "detect", "evaluate", "sweep", "demo", "app"}


def _imports(path):
    """The package's modules that the module at ``path`` imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            if node.module == "dcgan_complete":
                found.update(alias.name for alias in node.names)
            elif node.module.startswith("dcgan_complete."):
                found.add(node.module.split(".")[1])
        elif isinstance(node, ast.Import):
            found.update(alias.name.split(".")[1] for alias in node.names
                         if alias.name.startswith("dcgan_complete."))
    return found


def import_graph():
    """Module name -> the package's modules it imports."""
    modules = {p.stem: p for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__")}
    return {name: sorted(_imports(path) & set(modules) - {name})
            for name, path in modules.items()}


def _cycle(graph):
    """A list of modules that import each other round, or None."""
    state = {}

    def visit(node, trail):
        state[node] = "open"
        for nxt in graph[node]:
            if state.get(nxt) == "open":
                return trail[trail.index(nxt):] + [nxt]
            if nxt not in state:
                found = visit(nxt, trail + [nxt])
                if found:
                    return found
        state[node] = "done"
        return None

    for start in graph:
        if start not in state:
            found = visit(start, [start])
            if found:
                return found
    return None


def test_no_import_cycles():
    assert _cycle(import_graph()) is None


def test_commands_are_leaves():
    graph = import_graph()
    offenders = {name: sorted(set(deps) & COMMANDS) for name, deps in graph.items()
                 if name != "cli" and set(deps) & COMMANDS}
    assert offenders == {}


def test_the_cycle_finder_finds_cycles():
    assert _cycle({"a": ["b"], "b": ["c"], "c": ["a"]}) == ["a", "b", "c", "a"]
    assert _cycle({"a": ["b"], "b": []}) is None


def test_package_docstring_names_every_module():
    named = set(__import__("re").findall(r"``(\w+)``", dcgan_complete.__doc__))
    modules = {p.stem for p in PACKAGE.glob("*.py") if p.stem not in ("__init__", "__main__")}
    assert modules - named == set()
