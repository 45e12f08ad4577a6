import math
import re

import pytest
import yaml

from featviz.errors import InputError
from featviz.parameterizations import Fourier
from stages.check_params import check_every_section
from stages.params.evaluation import evaluation_settings
from stages.params.reader import load_params
from stages.params.recipe import generate_settings
from stages.params.units import unit_settings
from tests.conftest import REPO, tiny_params


def load_params_checked(path):
    """The params file with every section checked, as check-params checks it."""
    params = load_params(path)
    check_every_section(params)
    return params


def test_repository_params_are_valid_and_run_offline():
    params = load_params_checked(REPO / "params.yaml")
    assert params.grid_models == ["efficientnet_lite0", "efficientnet_lite2"]
    assert params.class_set("reference") == [207, 294, 398, 409, 455, 531, 681, 724, 851, 852]
    lite0 = params.model("efficientnet_lite0")
    plain = generate_settings(params, "plain", lite0).optimization
    augmented = generate_settings(params, "augmented", lite0)
    units = unit_settings(params, lite0).optimization
    assert plain.parameterization == Fourier(decay=1.5) and plain.patience == 40
    assert augmented.optimization.patience is None
    assert augmented.optimization.skip_gradient == 0.2 and augmented.optimization.lr == 0.07
    assert units.skip_gradient == 1.0  # units follow their true gradient
    assert (units.parameterization, units.lr) == (Fourier(decay=1.0), None)
    assert augmented.augmentation.rotation == 20
    assert evaluation_settings(params).views == 16


def test_repository_params_write_lists_one_item_per_line():
    for line in (REPO / "params.yaml").read_text().splitlines():
        assert not re.search(r"\[[^\]]", line.split("#")[0]), line


STEPS = "an integer from 1 to 100000"


def write(tmp_path, params):
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params))
    return path


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda p: p["generate"].update(steps=0), f"generate: steps must be {STEPS}"),
        (lambda p: p["generate"].update(stepz=3), "unknown key generate.stepz"),
        (lambda p: p["generate"].update(parameterization="voxels"), "unknown parameterization"),
        (lambda p: p["generate"].update(objective="softmax"), "unknown objective"),
        (lambda p: p["grid"].update(models=["alexnet"]), "grid.models: unknown key 'alexnet'"),
        (lambda p: p["grid"].update(class_sets=["nope"]), "grid.class_sets: unknown key 'nope'"),
        (lambda p: p["class_sets"].update(tiny=[1, "two"]), "no class is labelled 'two'"),
        (lambda p: p["class_sets"].update(tiny=[1, 2.5]), "class_sets.tiny\\[1\\]"),
        (lambda p: p["class_sets"].update(tiny=[]), "class_sets.tiny must be a non-empty list"),
        (lambda p: p["plain"]["augmentation"].update(flip=2), "plain.augmentation: flip"),
        (lambda p: p["augmented"]["augmentation"].update(spin=1), "augmented.augmentation"),
        (lambda p: p["augmented"].update(patience=0),
         "augmented: patience must be an integer from 1 to 100000"),
        (lambda p: p["plain"].update(stepz=3), "unknown key plain.stepz: use augmentation, "),
        (lambda p: p["cross_evaluate"].update(views=0), "cross_evaluate.views"),
        (lambda p: p["cross_evaluate"].update(extra_evaluators=["x"]),
         "cross_evaluate.extra_evaluators: unknown key 'x'"),
        (lambda p: p["models"]["resnet18"].update(weight="random"), "unknown key models.resnet18"),
        (lambda p: p["models"]["resnet18"].update(view_size=8), "models.resnet18.view_size"),
        (lambda p: p["models"]["efficientnet_lite0"].update(weights=""),
         "models.efficientnet_lite0: empty weights for efficientnet_lite0: use null"),
        (lambda p: p.pop("cross_evaluate"), "missing key params.yaml.cross_evaluate"),
        (lambda p: p.update(extra={}), "unknown key params.yaml.extra"),
    ],
)
def test_invalid_params_name_the_key(tmp_path, edit, message):
    params = tiny_params()
    edit(params)
    with pytest.raises(InputError, match=message):
        load_params_checked(write(tmp_path, params))


def test_missing_and_unreadable_params_files(tmp_path):
    with pytest.raises(InputError, match="params file .* not found"):
        load_params_checked(tmp_path / "missing.yaml")
    broken = tmp_path / "broken.yaml"
    broken.write_text("models: [unclosed")
    with pytest.raises(InputError, match="cannot read params file"):
        load_params_checked(broken)


def test_lookups_of_unknown_keys_list_the_known_ones(tmp_path):
    params = load_params(write(tmp_path, tiny_params()))
    with pytest.raises(InputError, match="unknown model key 'x'.*efficientnet_lite0"):
        params.model("x")
    with pytest.raises(InputError, match="unknown class set 'x'.*reference"):
        params.class_set("x")


