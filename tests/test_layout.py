"""The layout the design card asks for, and dvc.yaml deps that follow the code.

A stage's code deps in dvc.yaml must be exactly the modules its command imports, directly or
through other featviz modules (found by reading the sources), so that editing any of them
reruns the stage and editing anything else does not. The CLI layer (featviz/cli.py) is left
out: it only parses arguments and hands over to the stage's module.
"""

import ast
import inspect
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import yaml

from tests.conftest import REPO

PACKAGES = {"featviz.stages": REPO / "stages", "featviz": REPO / "featviz"}


def module_file(module: str) -> Path | None:
    """The source file of a featviz module; None for packages and for other libraries."""
    for package, folder in PACKAGES.items():
        if module.startswith(package + "."):
            path = folder / (module.removeprefix(package + ".").replace(".", "/") + ".py")
            return path if path.is_file() else None
    return None


def imported_modules(path: Path) -> set[str]:
    """Every module a source file imports, at the top or inside a function."""
    modules = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            modules |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules.add(node.module)
            modules |= {f"{node.module}.{alias.name}" for alias in node.names}
    return modules


def featviz_closure(module: str) -> set[Path]:
    """The source files of ``module`` and of every featviz module it imports, transitively."""
    files, todo = set(), [module]
    while todo:
        path = module_file(todo.pop())
        if path is None or path in files:
            continue
        files.add(path)
        todo += imported_modules(path)
    return files


def command_modules() -> dict[str, str]:
    """featviz command name -> the stage module its function in featviz/cli.py imports."""
    from featviz.cli import app

    commands = {}
    for command in app.registered_commands:
        source = textwrap.dedent(inspect.getsource(command.callback))
        stage_imports = [node.module for node in ast.walk(ast.parse(source))
                         if isinstance(node, ast.ImportFrom) and node.module
                         and node.module.startswith("featviz.stages.")]
        if stage_imports:
            commands[command.name] = stage_imports[0]
    return commands


def test_every_stage_depends_on_exactly_the_modules_its_command_imports():
    commands = command_modules()
    stages = yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]
    assert stages, "dvc.yaml has no stages"
    for name, stage in stages.items():
        command = stage["cmd"].split()[1]
        expected = {str(p.relative_to(REPO)) for p in featviz_closure(commands[command])}
        listed = {dep for dep in stage["deps"] if dep.endswith(".py")}
        assert listed == expected, (
            f"dvc.yaml stage {name}: missing {sorted(expected - listed)}, "
            f"not imported {sorted(listed - expected)}")


def test_no_library_module_imports_the_stages():
    """The library knows nothing of the pipeline; only the command line (cli.py) calls it."""
    library = [p for p in sorted((REPO / "featviz").glob("*.py")) if p.name != "cli.py"]
    assert len(library) > 5
    for path in library:
        stage_imports = [m for m in imported_modules(path) if m.startswith("featviz.stages")]
        assert not stage_imports, f"{path.name} imports {stage_imports}"


def test_stages_live_in_a_top_level_folder_mirrored_by_the_tests():
    assert not (REPO / "featviz" / "stages").exists()
    modules = {p.stem for p in (REPO / "stages").glob("*.py")} - {"__init__"}
    tests = {p.stem.removeprefix("test_") for p in (REPO / "tests" / "stages").glob("test_*.py")}
    assert modules - {"progress", "tables"} <= tests, modules - tests


def test_evaluation_and_the_report_import_only_what_they_share():
    """The scorer needs no part of the engine, and the report none of the scorer."""
    assert REPO / "featviz/optimize.py" not in featviz_closure("featviz.evaluate")
    assert REPO / "stages/cross_evaluate.py" not in featviz_closure("featviz.stages.report")


def test_a_wheel_installs_the_stages_as_featviz_stages(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(REPO)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("featviz-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for module in (REPO / "stages").glob("*.py"):
        assert f"featviz/stages/{module.name}" in names
    assert "featviz/cli.py" in names and not any(n.startswith("stages/") for n in names)
