import pytest

from featviz.errors import InputError
from stages.params.blocks import block_settings
from stages.params.reader import load_params
from tests.conftest import tiny_params, write_params


def settings(tmp_path, **changes):
    params = tiny_params()
    params["building_blocks"].update(changes)
    write_params(tmp_path, params)
    loaded = load_params(tmp_path / "params.yaml")
    return block_settings(loaded, loaded.model("efficientnet_lite0"))


def test_the_pictures_take_the_generate_keys_overridden_here(tmp_path):
    found = settings(tmp_path, steps=7, view_size=96)
    assert found.pictures.steps == 7 and found.pictures.view_size == 96
    assert found.pictures.image_size == 128  # the section's, not generate's 64
    assert found.layers == [] and found.k == 3


@pytest.mark.parametrize("changes, message", [
    ({"k": 0}, "building_blocks.k must be an integer from 1 to 64"),
    ({"layers": {"efficientnet_lite0": "blocks.6"}}, "building_blocks.layers.efficientnet_lite0 "
                                                     "must be a list of layers"),
    ({"layers": {"nope": ["blocks.6"]}}, "building_blocks.layers: unknown model key 'nope'"),
    ({"layers": {"efficientnet_lite0": ["blocks.6", "blocks.5", "blocks.6"]}},
     "building_blocks.layers.efficientnet_lite0 lists layer 'blocks.6' twice"),
    ({"layers": {"efficientnet_lite0": ["../x"]}}, "must be a module name"),
    ({"random_draws": 10**6}, "building_blocks.random_draws must be an integer from 1 to 100"),
    ({"steps": 0}, "building_blocks: steps must be an integer from 1"),
])
def test_bad_settings_name_their_key(tmp_path, changes, message):
    with pytest.raises(InputError, match=message):
        settings(tmp_path, **changes)


def test_a_block_set_must_be_a_class_set_the_grid_makes_images_of(tmp_path):
    params = tiny_params()
    params["grid"]["block_sets"] = ["reference"]
    write_params(tmp_path, params)
    with pytest.raises(InputError, match="grid.block_sets lists reference, which "
                                         "grid.class_sets lacks"):
        _ = load_params(tmp_path / "params.yaml").grid_block_sets
