import pytest

from featviz.recipes import RECIPES
from featviz.stages.generate_params import generate_settings
from featviz.stages.params import load_params
from featviz.stages.unit_params import unit_settings
from tests.conftest import REPO


@pytest.mark.parametrize("variant", ["plain", "augmented"])
def test_the_class_presets_are_what_the_default_params_make(variant):
    params = load_params(REPO / "params.yaml")
    settings = generate_settings(params, variant, params.model("efficientnet_lite0"))
    assert RECIPES[variant].config == settings.optimization
    assert RECIPES[variant].augmentation == settings.augmentation
    assert RECIPES[variant].objective.name == settings.objective.name


def test_the_units_preset_is_what_the_default_params_make():
    params = load_params(REPO / "params.yaml")
    settings = unit_settings(params, params.model("efficientnet_lite0"))
    assert RECIPES["units"].config == settings.optimization
    assert RECIPES["units"].augmentation == settings.augmentation
