"""The architecture's rules, checked on the source: the core depends on torch alone, Ultralytics is reached through
its seams, functions stay short."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "semiyolo"
INTEGRATION = SRC / "integrations" / "ultralytics"
LONG_FUNCTIONS_ALLOWED = {("cli.py", "build_parser")}  # the argument parser is a flat list of options
MAX_FUNCTION_LINES = 60


def _modules():
    return [(path, ast.parse(path.read_text(), filename=str(path))) for path in sorted(SRC.rglob("*.py"))]


def _imported_roots(tree: ast.AST) -> set[str]:
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def test_only_the_integration_imports_ultralytics():
    offenders = [
        str(path.relative_to(SRC))
        for path, tree in _modules()
        if INTEGRATION not in path.parents and "ultralytics" in _imported_roots(tree)
    ]
    assert offenders == []


def _relative_targets(path: Path, tree: ast.AST) -> set[str]:
    """The ``semiyolo.*`` modules that ``path``'s relative imports name."""
    package = list(path.relative_to(SRC.parent).with_suffix("").parts)
    package = package if path.name == "__init__.py" else package[:-1]
    package = package[:-1] if package[-1] == "__init__" else package
    targets = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level:
            base = package[: len(package) - node.level + 1]
            targets.add(".".join([*base, *(node.module.split(".") if node.module else [])]))
    return targets


def test_the_core_does_not_reach_up_into_the_integration_or_the_experiments():
    upper = ("semiyolo.integrations", "semiyolo.experiments")
    app = {SRC / "cli.py", SRC / "__main__.py"}  # the command line sits on top of everything
    offenders = [
        (str(path.relative_to(SRC)), target)
        for path, tree in _modules()
        if path not in app and not {SRC / "integrations", SRC / "experiments"} & set(path.parents)
        for target in _relative_targets(path, tree)
        if target.startswith(upper)
    ]
    assert offenders == []


def test_no_function_is_longer_than_sixty_lines():
    long = [
        (str(path.relative_to(SRC)), node.name, node.end_lineno - node.lineno + 1)
        for path, tree in _modules()
        for node in ast.walk(tree)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
        and (path.name, node.name) not in LONG_FUNCTIONS_ALLOWED
    ]
    assert long == []


def test_no_attribute_is_replaced_by_a_lambda():
    assigned = [
        f"{path.relative_to(SRC)}:{node.lineno}"
        for path, tree in _modules()
        for node in ast.walk(tree)
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Lambda)
        and any(isinstance(t, ast.Attribute) for t in node.targets)
    ]
    assert assigned == []


def test_the_private_ultralytics_methods_we_override_still_exist():
    """If Ultralytics renames one, our override would silently never run: this test fails instead."""
    from ultralytics.engine.trainer import BaseTrainer

    from semiyolo.integrations.ultralytics.online import PRIVATE_OVERRIDES, OnlineTrainer

    for name in PRIVATE_OVERRIDES:
        assert callable(getattr(BaseTrainer, name, None)), f"Ultralytics' BaseTrainer has no {name} any more"
        assert name in vars(OnlineTrainer)
    private = {
        name
        for cls in OnlineTrainer.__mro__
        if cls.__module__.startswith("semiyolo.")
        for name in vars(cls)
        if name.startswith("_") and not name.startswith("__") and hasattr(BaseTrainer, name)
    }
    assert private == set(PRIVATE_OVERRIDES)


@pytest.mark.parametrize("package", ["teacher", "pseudo", "losses", "boxes", "criteria"])
def test_core_packages_import_without_ultralytics(package):
    import subprocess
    import sys

    code = f"import sys, semiyolo.{package}; sys.exit('ultralytics' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
