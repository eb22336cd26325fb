"""The import graph: no cycles anywhere in push2fa, not even between two modules of one
folder or through an import inside a function. `make lint` (lint-imports, the contracts in
pyproject.toml) checks the layers and cycles between sibling folders; this checks every
module against every other, with grimp's graph (which import-linter builds on) and the
standard library's topological sort."""

from __future__ import annotations

from graphlib import CycleError, TopologicalSorter

import grimp


def _a_cycle(graph: grimp.ImportGraph) -> list[str] | None:
    """One import cycle in the graph (as the modules around it), or None."""
    order = TopologicalSorter(
        {module: graph.find_modules_directly_imported_by(module) for module in graph.modules}
    )
    try:
        order.prepare()
    except CycleError as error:
        return list(error.args[1])
    return None


def test_push2fa_has_no_import_cycle() -> None:
    graph = grimp.build_graph("push2fa", cache_dir=None)
    assert _a_cycle(graph) is None


def test_the_cycle_check_finds_a_planted_cycle() -> None:
    graph = grimp.build_graph("push2fa", cache_dir=None)
    graph.add_import(importer="push2fa.config", imported="push2fa.domain.challenges")
    cycle = _a_cycle(graph)
    assert cycle is not None and "push2fa.config" in cycle


def test_a_module_importing_itself_is_a_cycle() -> None:
    graph = grimp.build_graph("push2fa", cache_dir=None)
    graph.add_import(importer="push2fa.logs", imported="push2fa.logs")
    assert _a_cycle(graph) is not None
