import json

from typer.testing import CliRunner

from featviz.cli import app
from tests.conftest import tiny_params, write_params

runner = CliRunner()


def fingerprint(project, model):
    result = runner.invoke(app, ["model-files", "--model", model])
    assert result.exit_code == 0, result.output
    return json.loads((project / f"data/model_files/{model}.json").read_text())


def test_a_models_files_are_fingerprinted_and_missing_ones_said(project):
    (project / "models").mkdir(exist_ok=True)
    (project / "models/labels.txt").write_text("cat\ndog\n")
    (project / "models/net.py").write_text("def build(): ...\n")
    (project / "models/layers.py").write_text("# imported by net.py\n")
    params = tiny_params()
    params["models"]["mine"] = {"name": "python:models/net.py:build", "input_size": 32,
                                "mean": [0.5] * 3, "std": [0.5] * 3,
                                "labels": "models/labels.txt", "weights": "models/mine.pt"}
    write_params(project, params)
    first = fingerprint(project, "mine")
    assert set(first["files"]) == {"models/net.py", "models/layers.py", "models/labels.txt",
                                   "models/mine.pt"}
    assert first["files"]["models/mine.pt"] == "missing"
    (project / "models/layers.py").write_text("# changed\n")
    second = fingerprint(project, "mine")
    changed = {path for path in first["files"] if first["files"][path] != second["files"][path]}
    assert changed == {"models/layers.py"}
    assert fingerprint(project, "efficientnet_lite0") == {"name": "efficientnet_lite0",
                                                          "files": {}}
