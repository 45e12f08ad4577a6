"""dvc.yaml's code deps, written from the imports: each stage depends on exactly the source
files of the module its `featviz` command runs and of every featviz module that one imports,
directly or not (read from the sources, not imported), so that editing any of them reruns the
stage and editing anything else does not. featviz/cli.py is left out: it only parses arguments
and hands over to the stage's module.

    python tools/dvc_deps.py            # rewrite the .py deps of every stage in dvc.yaml
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
PACKAGES = {"featviz.stages": REPO / "stages", "featviz": REPO / "featviz"}
STAGE = re.compile(r"^  (?P<name>[a-z0-9-]+):\s*$")
DEPS = re.compile(r"^    deps:\s*$")
ITEM = re.compile(r"^      - ")


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
    sys.path.insert(0, str(REPO))
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


def expected_deps() -> dict[str, list[str]]:
    """Stage name -> its deps as they should be: the non-code deps as listed, then the code."""
    commands = command_modules()
    stages = yaml.safe_load(DVC_YAML.read_text())["stages"]
    expected = {}
    for name, stage in stages.items():
        module = commands[stage["cmd"].split()[1]]
        code = sorted(str(path.relative_to(REPO)) for path in featviz_closure(module))
        expected[name] = [dep for dep in stage["deps"] if not dep.endswith(".py")] + code
    return expected


def differences() -> list[str]:
    """One line per stage whose listed deps differ from what its code imports."""
    stages = yaml.safe_load(DVC_YAML.read_text())["stages"]
    lines = []
    for name, deps in expected_deps().items():
        listed = set(stages[name]["deps"])
        missing, extra = sorted(set(deps) - listed), sorted(listed - set(deps))
        if missing or extra:
            lines.append(f"dvc.yaml stage {name}: missing {missing}, not imported {extra}")
    return lines


def rewrite() -> None:
    """dvc.yaml with every stage's deps list replaced by the expected one, the rest kept."""
    expected = expected_deps()
    lines, stage, in_deps = [], None, False
    for line in DVC_YAML.read_text().splitlines(keepends=True):
        if in_deps and ITEM.match(line):
            continue
        in_deps = False
        found = STAGE.match(line)
        stage = found["name"] if found else stage
        lines.append(line)
        if DEPS.match(line):
            in_deps = True
            lines += [f"      - {dep}\n" for dep in expected[stage]]
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
