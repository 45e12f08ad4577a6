import pytest

from featviz.errors import InputError
from stages.params.natural import natural_settings
from stages.params.reader import load_params
from tests.conftest import tiny_params, write_params


def settings(tmp_path, **changes):
    params = tiny_params()
    params["natural"].update(changes)
    write_params(tmp_path, params)
    return natural_settings(load_params(tmp_path / "params.yaml"))


def test_off_by_default_and_a_grid_model_sees_the_folder_named(tmp_path):
    assert settings(tmp_path).sets == {}
    found = settings(tmp_path, models={"efficientnet_lite0": "my-photos.v2"}, top_k=4)
    assert found.sets == {"efficientnet_lite0": "my-photos.v2"} and found.top_k == 4
    assert found.accentuated == [] and found.accentuation.steps == 96


@pytest.mark.parametrize("changes, message", [
    ({"models": {"efficientnet_lite1": "photos"}},
     "natural.models: 'efficientnet_lite1' is not a grid model: use one of efficientnet_lite0"),
    ({"models": {"efficientnet_lite0": "../models"}},
     "natural.models.efficientnet_lite0 must name a folder of images/"),
    ({"models": {"efficientnet_lite0": ".hidden"}}, "not starting with '.'"),
    ({"models": {"efficientnet_lite0": "a/b"}}, "must name a folder of images/"),
    ({"models": ["efficientnet_lite0"]}, "natural.models must map grid model keys"),
    ({"top_k": 0}, "natural.top_k must be an integer from 1 to 1000"),
    ({"per_class": 1}, "natural.per_class must be an integer from 2"),
    ({"depth_layers": -1}, "natural.depth_layers must be an integer from 0"),
    ({"extra": 1}, "unknown key natural.extra: use models, top_k, per_class, depth_layers"),
    ({"accentuated": ["efficientnet_lite0"]},
     "natural.accentuated: 'efficientnet_lite0' has no set of real images in natural.models"),
    ({"models": {"efficientnet_lite0": "p"}, "accentuated": ["efficientnet_lite0"] * 2},
     "natural.accentuated lists 'efficientnet_lite0' twice"),
    ({"accentuation_steps": 0}, "natural: accentuation_steps must be an integer from 1"),
    ({"accentuation_weight": -1}, "natural: accentuation_weight must not be negative"),
])
def test_bad_settings_name_their_key(tmp_path, changes, message):
    with pytest.raises(InputError, match=message):
        settings(tmp_path, **changes)
