"""The package's layers, lowest first: nothing imports upward, and no module imports
itself back through others (docs/design.md, "Layers").

Imports are read from the source (every `import` and `from mlgen ... import`, also
inside functions). Imports under `if TYPE_CHECKING:` are annotations, never run: they
may name any module of the core, but never the tools, the plugin or the CLI. The
variant registry (`mlgen.variants`) loads each variant's module by name at run time,
which is what lets the batch model list the variants without importing their code.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "generator"

# Lowest first. A module may import its own layer and any layer below.
LAYERS: tuple[tuple[str, frozenset[str]], ...] = (
    (
        "foundation",
        frozenset(
            [
                "errors",
                "limits",
                "units",
                "terminal",
                "contract",
                "features",
                "lazy",
                "messages",
                "places",
                "templating",
                "naming",
                "sandbox",
                "rules",
                "podrules",
                "podsecurity",
                "references",
                "versions",
            ]
        ),
    ),
    (
        "batch model",
        frozenset(
            [
                "spec",
                "source",
                "matrix",
                "patch",
                "podfields",
                "validation",
                "schema",
                "entrypoint",
                "variants",
                "variants.base",
            ]
        ),
    ),
    (
        "rendering",
        frozenset(
            ["pod", "indexed_job", "health", "flux", "manifest", "tree", "render", "scaffold"]
        ),
    ),
    ("running", frozenset(["kube", "lookout", "recorder", "timeline", "apply"])),
    ("promises", frozenset(["schedule", "checks", "estimate", "gantt"])),
    (
        "variants",
        frozenset(["variants.waves", "variants.indexed", "variants.parallel", "variants.stages"]),
    ),
    ("tools", frozenset({"cluster"})),
    ("plugin", frozenset({"conformance", "pytest_entry"})),
    ("cli", frozenset({"cli"})),
)


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _layer(module: str) -> int:
    if module == "":  # mlgen/__init__.py: the version
        return 0
    for number, (_, members) in enumerate(LAYERS):
        if module in members or module.split(".")[0] in members - {"variants"}:
            return number
    raise AssertionError(f"mlgen.{module} has no layer: add it to LAYERS in {__file__}")


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """The mlgen modules `path` imports when run, and under TYPE_CHECKING only."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    typing_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            typing_only |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    run, typing = set(), set()
    for node in ast.walk(tree):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names if a.name.startswith("mlgen.")]
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("mlgen"):
            base = node.module or ""
            for alias in node.names:  # `from mlgen import spec` imports the module spec
                full = f"{base}.{alias.name}"
                names.append(full if (ROOT / _path(full)).exists() else base)
        for name in names:
            target = name.removeprefix("mlgen").lstrip(".")
            if target:  # not `from mlgen import __version__`
                (typing if id(node) in typing_only else run).add(target)
    return run, typing


def _path(module: str) -> str:
    rest = module.removeprefix("mlgen").lstrip(".").replace(".", "/")
    return f"{rest}.py" if not (ROOT / rest).is_dir() else f"{rest}/__init__.py"


def _graph() -> tuple[dict[str, set[str]], list[tuple[str, str]]]:
    """Each module's run-time imports, and the TYPE_CHECKING-only edges."""
    graph: dict[str, set[str]] = {}
    typing_edges: list[tuple[str, str]] = []
    for path in sorted(ROOT.rglob("*.py")):
        module = _module(path)
        run, typing = _imports(path)
        graph[module] = run - {module}
        typing_edges += [(module, target) for target in typing]
    return graph, typing_edges


def test_every_module_has_a_layer() -> None:
    graph, _ = _graph()
    for module in graph:
        _layer(module)


def test_nothing_imports_upward() -> None:
    graph, typing_edges = _graph()
    upward = [
        f"mlgen.{a} ({LAYERS[_layer(a)][0]}) imports mlgen.{b} ({LAYERS[_layer(b)][0]})"
        for a, targets in graph.items()
        for b in sorted(targets)
        if _layer(b) > _layer(a)
    ]
    tools = _layer("cluster")
    upward += [
        f"mlgen.{a} names mlgen.{b} under TYPE_CHECKING ({LAYERS[_layer(b)][0]})"
        for a, b in typing_edges
        if _layer(b) >= tools > _layer(a)
    ]
    assert upward == []


def test_no_import_cycles() -> None:
    graph, _ = _graph()
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as e:
        raise AssertionError(f"import cycle: {' -> '.join(e.args[1])}") from None


def test_the_checker_sees_a_planted_upward_import_and_cycle(tmp_path: Path) -> None:
    """The rule's own proof: the import reader finds what it must forbid."""
    planted = tmp_path / "planted.py"
    planted.write_text(
        "from __future__ import annotations\n"
        "from typing import TYPE_CHECKING\n"
        "from mlgen import spec, checks\n"
        "if TYPE_CHECKING:\n"
        "    from mlgen.conformance import plugin\n"
        "def f() -> None:\n"
        "    from mlgen.cluster import build\n",
        encoding="utf-8",
    )
    run, typing = _imports(planted)
    assert run == {"spec", "checks", "cluster.build"}
    assert typing == {"conformance.plugin"}
    assert _layer("cluster.build") > _layer("spec") and _layer("conformance.plugin") > 0
