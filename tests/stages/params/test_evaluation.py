import pytest

from featviz.errors import InputError
from stages.params.evaluation import evaluation_settings, evaluators
from stages.params.reader import load_params
from tests.conftest import tiny_params, write_params


def load(tmp_path, raw):
    write_params(tmp_path, raw)
    return load_params(tmp_path / "params.yaml")


def test_the_grid_models_score_first_then_the_extra_evaluators(tmp_path):
    raw = tiny_params(grid_models=("efficientnet_lite0", "efficientnet_lite2"))
    raw["cross_evaluate"]["extra_evaluators"] = ["efficientnet_lite1"]
    params = load(tmp_path, raw)
    assert evaluators(params) == ["efficientnet_lite0", "efficientnet_lite2", "efficientnet_lite1"]
    settings = evaluation_settings(params)
    assert (settings.views, settings.seed) == (2, 0)
    raw["cross_evaluate"]["extra_evaluators"] = ["efficientnet_lite2"]
    with pytest.raises(InputError, match="lists efficientnet_lite2, a grid model: held-out"):
        evaluation_settings(load(tmp_path, raw))


@pytest.mark.parametrize("edit, message", [
    (lambda c: c.update(views=0), "cross_evaluate.views must be an integer from 1 to 256"),
    (lambda c: c.update(extra_evaluators=["nope"]), "extra_evaluators: unknown key 'nope'"),
    (lambda c: c.pop("seed"), "missing key cross_evaluate.seed"),
    (lambda c: c.update(view=3), "unknown key cross_evaluate.view: use views, seed"),
])
def test_bad_settings_name_their_key(tmp_path, edit, message):
    raw = tiny_params()
    edit(raw["cross_evaluate"])
    with pytest.raises(InputError, match=message):
        evaluation_settings(load(tmp_path, raw))
