import pytest

from featviz.optimize import OptimizationConfig
from featviz.recipes import RECIPES
from stages.params.reader import load_params
from stages.params.recipe import generate_settings
from stages.params.units import unit_settings
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


def test_the_library_defaults_are_the_plain_recipe_and_the_generate_section():
    """params.yaml's generate section spells out the library's defaults: the same settings
    with every one of its keys left out."""
    assert OptimizationConfig() == RECIPES["plain"].config
    params = load_params(REPO / "params.yaml")
    model = params.model("efficientnet_lite0")
    written = generate_settings(params, "plain", model)
    params.source.raw["generate"] = {}
    left_out = generate_settings(params, "plain", model)
    assert left_out.optimization == written.optimization
    assert left_out.objective.name == written.objective.name
