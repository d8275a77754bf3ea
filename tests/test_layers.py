"""The layer rule: a module imports only from its own layer or the layers below it."""

from __future__ import annotations

import ast
from pathlib import Path

import graphgrad

PACKAGE = Path(graphgrad.__file__).parent

# Lowest first. A module's layer is that of the longest matching prefix of its dotted path.
LAYERS = [
    ["_args", "_dtype", "_device", "_files", "_state", "_version", "_runtime", "version",
     "backends"],
    ["ops"],
    ["engine"],
    ["tensor", "creation", "_tensor_ns", "_functions", "_backward"],
    ["autograd"],
    ["_math", "_indexing", "_products", "linalg"],  # more tensor ops, built on autograd
    ["compiler"],  # graphgrad.compile: records the op stream, replays it; graph and train use it
    ["graph"],
    ["distributed"],  # collectives on tensors; nn.parallel and data's sampler build on them
    ["nn", "optim", "data", "utils", "io", "viz"],
    ["interop", "onnx"],  # to and from torch (modules, torch.fx) and ONNX: optional extras
    ["train", "tasks"],
    ["sweep"],
    ["lab"],
    ["cli", "tour", "torch_alias"],
    ["__init__", "__main__"],
]
LAYER_OF = {name: rank for rank, names in enumerate(LAYERS) for name in names}


def layer(module: str) -> int:
    """``graphgrad.ops.reduce`` -> the layer of ``ops``."""
    top = module.split(".")[1] if "." in module else "__init__"
    if top not in LAYER_OF:
        raise AssertionError(f"module graphgrad.{top} has no layer in tests/test_layers.py")
    return LAYER_OF[top]


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    if parts[-1] == "__init__" and len(parts) > 2:
        parts = parts[:-1]
    return ".".join(parts)


def imported_modules(source: str, module: str, is_package: bool) -> list[tuple[int, str]]:
    """Every graphgrad module that ``source`` imports, anywhere in the file, with its line."""
    package = module if is_package else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            names = [f"{target}.{a.name}" for a in node.names] if not node.module else [target]
            found += [(node.lineno, n) for n in names if n.startswith("graphgrad")]
        elif isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if a.name.startswith("graphgrad")]
    return found


def test_no_module_imports_from_a_higher_layer():
    violations = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = module_name(path)
        if module == "graphgrad":
            continue
        for line, target in imported_modules(path.read_text(), module, path.name == "__init__.py"):
            if target != "graphgrad" and layer(target) > layer(module):
                violations.append(
                    f"{path.relative_to(PACKAGE.parent)}:{line}: {module} imports "
                    f"{target} from a higher layer"
                )
    assert not violations, "\n".join(violations)


def test_the_checker_sees_an_upward_import():
    # The rule must be able to fail: a module in ops/ importing the tensor layer is flagged.
    targets = imported_modules("from ..tensor import Tensor\n", "graphgrad.ops.probe", False)
    assert targets == [(1, "graphgrad.tensor")]
    assert layer("graphgrad.tensor") > layer("graphgrad.ops.probe")
