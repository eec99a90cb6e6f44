"""The package's import graph: no cycles, and every import points down the layers.

Serving code (decoding, the model, the OOD decision, the API) must never import offline
code (training, evaluation, Spark jobs, fitting): a change to a training script must not
be able to break the server, and the server must not drag training's dependencies in.
The layers are listed here explicitly, lowest first; a module may import its own layer
and those below it. Every import counts, including function-local ones: a lazy import is
still a dependency, only a hidden one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = SRC / "braintumor"

#: (layer, module prefixes), lowest first. The longest matching prefix decides.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("braintumor", "braintumor.errors", "braintumor.classes")),
    ("image types", ("braintumor.imaging",)),
    ("DICOM decoder", ("braintumor.dicom",)),
    ("decoding", ("braintumor.decoding",)),
    ("preprocessing", ("braintumor.preprocessing",)),
    ("model", ("braintumor.model", "braintumor.explain")),
    ("OOD decision", ("braintumor.ood",)),
    ("settings", ("braintumor.config", "braintumor.config_parsers")),
    ("use case", ("braintumor.classify",)),
    ("series use case", ("braintumor.series", "braintumor.dicomweb")),
    ("Spark session", ("braintumor.spark.session", "braintumor.spark.commands",
                       "braintumor.spark.standalone")),
    ("serving", ("braintumor.api", "braintumor.server")),
    ("offline", ("braintumor.datasets", "braintumor.training", "braintumor.spark",
                 "braintumor.ood.fit", "braintumor.ood.auroc", "braintumor.evaluation")),
    ("entry points", ("braintumor.cli", "braintumor.spark.submit", "braintumor.spark.cli")),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(SRC).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def resolve(name: str, modules: dict[str, Path]) -> str:
    """The module an import binds: ``from a.b import c`` is ``a.b.c`` when that is one."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name


def imports_of(path: Path, modules: dict[str, Path]) -> set[str]:
    """Every project module ``path`` imports, at any depth of its code."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from pkg import sub`` binds the submodule; any other name is pkg's own
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name == "braintumor" or name.startswith("braintumor."):
                found.add(resolve(name, modules))
    return found


def graph() -> dict[str, set[str]]:
    modules = all_modules()
    return {name: imports_of(path, modules) - {name} for name, path in modules.items()}


def layer_of(module: str) -> int | None:
    best: tuple[int, int] | None = None
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            matches = module == prefix or module.startswith(prefix + ".")
            if matches and (best is None or len(prefix) > best[0]):
                best = (len(prefix), index)
    return None if best is None else best[1]


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(edges.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
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


def upward(edges: dict[str, set[str]]) -> list[str]:
    found = []
    for source, targets in sorted(edges.items()):
        for target in sorted(targets):
            low, high = layer_of(source), layer_of(target)
            if low is not None and high is not None and high > low:
                found.append(f"{source} ({LAYERS[low][0]}) imports {target} "
                             f"({LAYERS[high][0]})")
    return found


def test_every_module_has_a_layer():
    unplaced = [name for name in all_modules() if layer_of(name) is None]
    assert unplaced == [], f"add these modules to LAYERS in {Path(__file__).name}: {unplaced}"


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_imports_point_down_the_layers():
    assert upward(graph()) == []


# --- the checks themselves find what they are meant to find ------------------------------


def test_the_walk_sees_function_local_imports(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from braintumor.training.train import train\n")
    modules = all_modules()
    assert imports_of(source, modules) == {"braintumor.training.train"}


def test_a_cycle_is_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize(("source", "target", "bad"), [
    ("braintumor.classify", "braintumor.training.train", True),
    ("braintumor.ood.detector", "braintumor.config", True),
    ("braintumor.ood.fit", "braintumor.ood.detector", False),
    ("braintumor.api.routes", "braintumor.decoding", False),
])
def test_an_upward_import_is_found(source, target, bad):
    assert bool(upward({source: {target}})) is bad
