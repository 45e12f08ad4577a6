import pytest

from featviz.errors import InputError
from stages.params.reader import load_params
from stages.params.recipe import GENERATE_KEYS, generate_settings
from tests.conftest import tiny_params, write_params


def settings(tmp_path, raw, variant="plain", model="efficientnet_lite0"):
    write_params(tmp_path, raw)
    params = load_params(tmp_path / "params.yaml")
    return generate_settings(params, variant, params.model(model))


def test_a_variant_section_overrides_generate_keys_for_that_variant_only(tmp_path):
    raw = tiny_params()
    raw["augmented"].update(steps=7, objective="log_softmax")
    augmented = settings(tmp_path, raw, "augmented")
    plain = settings(tmp_path, raw, "plain")
    assert augmented.optimization.steps == 7
    assert augmented.objective.name == "class_log_softmax"
    assert plain.optimization.steps == raw["generate"]["steps"]
    assert plain.objective.name == "class_logit"


def test_a_parameterizations_options_apply_when_it_is_chosen(tmp_path):
    raw = tiny_params()
    raw["generate"].update(parameterization="maco", maco_contrast=3.0, fourier_decay=2.0)
    config = settings(tmp_path, raw).optimization
    assert str(config.parameterization) == "maco(alpha=1, contrast=3)"
    assert {"fourier_decay", "maco_alpha", "maco_contrast"} <= set(GENERATE_KEYS)


def test_the_settings_take_the_models_view_size(tmp_path):
    raw = tiny_params()
    raw["models"]["efficientnet_lite0"]["view_size"] = 96
    assert settings(tmp_path, raw).optimization.view_size == 96


def test_an_error_in_the_shared_section_names_it(tmp_path):
    raw = tiny_params()
    raw["generate"]["lr"] = -1
    raw["plain"]["steps"] = 5
    with pytest.raises(InputError, match="^generate: lr must be positive"):
        settings(tmp_path, raw)
