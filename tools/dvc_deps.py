"""dvc.yaml's code deps, written from the imports: each stage depends on exactly the source files
of the module its `featviz` command runs and of every featviz and stages module (and package
``__init__.py``) that one imports, directly or not (read from the sources, not imported), so
that editing any of them reruns the stage and editing anything else does not. A module's data
folder (``x_data/`` or ``x_templates/`` beside ``x.py``) is a dep wherever the module is.
featviz/cli.py is left out: it only parses arguments and hands over to the stage's module.

    python tools/dvc_deps.py            # rewrite the code deps of every stage in dvc.yaml
    python tools/dvc_deps.py --check    # exit 1, naming each stage whose deps differ

A stage's other deps (data files, models/, params.yaml) stay as they are, first.
"""

from __future__ import annotations

import argparse
import ast
import inspect
import re
import sys
import textwrap
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
DVC_YAML = REPO / "dvc.yaml"
PACKAGES = ("featviz", "stages")
DATA_FOLDERS = ("_data", "_templates")  # x.py reads its files from x_data/ or x_templates/
STAGE = re.compile(r"^  (?P<name>[a-z0-9-]+):\s*$")
DEPS = re.compile(r"^(?P<indent>    |      )deps:\s*$")  # a stage's, or a foreach stage's (do:)


def module_files(module: str) -> list[Path]:
    """The source files that importing a featviz or stages module runs: its own (a package's
    ``__init__.py``) and its parent packages'; none for other libraries, or for a name that is
    not a module (``from a.b import name``)."""
    parts = module.split(".")
    if parts[0] not in PACKAGES:
        return []
    path = REPO.joinpath(*parts)
    own = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
    if not own.is_file():
        return []
    return [REPO.joinpath(*parts[:depth], "__init__.py") for depth in range(1, len(parts))] + [own]


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


def import_closure(module: str) -> set[Path]:
    """The source files of ``module`` and of every featviz or stages module it imports,
    transitively."""
    files, todo = set(), [module]
    while todo:
        for path in module_files(todo.pop()):
            if path not in files:
                files.add(path)
                todo += imported_modules(path)
    return files


def code_deps(module: str) -> set[Path]:
    """The source files of ``module``'s import closure and the data folders of its modules."""
    files = import_closure(module)
    folders = {path.with_name(path.stem + suffix) for path in files for suffix in DATA_FOLDERS}
    return files | {folder for folder in folders if folder.is_dir()}


def is_code(dep: str) -> bool:
    return dep.split("/")[0] in PACKAGES


def command_modules() -> dict[str, str]:
    """featviz command name -> the stage module its function in featviz/cli.py imports."""
    sys.path.insert(0, str(REPO))
    from featviz.cli import app

    commands = {}
    for command in app.registered_commands:
        source = textwrap.dedent(inspect.getsource(command.callback))
        stage_imports = [node.module for node in ast.walk(ast.parse(source))
                         if isinstance(node, ast.ImportFrom) and node.module
                         and node.module.startswith("stages.")]
        if stage_imports:
            commands[command.name] = stage_imports[0]
    return commands


def expected_deps() -> dict[str, list[str]]:
    """Stage name -> its deps as they should be: the non-code deps as listed, then the code."""
    commands = command_modules()
    stages = yaml.safe_load(DVC_YAML.read_text())["stages"]
    expected = {}
    for name, stage in stages.items():
        stage = stage.get("do", stage)
        module = commands[stage["cmd"].split()[1]]
        code = sorted(str(path.relative_to(REPO)) for path in code_deps(module))
        expected[name] = [dep for dep in stage["deps"] if not is_code(dep)] + code
    return expected


def differences() -> list[str]:
    """One line per stage whose listed deps differ from what its code imports."""
    stages = yaml.safe_load(DVC_YAML.read_text())["stages"]
    lines = []
    for name, deps in expected_deps().items():
        listed = set(stages[name].get("do", stages[name])["deps"])
        missing, extra = sorted(set(deps) - listed), sorted(listed - set(deps))
        if missing or extra:
            lines.append(f"dvc.yaml stage {name}: missing {missing}, not imported {extra}")
    return lines


def rewrite() -> None:
    """dvc.yaml with every stage's deps list replaced by the expected one, the rest kept."""
    expected = expected_deps()
    lines, stage, item = [], None, None
    for line in DVC_YAML.read_text().splitlines(keepends=True):
        if item and line.startswith(item):
            continue
        item = None
        found = STAGE.match(line)
        stage = found["name"] if found else stage
        lines.append(line)
        deps = DEPS.match(line)
        if deps:
            item = f"{deps['indent']}  - "
            lines += [f"{item}{dep}\n" for dep in expected[stage]]
    DVC_YAML.write_text("".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only say what differs")
    if parser.parse_args().check:
        problems = differences()
        print("\n".join(problems) or "dvc.yaml's code deps follow the imports")
        sys.exit(1 if problems else 0)
    rewrite()


if __name__ == "__main__":
    main()
