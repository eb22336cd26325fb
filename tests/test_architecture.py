"""The import graph: no cycles anywhere in push2fa, not even between two modules of one
folder or through an import inside a function. `make lint` (lint-imports, the contracts in
pyproject.toml) checks the layers and cycles between sibling folders; this checks every
module against every other."""

from __future__ import annotations

import grimp


def _cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module (or a module
    that imports itself)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if imported not in index:
                visit(imported)
                low[module] = min(low[module], low[imported])
            elif imported in on_stack:
                low[module] = min(low[module], index[imported])
        if low[module] == index[module]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == module:
                    break
            loops = module in graph.find_modules_directly_imported_by(module)
            if len(component) > 1 or loops:
                found.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return found


def test_push2fa_has_no_import_cycle() -> None:
    graph = grimp.build_graph("push2fa", cache_dir=None)
    assert _cycles(graph) == []


def test_the_cycle_check_finds_a_planted_cycle() -> None:
    graph = grimp.build_graph("push2fa", cache_dir=None)
    graph.add_import(importer="push2fa.config", imported="push2fa.domain.challenges")
    cycles = _cycles(graph)
    assert any({"push2fa.config", "push2fa.domain.challenges"} <= set(c) for c in cycles)