def test_a_stage_reads_only_the_sections_it_uses(tmp_path):
    raw = tiny_params()
    for section in ("units", "unit_sets", "cross_evaluate", "augmented", "grid"):
        raw.pop(section)
    params = load_params(write(tmp_path, raw))
    settings = generate_settings(params, "plain", params.model("efficientnet_lite0"))
    assert settings.optimization.steps == raw["generate"]["steps"]
    with pytest.raises(InputError, match="missing key params.yaml.cross_evaluate"):
        evaluation_settings(params)


HOSTILE_KEYS = ["../../../../../../victim", "/tmp/victim", "a;touch INJECTED;#", "a';touch X;'",
                "$(touch X)", "with space", "--help", "a-b", "a.b", ".hidden", "", "x" * 65]


@pytest.mark.parametrize("key", HOSTILE_KEYS)
@pytest.mark.parametrize("section", ["models", "class_sets"])
def test_keys_that_become_paths_or_shell_words_must_be_safe(tmp_path, key, section):
    params = tiny_params()
    if section == "models":
        params["models"][key] = {"name": "efficientnet_lite0"}
        params["grid"]["models"] = [key]
    else:
        params["class_sets"][key] = [1]
        params["grid"]["class_sets"] = [key]
    with pytest.raises(InputError, match=f"{section} key .* is not allowed: use letters"):
        load_params_checked(write(tmp_path, params))


@pytest.mark.parametrize(
    "section, key, value, message",
    [
        ("generate", "steps", 2.5, f"generate: steps must be {STEPS}, got 2.5"),
        ("generate", "steps", "ten", f"generate: steps must be {STEPS}, got 'ten'"),
        ("generate", "steps", True, f"generate: steps must be {STEPS}, got True"),
        ("generate", "image_size", 100.5, "generate: image_size must be an integer from 8 to"),
        ("generate", "copies", 1.5, "generate: copies must be an integer from 1 to 1024"),
        ("generate", "seed", "abc", "generate: seed must be an integer"),
        ("generate", "lr", "fast", "generate: lr must be a number"),
        ("generate", "min_delta", [1], "generate: min_delta must be a number"),
        ("generate", "patience", 3.0, "generate: patience must be an integer from 1 to 100000"),
        ("generate", "optimizer", 3, "generate: unknown optimizer 3"),
        ("generate", "l2", "none", "generate: regularizer weight l2 must be a number"),
        ("generate", "skip_gradient", 1.5, "generate: skip_gradient must be at most 1, got 1.5"),
        ("plain", "skip_gradient", 0, "plain: skip_gradient must be positive, got 0"),
        ("units", "skip_gradient", "half", "units: skip_gradient must be a number"),
        ("generate", "fourier_decay", 0, "generate: fourier_decay must be positive, got 0"),
        ("augmented", "fourier_decay", 5, "augmented: fourier_decay must be at most 4.0, got 5"),
        ("augmented", "eval_views", 0, "augmented: eval_views must be an integer from 1 to"),
        ("cross_evaluate", "seed", 1.5, "cross_evaluate.seed must be an integer"),
        ("cross_evaluate", "views", True, "cross_evaluate.views must be an integer"),
        ("generate", "lr", math.inf, "generate: lr must be a finite number, got inf"),
        ("generate", "lr", 1e6, "generate: lr must be at most 10.0"),
        ("generate", "l2", math.inf, "generate: regularizer weight l2 must be a finite number"),
        ("generate", "tv", 1e308, "generate: regularizer weight tv must be at most 1000.0"),
        ("units", "tv", math.nan, "units.tv must be a finite number, got nan"),
        ("generate", "min_delta", math.inf, "generate: min_delta must be a finite number"),
        ("generate", "steps", 10**12, f"generate: steps must be {STEPS}, got 1000000000000"),
        ("augmented", "eval_every", 10**12, "augmented: eval_every must be an integer from 1"),
        ("augmented", "patience", 10**9, "augmented: patience must be an integer from 1 to"),
        ("cross_evaluate", "seed", 2**64, "cross_evaluate.seed must be an integer from 0 to"),
        ("generate", "device", "meta", "generate: unknown device 'meta': use cpu, cuda"),
        ("generate", "device", "mps", "generate: unknown device 'mps'"),
        ("generate", "device", "xpu:0", "generate: unknown device 'xpu:0'"),
    ],
)
def test_every_value_is_type_checked_naming_its_key(tmp_path, section, key, value, message):
    params = tiny_params()
    params[section][key] = value
    with pytest.raises(InputError, match=re.escape(message)):
        load_params_checked(write(tmp_path, params))


@pytest.mark.parametrize(
    "augmentation, message",
    [({"blur_kernel": 3.5}, "plain.augmentation: blur_kernel must be an integer"),
     ({"crop_scale": [0.1]}, "plain.augmentation: crop_scale must be a list of 2 numbers"),
     ({"crop_scale": ["a", 1]}, "plain.augmentation: crop_scale must be a number"),
     ({"rotation": "lots"}, "plain.augmentation: rotation must be a number"),
     ({"color_jitter": [0.1, 0.1, 0.1, "x"]}, "plain.augmentation: color_jitter"),
     ({"noise": -1}, "plain.augmentation: noise must not be negative")],
)
def test_augmentation_values_are_type_checked(tmp_path, augmentation, message):
    params = tiny_params()
    params["plain"]["augmentation"].update(augmentation)
    with pytest.raises(InputError, match=re.escape(message)):
        load_params_checked(write(tmp_path, params))


