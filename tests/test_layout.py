"""The layout the design card asks for, and dvc.yaml deps that follow the code: a stage's code
deps in dvc.yaml are exactly the modules its command imports (tools/dvc_deps.py writes them)."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO
from tools.dvc_deps import import_closure, imported_modules, module_files


def test_every_stage_depends_on_exactly_the_modules_its_command_imports():
    """tools/dvc_deps.py writes them; run it after an import changes."""
    done = subprocess.run([sys.executable, "tools/dvc_deps.py", "--check"], cwd=REPO,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_deps_tool_finds_a_missing_and_an_extra_dep(tmp_path, monkeypatch):
    import tools.dvc_deps as tool

    text = tool.DVC_YAML.read_text()
    broken = text.replace("      - featviz/errors.py\n", "      - stages/commands/render.py\n", 1)
    monkeypatch.setattr(tool, "DVC_YAML", tmp_path / "dvc.yaml")
    tool.DVC_YAML.write_text(broken)
    problems = tool.differences()
    assert any("missing ['featviz/errors.py']" in line for line in problems), problems
    assert any("not imported ['stages/commands/render.py']" in line for line in problems), problems
    tool.rewrite()
    assert tool.DVC_YAML.read_text() == text and not tool.differences()


def test_no_library_module_imports_the_stages():
    """The library knows nothing of the pipeline; only the command line (cli.py) calls it."""
    library = [p for p in sorted((REPO / "featviz").rglob("*.py")) if p.name != "cli.py"]
    assert len(library) > 5
    for path in library:
        stage_imports = [m for m in imported_modules(path) if m.split(".")[0] == "stages"]
        assert not stage_imports, f"{path.name} imports {stage_imports}"


def test_stages_live_in_a_top_level_package_mirrored_by_the_tests():
    """stages/<group>/<module>.py is tested in tests/stages/<group>/test_<module>.py."""
    assert not (REPO / "featviz" / "stages").exists()
    modules = {p.relative_to(REPO / "stages").with_suffix("")
               for p in (REPO / "stages").rglob("*.py") if p.name != "__init__.py"}
    tests = {p.relative_to(REPO / "tests" / "stages").with_name(
                 p.stem.removeprefix("test_"))
             for p in (REPO / "tests" / "stages").rglob("test_*.py")}
    untested = {Path("common/progress"), Path("common/tables")}
    assert modules - untested <= tests, modules - untested - tests


def test_evaluation_and_the_report_import_only_what_they_share():
    """The scorer needs no part of the engine, and the report none of the scorer."""
    assert REPO / "featviz/optimize.py" not in import_closure("featviz.evaluate")
    assert REPO / "stages/cross_evaluate.py" not in import_closure("stages.report")


@pytest.mark.stage  # a subprocess or a full-size network: seconds
def test_a_wheel_installs_the_stages_where_their_files_lie(tmp_path):
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                    "-q", "-w", str(tmp_path), str(REPO)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("featviz-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for module in (REPO / "stages").rglob("*.py"):
        assert str(module.relative_to(REPO)) in names
    assert "featviz/cli.py" in names and "featviz/models/class_names_data/imagenet.txt" in names
    assert "stages/report_templates/index.html" in names


def import_graph(folders: tuple[str, ...] = ("featviz", "stages")) -> dict[Path, set[Path]]:
    """Each source file -> the featviz and stages source files it imports (anywhere in it)."""
    graph = {}
    for folder in folders:
        for path in (REPO / folder).rglob("*.py"):
            graph[path] = {files[-1] for module in imported_modules(path)
                           if (files := module_files(module))} - {path}
    return graph


def cycles(graph: dict[Path, set[Path]]) -> list[set[Path]]:
    """The strongly connected groups of more than one file (Tarjan's algorithm)."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(node: Path) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for successor in graph.get(node, ()):
            if successor not in index:
                visit(successor)
                low[node] = min(low[node], low[successor])
            elif successor in on_stack:
                low[node] = min(low[node], index[successor])
        if low[node] == index[node]:
            group, member = set(), None
            while member != node:
                member = stack.pop()
                on_stack.discard(member)
                group.add(member)
            if len(group) > 1:
                groups.append(group)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return groups


def test_no_modules_import_each_other():
    graph = import_graph()
    assert len(graph) > 60
    assert cycles(graph) == []
    assert cycles({Path("a"): {Path("b")}, Path("b"): {Path("a")}}) == [{Path("a"), Path("b")}]
