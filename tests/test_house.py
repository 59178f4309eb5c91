"""The architecture's rules, checked on the source: the core depends on torch alone, Ultralytics is reached through
its seams, functions stay short."""

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "semiyolo"
INTEGRATION = SRC / "integrations" / "ultralytics"
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
    app = {SRC / "cli.py", SRC / "cli_parser.py", SRC / "__main__.py"}  # the command line sits on top of everything
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


SPEC = SRC.parents[1] / "docs" / "spec.md"
UNFINDABLE_SOURCES = ("spec section", "spec §", "document 0")  # documents outside the repository
SPEC_CITATION = r"docs/spec\.md §(\d+(?:\.\d+)*)"


def test_the_code_cites_only_documents_in_the_repository():
    import re

    offenders = [
        f"{path.relative_to(SRC)}: {phrase!r}"
        for path in sorted(SRC.rglob("*.py"))
        for phrase in UNFINDABLE_SOURCES
        if phrase in path.read_text().lower()
    ]
    assert offenders == []
    assert SPEC.is_file()
    sections = set(re.findall(r"^#{2,3} (\d+(?:\.\d+)*)\.? ", SPEC.read_text(), flags=re.MULTILINE))
    cited = {
        f"{path.relative_to(SRC)}: §{number}"
        for path in sorted(SRC.rglob("*.py"))
        for number in re.findall(SPEC_CITATION, path.read_text())
        if number not in sections
    }
    assert cited == set()


BATCH_OWNER = SRC / "batch.py"  # the extended batch's keys, its construction, its split and its labeled part
BATCH_READERS = (INTEGRATION / "criterion.py", INTEGRATION / "semi_criterion.py")
EXTENDED_BATCH_KEYS = ("num_labeled", "regress", "target_weight", "ignore_idx", "ignore_bboxes", "dense_targets")


def test_the_extended_batch_has_one_owner():
    """Its keys are written as strings in one module only; the criterion reads them there, not in the teacher."""
    spelled = [
        f"{path.relative_to(SRC)}:{node.lineno}: {node.value!r}"
        for path, tree in _modules()
        if path != BATCH_OWNER
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value in EXTENDED_BATCH_KEYS
    ]
    assert spelled == []
    for path in BATCH_READERS:
        tree = ast.parse(path.read_text())
        absolute = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and not n.level and n.module}
        absolute |= {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported = _relative_targets(path, tree) | absolute
        assert not [m for m in imported if m.split(".")[:2] == ["semiyolo", "teacher"]], path.name


EXPERIMENTS = SRC / "experiments"


def test_arm_kinds_are_written_only_in_arms():
    """Each arm kind (``kind`` in ``ablation.csv``) is spelled once, in experiments/arms.py; the other experiment
    modules use its constants."""
    from semiyolo.experiments.arms import KINDS

    spelled = [
        f"{path.relative_to(SRC)}:{node.lineno}: {node.value!r}"
        for path, tree in _modules()
        if EXPERIMENTS in path.parents and path.name != "arms.py"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value in KINDS
    ]
    assert spelled == []


RUN_FOLDER_HOME = SRC / "runfiles.py"  # last_weights, train_state, weights_dir
PIXEL_SCALE_HOME = SRC / "pixels.py"  # to_unit_range, PIXEL_MAX


def test_the_run_folder_layout_and_the_pixel_scale_are_written_once():
    """A run's checkpoint files are named in runfiles.py alone, and uint8 images are scaled by ``/ 255`` in
    pixels.py alone."""
    from semiyolo.runfiles import LAST_WEIGHTS, SEMI_STATE, TRAIN_STATE

    files = (LAST_WEIGHTS, TRAIN_STATE, SEMI_STATE)
    named = [
        f"{path.relative_to(SRC)}:{node.lineno}: {node.value!r}"
        for path, tree in _modules()
        if path != RUN_FOLDER_HOME
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and (node.value in files or node.value.endswith(tuple(f"/{name}" for name in files)))
    ]
    assert named == []
    scaled = [
        f"{path.relative_to(SRC)}:{node.lineno}"
        for path, tree in _modules()
        if path != PIXEL_SCALE_HOME
        for node in ast.walk(tree)
        if isinstance(node, ast.BinOp)
        and isinstance(node.op, ast.Div)
        and isinstance(node.right, ast.Constant)
        and node.right.value == 255
    ]
    assert scaled == []


RULE_HOMES = {  # a config value that selects a rule -> the modules that may spell it: the list of choices, the rule
    "dense": {SRC / "pseudo" / "tiers.py", SRC / "pseudo" / "dense.py"},  # dense_geometry_conflict
    "soft": {SRC / "pseudo" / "tiers.py"},  # soft_uncertain
}


@pytest.mark.parametrize("value", sorted(RULE_HOMES))
def test_the_dense_geometry_and_soft_target_rules_are_written_once(value):
    """Anyone who needs to know whether dense or soft targets apply asks their rule, rather than comparing the
    setting to its value again."""
    spelled = [
        f"{path.relative_to(SRC)}:{node.lineno}"
        for path, tree in _modules()
        if path not in RULE_HOMES[value]
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and node.value == value
    ]
    assert spelled == []


def test_every_list_of_semi_settings_is_declared_in_semi_groups():
    """The semi settings' groups (and the settings that name a path) are declared once, in ``semi_groups.py``;
    every other list of them (``SUPERVISED_KEYS``, what ``semiyolo cfg`` prints) is derived from there."""
    from semiyolo.config import SemiConfig

    home, settings = SRC / "semi_groups.py", set(SemiConfig.model_fields)
    by_hand = [
        f"{path.relative_to(SRC)}:{node.lineno}"
        for path, tree in _modules()
        if path != home
        for node in ast.walk(tree)
        if isinstance(node, (ast.Tuple, ast.List, ast.Set))
        and all(isinstance(item, ast.Constant) and item.value in settings for item in node.elts)
        and len({item.value for item in node.elts}) >= 3
    ]
    assert by_hand == []


def test_the_readme_layout_names_every_module():
    readme = (SRC.parents[1] / "README.md").read_text()
    layout = readme.split("## Layout", 1)[1].split("```")[1]
    folders = (SRC, SRC / "integrations" / "ultralytics", SRC / "experiments")
    modules = [p for folder in folders for p in folder.iterdir() if p.name not in ("__init__.py", "__pycache__")]
    missing = [str(p.relative_to(SRC)) for p in modules if p.stem not in layout and p.name not in layout]
    assert missing == []


def test_the_criterion_reads_the_batch_the_losses_and_the_box_ops_alone():
    """The criterion modules import, at run time, nothing of the project but the extended batch's owner, the loss
    library and the box operations (a type named for annotations only is not an import)."""
    allowed = {"semiyolo.batch", "semiyolo.losses", "semiyolo.boxes"}
    found = {}
    for name in ("criterion.py", "semi_criterion.py"):
        path = INTEGRATION / name
        tree = ast.parse(path.read_text())
        runtime = [n for n in tree.body if not (isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test))]
        targets = _relative_targets(path, ast.Module(body=runtime, type_ignores=[]))
        found[name] = {t for t in targets if not t.startswith("semiyolo.integrations")} - allowed
    assert found == {"criterion.py": set(), "semi_criterion.py": set()}
