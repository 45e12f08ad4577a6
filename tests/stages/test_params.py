import re

import pytest
import yaml

from featviz.errors import InputError
from featviz.stages.params import load_params
from tests.conftest import REPO, tiny_params


def test_repository_params_are_valid_and_run_offline():
    params = load_params(REPO / "params.yaml")
    assert params.grid_models == ["efficientnet_lite0", "efficientnet_lite2"]
    assert params.class_sets["reference"] == [207, 294, 398, 409, 455, 531, 681, 724, 851, 852]
    assert params.optimizations["plain"].parameterization == "fourier"
    assert params.optimizations["plain"].patience == 40
    assert params.optimizations["augmented"].patience is None
    assert params.augmentations["augmented"].rotation == 20
    assert params.eval_views == 16


def test_repository_params_write_lists_one_item_per_line():
    for line in (REPO / "params.yaml").read_text().splitlines():
        assert not re.search(r"\[[^\]]", line.split("#")[0]), line


def write(tmp_path, params):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda p: p["generate"].update(steps=0), "generate: steps must be a positive integer"),
        (lambda p: p["generate"].update(stepz=3), "unknown key generate.stepz"),
        (lambda p: p["generate"].update(parameterization="voxels"), "unknown parameterization"),
        (lambda p: p["generate"].update(objective="softmax"), "unknown objective"),
        (lambda p: p["grid"].update(models=["alexnet"]), "grid.models: unknown key 'alexnet'"),
        (lambda p: p["grid"].update(class_sets=["nope"]), "grid.class_sets: unknown key 'nope'"),
        (lambda p: p["class_sets"].update(tiny=[1, "two"]), "class_sets.tiny\\[1\\]"),
        (lambda p: p["class_sets"].update(tiny=[]), "class_sets.tiny must be a non-empty list"),
        (lambda p: p["plain"]["augmentation"].update(flip=2), "plain.augmentation: flip"),
        (lambda p: p["augmented"]["augmentation"].update(spin=1), "augmented.augmentation"),
        (lambda p: p["augmented"].update(patience=0),
         "augmented: patience must be a positive integer"),
        (lambda p: p["plain"].update(stepz=3), "unknown key plain.stepz: use augmentation, "),
        (lambda p: p["cross_evaluate"].update(views=0), "cross_evaluate.views"),
        (lambda p: p["cross_evaluate"].update(extra_evaluators=["x"]),
         "cross_evaluate.extra_evaluators: unknown key 'x'"),
        (lambda p: p["models"]["resnet18"].update(weight="random"), "unknown key models.resnet18"),
        (lambda p: p["models"]["resnet18"].update(view_size=8), "models.resnet18.view_size"),
        (lambda p: p.pop("cross_evaluate"), "missing key params.yaml.cross_evaluate"),
        (lambda p: p.update(extra={}), "unknown key params.yaml.extra"),
    ],
)
def test_invalid_params_name_the_key(tmp_path, edit, message):
    params = tiny_params()
    edit(params)
    with pytest.raises(InputError, match=message):
        load_params(write(tmp_path, params))


def test_missing_and_unreadable_params_files(tmp_path):
    with pytest.raises(InputError, match="params file not found"):
        load_params(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("models: [unclosed")
    with pytest.raises(InputError, match="cannot read params file"):
        load_params(broken)


def test_lookups_of_unknown_keys_list_the_known_ones(tmp_path):
    params = load_params(write(tmp_path, tiny_params()))
    with pytest.raises(InputError, match="unknown model key 'x'.*efficientnet_lite0"):
        params.model("x")
    with pytest.raises(InputError, match="unknown class set 'x'.*reference"):
        params.class_set("x")


def test_a_variant_section_overrides_generate_keys_for_that_variant_only(tmp_path):
    raw = tiny_params()
    raw["augmented"].update(steps=7, objective="log_softmax")
    params = load_params(write(tmp_path, raw))
    assert params.optimizations["augmented"].steps == 7
    assert params.objectives["augmented"].name == "class_log_softmax"
    assert params.optimizations["plain"].steps == raw["generate"]["steps"]
    assert params.objectives["plain"].name == "class_logit"
