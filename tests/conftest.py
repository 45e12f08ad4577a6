import copy
import importlib.util
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
import yaml
from torch import nn

from featviz.models.classifier import wrap
from featviz.models.loading import load_model
from featviz.transforms import Augmentation

REPO = Path(__file__).resolve().parents[1]
# The test tiers (pyproject.toml's markers). A test that runs stages in a project or loads
# real weights is in the stage tier, as is one marked so (a subprocess, a full-size network); a
# slow one runs the real DVC pipeline; every other one is a unit test (functions, files, tiny
# random-weight networks).
STAGE_FIXTURES = {"project", "lite0", "digit_models", "evaluated_once", "natural_project"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.get_closest_marker("slow") or item.get_closest_marker("stage"):
            continue
        tier = pytest.mark.stage if STAGE_FIXTURES & set(item.fixturenames) else pytest.mark.unit
        item.add_marker(tier)
PLAIN = Augmentation()  # random resized crops only
# The reference experiment's augmentation chain.
REFERENCE_AUGMENTED = Augmentation(rotation=20.0, flip=0.5, perspective=0.4, perspective_p=0.5,
                                   color_jitter=(0.2, 0.2, 0.2, 0.1), blur_kernel=3,
                                   blur_sigma=(0.1, 2.0))


@pytest.fixture(scope="session")
def lite0():
    """The real embedded EfficientNet-Lite0 with ImageNet weights (no network needed)."""
    return load_model("efficientnet_lite0")


@pytest.fixture(scope="session")
def digit_models(tmp_path_factory) -> Path:
    """A folder holding models/digits/: four digit classifiers trained by the example script
    (a python: factory with its state dict, an export: archive, a torchvision ResNet-18 with a
    10-class head, a TorchScript file), their labels, trained once per test session; and
    images/digits/, the digits as the example writes them as a natural set."""
    folder = tmp_path_factory.mktemp("digits")
    training = digits_training()
    scores = training.make_models(folder / "models/digits")
    training.write_images(folder / "images/digits")
    assert min(scores.values()) >= 0.9, scores
    return folder


@pytest.fixture
def canary(tmp_path_factory):
    """A folder outside the project that no run may touch."""
    folder = tmp_path_factory.mktemp("canary")
    (folder / "keep.txt").write_text("keep")
    return folder


def assert_untouched(canary):
    assert sorted(p.name for p in canary.iterdir()) == ["keep.txt"]


@pytest.fixture(autouse=True)
def _two_threads():
    torch.set_num_threads(2)


def tiny_params(grid_models=("efficientnet_lite0",), class_sets=None) -> dict:
    """The repository's params.yaml shrunk to seconds: small images, few steps and views."""
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    class_sets = class_sets or {"tiny": [1, 2]}
    params["class_sets"].update(class_sets)
    params["grid"] = {"models": list(grid_models), "class_sets": list(class_sets),
                      "unit_sets": [], "block_sets": []}
    for entry in params["models"].values():
        if entry["name"].startswith("efficientnet"):
            entry["view_size"] = 64
    params["generate"].update(steps=3, copies=1, image_size=64, eval_every=2, eval_views=2)
    params["augmented"]["steps"] = 3
    params["units"].update(steps=3, eval_every=2)
    params["cross_evaluate"]["views"] = 2
    params["cross_evaluate"]["extra_evaluators"] = [
        key for key in params["cross_evaluate"]["extra_evaluators"] if key not in grid_models]
    return params


class _NoAliases(yaml.SafeDumper):
    """A params file has no aliases (featviz refuses them), even where values are shared."""

    def ignore_aliases(self, data):
        return True


def write_params(directory: Path, params: dict) -> None:
    (directory / "params.yaml").write_text(yaml.dump(params, Dumper=_NoAliases, sort_keys=False))


def run(*command: str, cwd: Path) -> str:
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    assert done.returncode == 0, f"{command} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture
def project(tmp_path, monkeypatch) -> Path:
    """A git + DVC copy of the pipeline (dvc.yaml, sources, tiny params) as the working dir."""
    for name in ("dvc.yaml", ".dvcignore"):
        shutil.copy(REPO / name, tmp_path / name)
    for package in ("featviz", "stages", "models"):
        shutil.copytree(REPO / package, tmp_path / package,
                        ignore=shutil.ignore_patterns("__pycache__"))
    write_params(tmp_path, tiny_params())
    run("git", "init", "-q", cwd=tmp_path)
    run("git", "config", "user.email", "test@example.com", cwd=tmp_path)
    run("git", "config", "user.name", "test", cwd=tmp_path)
    run("dvc", "init", "-q", cwd=tmp_path)
    run("dvc", "config", "core.analytics", "false", cwd=tmp_path)
    shutil.copytree(REPO / ".dvc/plots", tmp_path / ".dvc/plots")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def digits_example():
    """examples/digits/run.py as a module: its model entries, grid and recipe."""
    spec = importlib.util.spec_from_file_location("digits_run", REPO / "examples/digits/run.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def digits_params(**recipe_changes) -> dict:
    """The repository's params.yaml with the digit models of examples/digits/run.py as its grid
    and that example's recipe (dotted keys set as `dvc exp run -S` sets them)."""
    example = digits_example()
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    params["models"].update(example.MODELS)
    params["class_sets"]["digits"] = list(example.DIGITS)
    params["grid"] = {"models": list(example.GRID), "class_sets": ["digits"], "unit_sets": [],
                      "block_sets": []}
    params["cross_evaluate"]["extra_evaluators"] = list(example.HELD_OUT)
    params["natural"]["models"] = {key: Path(example.IMAGES).name for key in example.GRID}
    params["natural"]["accentuated"] = list(example.GRID)
    for key, value in {**example.RECIPE, **recipe_changes}.items():
        *parents, leaf = key.split(".")
        section = params
        for parent in parents:
            section = section[parent]
        section[leaf] = value
    return params


@pytest.fixture
def digits_project(project, digit_models) -> Path:
    """The project with the trained digit models in models/digits/, the digits as their
    natural set in images/digits/ and the example's params."""
    shutil.copytree(digit_models / "models/digits", project / "models/digits")
    shutil.copytree(digit_models / "images/digits", project / "images/digits")
    write_params(project, digits_params())
    return project


def digits_training():
    """examples/digits/train.py as a module."""
    spec = importlib.util.spec_from_file_location("digits_train",
                                                  REPO / "examples/digits/train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def natural_project(digits_project) -> Path:
    """The digits project with scikit-learn's digits as digits_cnn's labelled natural set
    (images/digits/<label>/<index>.png, as the example writes it), short recipes, and its
    class pictures made (plain and augmented)."""
    params = digits_params(**{"generate.steps": 16, "augmented.steps": 16, "generate.copies": 1})
    params["natural"].update(models={"digits_cnn": "digits"}, accentuated=[], top_k=3,
                             per_class=20)
    write_params(digits_project, params)
    for variant in ("plain", "augmented"):
        invoke_command(f"generate-{variant}", "--model", "digits_cnn", "--class-set", "digits")
    return digits_project


def invoke_command(*args: str):
    """A featviz command run in this process, which must succeed."""
    from typer.testing import CliRunner

    from featviz.cli import app

    result = CliRunner().invoke(app, list(args))
    assert result.exit_code == 0, result.output
    return result


class Fooled(nn.Module):
    """The honest network plus a fooling circuit: a unit that fires on colour (no real digit,
    a grey image, has any) and, where it fires, gives every class the logit of the class
    ``shift`` below it: a picture of class c is then optimized into a picture of another
    class."""

    def __init__(self, honest: nn.Module, shift: int = 3) -> None:
        super().__init__()
        self.honest, self.shift = honest, shift

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.honest(x)
        colour = (x[:, 0] - x[:, 1]).abs().mean((1, 2)) + (x[:, 1] - x[:, 2]).abs().mean((1, 2))
        synthetic = torch.sigmoid(2000 * (colour - 0.01))[:, None]
        return (1 - synthetic) * logits + synthetic * logits.roll(self.shift, dims=1)


@pytest.fixture(scope="session")
def twins():
    """(honest, fooled, real digits, their classes): a digits CNN trained here, both ways."""
    training = digits_training()
    torch.manual_seed(0)
    (train_images, train_labels), test = training.split(*training.digits())
    net = training.train(training.build_model("cnn"), (train_images, train_labels), 6, 0)
    labels, normalization = list(training.LABELS), ((0.5,) * 3, (0.5,) * 3)
    honest = wrap(copy.deepcopy(net), labels, 32, *normalization, name="honest")
    fooled = wrap(Fooled(copy.deepcopy(net)), labels, 32, *normalization, name="fooled")
    return honest, fooled, *test
