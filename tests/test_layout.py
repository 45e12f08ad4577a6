"""The layout the design card asks for, and dvc.yaml deps that follow the code: a stage's code
deps in dvc.yaml are exactly the modules its command imports (tools/dvc_deps.py writes them)."""

import subprocess
import sys
import zipfile

from tests.conftest import REPO
from tools.dvc_deps import featviz_closure, imported_modules


def test_every_stage_depends_on_exactly_the_modules_its_command_imports():
    """tools/dvc_deps.py writes them; run it after an import changes."""
    done = subprocess.run([sys.executable, "tools/dvc_deps.py", "--check"], cwd=REPO,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_the_deps_tool_finds_a_missing_and_an_extra_dep(tmp_path, monkeypatch):
    import tools.dvc_deps as tool

    text = tool.DVC_YAML.read_text()
    broken = text.replace("      - featviz/errors.py\n", "", 1).replace(
        "      - stages/model_files.py\n", "      - stages/model_files.py\n"
        "      - stages/render.py\n", 1)
    monkeypatch.setattr(tool, "DVC_YAML", tmp_path / "dvc.yaml")
    tool.DVC_YAML.write_text(broken)
    problems = tool.differences()
    assert any("missing ['featviz/errors.py']" in line for line in problems), problems
    assert any("not imported ['stages/render.py']" in line for line in problems), problems
    tool.rewrite()
    assert tool.DVC_YAML.read_text() == text and not tool.differences()


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