@pytest.mark.parametrize(
    "edit, message",
    [
        (lambda p: p["generate"].update(image_size=100000),
         "generate: image_size must be an integer from 8 to 1024, got 100000"),
        (lambda p: p["models"]["efficientnet_lite0"].update(view_size=100000),
         "models.efficientnet_lite0.view_size must be an integer from 32 to 1024"),
        (lambda p: p["class_sets"].update(tiny=list(range(1000))) or p["generate"].update(
            copies=4), "1000 classes x 4 copies = 4000 images in one batch, more than 1024"),
        (lambda p: p["class_sets"].update(tiny=list(range(200))) or p["generate"].update(
            image_size=1024), "200 images of 1024 x 1024 pixels in one batch"),
        (lambda p: p["cross_evaluate"].update(views=100000),
         "cross_evaluate.views must be an integer from 1 to 256"),
    ],
)
def test_sizes_are_bounded_before_any_model_loads(tmp_path, edit, message):
    params = tiny_params()
    edit(params)
    with pytest.raises(InputError, match=re.escape(message)):
        load_params_checked(write(tmp_path, params))


@pytest.mark.parametrize(
    "augmentation, message",
    [({"crop_ratio": [math.inf, math.inf]}, "crop_ratio must be a finite number, got inf"),
     ({"crop_ratio": [0.001, 1]}, "crop_ratio must be at least 0.1"),
     ({"noise": math.inf}, "noise must be a finite number, got inf"),
     ({"noise": 5}, "noise must be at most 1.0"),
     ({"blur_kernel": 3, "blur_sigma": [1e-300, 1e-300]}, "blur_sigma must be at least 0.01"),
     ({"blur_kernel": 3, "blur_sigma": [math.inf, math.inf]}, "blur_sigma must be a finite"),
     ({"rotation": math.nan}, "rotation must be a finite number, got nan")],
)
def test_augmentation_values_must_be_finite_and_sane(tmp_path, augmentation, message):
    params = tiny_params()
    params["augmented"]["augmentation"].update(augmentation)
    with pytest.raises(InputError, match=f"augmented.augmentation: {re.escape(message)}"):
        load_params_checked(write(tmp_path, params))


@pytest.mark.parametrize("vector, message", [([math.nan, 1.0], "must be a finite number, got nan"),
                                             ([math.inf, 1.0], "must be a finite number, got inf"),
                                             ([1e308, 1.0], "must be at most 1000000.0")])
def test_a_direction_must_be_finite(tmp_path, vector, message):
    params = tiny_params()
    params["unit_sets"]["lite"] = [{"layer": "blocks.4", "vector": vector}]
    with pytest.raises(InputError, match=f"unit_sets.lite\\[0\\]: .*{re.escape(message)}"):
        load_params_checked(write(tmp_path, params))


def test_class_indices_beyond_imagenet_are_refused_before_any_model_loads(tmp_path):
    params = tiny_params(class_sets={"tiny": [1, 1000]})
    with pytest.raises(InputError, match="class_sets.tiny \\(model efficientnet_lite0\\): class "
                                         "index 1000 is outside 0..999"):
        load_params_checked(write(tmp_path, params))


def test_a_batch_bound_names_the_grid_point(tmp_path):
    params = tiny_params()
    params["class_sets"]["tiny"] = list(range(600))
    params["augmented"]["copies"] = 2
    with pytest.raises(InputError, match="augmented of efficientnet_lite0 on class_sets.tiny: "
                                         "600 classes x 2 copies"):
        load_params_checked(write(tmp_path, params))


def test_an_error_about_a_long_class_list_does_not_print_it(tmp_path):
    params = tiny_params(class_sets={"tiny": [*range(2000), 5]})
    with pytest.raises(InputError, match="class_sets.tiny lists class 5 twice") as error:
        load_params_checked(write(tmp_path, params))
    assert len(str(error.value)) < 200
    params = tiny_params(class_sets={"tiny": [*range(2000), 1.5]})
    with pytest.raises(InputError, match="class_sets.tiny\\[2000\\] \\(a class index or label\\) "
                                         "must be an integer") as error:
        load_params_checked(write(tmp_path, params))


def test_a_labels_file_with_a_byte_order_mark_reads_as_its_labels(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "models").mkdir()
    (tmp_path / "models/labels.txt").write_text("cat\r\ndog\r\n", encoding="utf-8-sig")
    params = tiny_params()
    params["models"]["mine"] = {"name": "export:models/net.pt2", "labels": "models/labels.txt",
                                "input_size": 32, "mean": [0.5] * 3, "std": [0.5] * 3}
    assert load_params(write(tmp_path, params)).model("mine").labels == ["cat", "dog"]
