"""featviz's public names, importable from the package without importing PyTorch first."""

import dataclasses
import subprocess
import sys

import pytest

import featviz


@pytest.mark.parametrize("name", featviz.__all__)
def test_every_public_name_is_the_object_its_module_defines(name):
    module = __import__(featviz._PUBLIC[name], fromlist=[name])
    assert getattr(featviz, name) is getattr(module, name)


def test_importing_the_package_and_parsing_model_names_imports_no_torch():
    code = ("import sys, featviz; "
            "from featviz.models.registry import check_options, parse_model_name; "
            "names = ['efficientnet_lite0', 'python:models/net.py:build', 'export:models/a.pt2', "
            "'torchscript:models/a.pt']; "
            "[check_options(parse_model_name(n), {'labels', 'input_size', 'mean', 'std'}, None) "
            "for n in names]; print('torch' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "False"


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        _ = featviz.nope


def test_the_library_docs_example_runs_from_the_package(tmp_path):
    from featviz import AUGMENTED, load_model, save_png
    from featviz.optimize import optimize

    config = dataclasses.replace(AUGMENTED.config, steps=2, image_size=64)
    result = optimize(load_model("efficientnet_lite0"), [207], AUGMENTED.objective,
                      AUGMENTED.augmentation, config)
    assert save_png(result.images[0], tmp_path / "x.png").stat().st_size > 0
