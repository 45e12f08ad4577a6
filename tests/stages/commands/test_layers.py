from typer.testing import CliRunner

from featviz.cli import app

runner = CliRunner()


def test_layers_lists_only_those_a_query_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    everything = runner.invoke(app, ["layers", "resnet18"])
    some = runner.invoke(app, ["layers", "resnet18", "layer4.1"])
    assert everything.exit_code == 0 and some.exit_code == 0, some.output
    rows = [line for line in some.output.splitlines() if line.startswith("│")]
    assert rows and all("layer4.1" in row for row in rows)
    assert "layer1.0.conv1" in everything.output and "layer1.0.conv1" not in some.output
    conv = runner.invoke(app, ["layers", "resnet18", "conv"])
    assert len(conv.output.splitlines()) > len(some.output.splitlines())
    none = runner.invoke(app, ["layers", "resnet18", "tokens"])
    assert none.exit_code == 2 and "no layer of resnet18 is named with 'tokens'" in none.output
