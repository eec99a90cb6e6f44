"""The package's import graph: no cycles, and every import points down the layers.

Serving code (decoding, the model, the OOD decision, the API) must never import offline
code (training, evaluation, Spark jobs, fitting): a change to a training script must not
be able to break the server, and the server must not drag training's dependencies in.
The layers are the import-linter contract in pyproject.toml (``lint-imports`` checks the
same list), read here: each unit (a top-level module or sub-package) may import its own
layer and those below it, but not an independent sibling (``a | b``). Every import
counts, including function-local ones: a lazy import is still a dependency, only a
hidden one.
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SRC = ROOT / "src"
PACKAGE = SRC / "braintumor"


def read_layers() -> list[tuple[str, tuple[str, ...], bool]]:
    """(layer, its units, independent) from pyproject.toml's contract, lowest first."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    (contract,) = [c for c in config["contracts"] if c["id"] == "layers"]
    assert contract["containers"] == [config["root_package"]] == ["braintumor"]
    layers = []
    for line in reversed(contract["layers"]):
        independent = "|" in line
        units = tuple(u.strip() for u in line.replace("|", ":").split(":"))
        layers.append((line, units, independent))
    return layers


#: (layer, units, independent), lowest first; the package's own __init__ is below them all.
LAYERS = read_layers()


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


def unit_of(module: str) -> str:
    """The unit a module belongs to: ``braintumor.ood.detector`` is ``ood``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def layer_of(module: str) -> int | None:
    """The index of a module's layer, lowest first; -1 for the package's own __init__."""
    unit = unit_of(module)
    if not unit:
        return -1
    for index, (_, units, _) in enumerate(LAYERS):
        if unit in units:
            return index
    return None


def unit_graph(edges: dict[str, set[str]]) -> dict[str, set[str]]:
    units: dict[str, set[str]] = {}
    for source, targets in edges.items():
        for target in targets:
            if unit_of(source) and unit_of(target) and unit_of(source) != unit_of(target):
                units.setdefault(unit_of(source), set()).add(unit_of(target))
    return units


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
            if low is None or high is None:
                continue
            sibling = (low == high and low >= 0 and LAYERS[low][2]
                       and unit_of(source) != unit_of(target))
            if high > low or sibling:
                found.append(f"{source} ({layer_name(low)}) imports {target} "
                             f"({layer_name(high)})")
    return found


def layer_name(index: int) -> str:
    return "the package's __init__" if index < 0 else LAYERS[index][0]


def test_every_module_has_a_layer():
    unplaced = [name for name in all_modules() if layer_of(name) is None]
    assert unplaced == [], f"add their units to the layers in pyproject.toml: {unplaced}"


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_no_cycles_among_units():
    assert cycles(unit_graph(graph())) == []


def test_every_unit_is_in_one_layer():
    units = [unit for _, layer_units, _ in LAYERS for unit in layer_units]
    assert len(units) == len(set(units))


def test_imports_point_down_the_layers():
    assert upward(graph()) == []


# --- the checks themselves find what they are meant to find ------------------------------


def test_the_walk_sees_function_local_imports(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from braintumor.training.train import train\n")
    modules = all_modules()
    assert imports_of(source, modules) == {"braintumor.training.train"}


def test_the_layers_are_read_from_the_contract():
    assert LAYERS[-1] == ("cli", ("cli",), False)
    assert ("evaluation | spark", ("evaluation", "spark"), True) in LAYERS


def test_a_cycle_is_found():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize(("source", "target", "bad"), [
    ("braintumor.classify", "braintumor.training.train", True),
    ("braintumor.ood.detector", "braintumor.config", True),
    ("braintumor.training.ood_fit", "braintumor.ood.detector", False),
    ("braintumor.api.classify_routes", "braintumor.decoding", False),
    ("braintumor.spark.submit", "braintumor.cli", True),
    ("braintumor.datasets.parquet", "braintumor.spark.classify_job", True),
    ("braintumor.datasets.parquet", "braintumor.spark_session.session", False),
    ("braintumor.evaluation.run", "braintumor.spark.classify_job", True),  # independent
    ("braintumor.model.loaded", "braintumor.explain.render", False),  # non-independent
    ("braintumor.spark_session.session", "braintumor", False),
    ("braintumor", "braintumor.errors", True),
])
def test_an_upward_import_is_found(source, target, bad):
    assert bool(upward({source: {target}})) is bad


def test_the_readme_draws_the_contract():
    """The README's architecture picture names the contract's layers, top to bottom, with
    its separators ("|" independent, ":" mutual): the picture's first column."""
    import re

    readme = (ROOT / "README.md").read_text()
    picture = readme.split("## Architecture", 1)[1].split("```", 2)[1]
    drawn = [" ".join(re.split(r"\s{3,}", line.strip())[0].split())
             for line in picture.splitlines()
             if line.strip() and line.strip() != "|" and not line.strip().startswith("=")]
    assert drawn == [layer for layer, _, _ in reversed(LAYERS)]
