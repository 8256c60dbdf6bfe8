"""Layout: the packages import only the layers below them, and no modules import each other.

The layers are drawn in `translator/__init__.py` and docs/ARCHITECTURE.md; this test reads every
import statement (function-level and TYPE_CHECKING ones included) from the source files."""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("translator", "scaler", "zmq_compat")

# What each layer may import (besides itself). `translator` alone is the root package, which
# holds only the version.
BASE = {"translator"}
ALLOWED: dict[str, set[str]] = {
    "translator.contracts": BASE,
    "translator.runtime": BASE | {"translator.contracts"},
    "translator.bus": BASE | {"translator.contracts", "translator.runtime"},
    "translator.text": BASE | {"translator.contracts"},
    "translator.inference": BASE | {"translator.contracts", "translator.runtime"},
    "translator.worker": BASE
    | {
        "translator.contracts",
        "translator.runtime",
        "translator.bus",
        "translator.inference",
        "translator.text",
    },
    # the HTTP API: NATS like any client; of `inference`, only the torch-free catalog
    "translator.api": BASE
    | {"translator.contracts", "translator.runtime", "translator.bus", "translator.inference"},
    "scaler": BASE | {"translator.contracts", "translator.runtime", "translator.bus"},
    "zmq_compat": BASE
    | {
        "translator.contracts",
        "translator.runtime",
        "translator.bus",
        "translator.api",
        "translator.inference",
    },
}
TOP = "translator.commands"  # the command line: may import every layer


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def _imports(name: str, path: Path) -> Iterator[str]:
    """Every project module that `name` imports, resolved to a module where it names one."""
    known = _modules()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            assert node.level == 0, f"{name}: relative import"
            targets = [node.module]
            targets += [f"{node.module}.{a.name}" for a in node.names]
        for target in targets:
            if target in known and target.split(".")[0] in PACKAGES:
                yield target


def _layer(module: str) -> str:
    if module == "translator" or module == "translator.__main__":
        return module
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "translator" else parts[0]


def test_layers_every_module_sits_in_a_layer() -> None:
    layers = {_layer(name) for name in _modules()}
    assert layers == set(ALLOWED) | {TOP, "translator", "translator.__main__"}


def test_layers_nothing_imports_a_higher_layer() -> None:
    upward = []
    for name, path in _modules().items():
        layer = _layer(name)
        allowed = ALLOWED.get(layer)
        if allowed is None:  # the root package, `__main__` and the command line
            continue
        for target in set(_imports(name, path)):
            if _layer(target) not in allowed | {layer}:
                upward.append(f"{name} imports {target}")
    assert upward == []


def test_layers_no_import_cycles() -> None:
    modules = _modules()
    graph = {name: set(_imports(name, path)) - {name} for name, path in modules.items()}
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, [*path, nxt])
        state[node] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_layers_package_docstrings_name_their_imports() -> None:
    """Each subpackage says in its docstring what lives there and what it may import."""
    for layer in [*ALLOWED, TOP]:
        path = ROOT.joinpath(*layer.split("."), "__init__.py")
        tree = ast.parse(path.read_text())
        doc = ast.get_docstring(tree)
        assert doc, f"{path} has no docstring"
        assert all(isinstance(node, ast.Expr) for node in tree.body), f"{path} holds code"


def test_layers_the_http_api_runs_without_torch() -> None:
    """The shim's process (which serves the HTTP API) never loads torch: it uses only the
    torch-free parts of `inference`."""
    code = (
        "import sys, zmq_compat.service, translator.api.app; "
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT, timeout=120)
