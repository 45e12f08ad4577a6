import pytest

from featviz.errors import InputError
from stages.params.reader import load_params
from stages.params.variants import VARIANTS, variant_augmentation
from tests.conftest import tiny_params, write_params


def test_each_variant_reads_its_own_augmentation(tmp_path):
    write_params(tmp_path, tiny_params())
    params = load_params(tmp_path / "params.yaml")
    plain, augmented = (variant_augmentation(params, variant) for variant in VARIANTS)
    assert plain.rotation == 0 and augmented.rotation == 20


def test_a_variant_without_augmentation_names_the_key(tmp_path):
    raw = tiny_params()
    raw["plain"].pop("augmentation")
    write_params(tmp_path, raw)
    with pytest.raises(InputError, match="plain.augmentation must be a non-empty mapping"):
        variant_augmentation(load_params(tmp_path / "params.yaml"), "plain")
