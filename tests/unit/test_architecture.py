"""The package mirrors the workflow: one subpackage per stage, dependencies pointing one way, no import cycle.

The import graph is read from the source with `ast` by `mindupload.fingerprint` (imports inside functions count:
they are dependencies too, only deferred), the same graph the workflow's code fingerprints follow, so the test
needs none of the heavy libraries the modules import.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from mindupload import fingerprint

PACKAGE = fingerprint.PACKAGE

# Shared by every stage: errors, atomic files, the config schema, the one prompt renderer and the chat template
# made from it, push receipts, code
# fingerprints, options handed to jobs outside the command line, provenance, progress of long steps, SVG charts.
BASE = (
    "errors",
    "files",
    "config",
    "render",
    "chat_template",
    "receipts",
    "fingerprint",
    "joboptions",
    "provenance",
    "progress",
    "charts",
)
# The stages in workflow order: a stage may import the stages before it, never one after it.
STAGES = ("ingest", "privacy", "model", "dataset", "training", "serving", "evaluation")
# The edges: they may import anything, and nothing but another edge imports them.
EDGES = ("hub", "remote", "cli", "__main__")


def modules() -> dict[str, Path]:
    return fingerprint.modules()


def graph() -> dict[str, set[str]]:
    return fingerprint.Package().graph


def top(name: str) -> str:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 else ""


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(edges[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
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

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return found


def layer_violations(edges: dict[str, set[str]]) -> list[str]:
    bad = []
    for source, targets in edges.items():
        for target in targets:
            src, dst = top(source), top(target)
            if src == dst or src in EDGES or dst == "":
                continue
            if dst in EDGES:
                bad.append(f"{source} imports the edge {target}")
            elif src in BASE and dst in STAGES:
                bad.append(f"{source} (shared by every stage) imports the stage module {target}")
            elif src in STAGES and dst in STAGES and STAGES.index(dst) > STAGES.index(src):
                bad.append(f"{source} imports {target}, a later stage")
    return sorted(bad)


def test_every_module_belongs_to_a_known_layer():
    unplaced = sorted(name for name in modules() if top(name) not in (*BASE, *STAGES, *EDGES, ""))
    assert unplaced == [], f"add these to BASE, STAGES or EDGES (and docs/architecture.md): {unplaced}"


def test_the_package_has_no_import_cycle():
    assert cycles(graph()) == []


def test_dependencies_point_from_later_stages_to_earlier_ones():
    assert layer_violations(graph()) == []


def test_every_stage_registers_its_commands_and_the_cli_lists_them_all():
    from mindupload import cli

    packages = {top(name) for name in cli.COMMANDS}
    assert set(STAGES) <= packages
    assert all((PACKAGE / package / "commands.py").is_file() for package in packages)


@pytest.mark.parametrize(
    ("edges", "expected"),
    [
        ({"a": {"b"}, "b": {"a"}, "c": set()}, [["a", "b"]]),
        ({"a": {"b"}, "b": {"c"}, "c": {"a"}}, [["a", "b", "c"]]),
        ({"a": {"b"}, "b": set()}, []),
    ],
)
def test_the_cycle_finder_finds_cycles(edges, expected):
    assert cycles(edges) == expected


def test_the_layer_check_catches_upward_and_edge_imports():
    edges = {
        "mindupload.dataset.segment": {"mindupload.training.check", "mindupload.ingest.table"},
        "mindupload.training.check": {"mindupload.hub.push"},
        "mindupload.render": {"mindupload.dataset.turns"},
        "mindupload.hub.push": {"mindupload.training.check"},
    }
    assert layer_violations(edges) == [
        "mindupload.dataset.segment imports mindupload.training.check, a later stage",
        "mindupload.render (shared by every stage) imports the stage module mindupload.dataset.turns",
        "mindupload.training.check imports the edge mindupload.hub.push",
    ]


def test_imports_resolve_modules_named_in_from_imports():
    edges = graph()
    assert "mindupload.ingest.table" in edges["mindupload.ingest.parse"]
    assert "mindupload.training.axolotl_config" in edges["mindupload.training.check"]
