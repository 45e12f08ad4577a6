import pytest

from featviz.errors import InputError
from featviz.stages.keys import check_keys, read_params_file, safe_key


@pytest.mark.parametrize("key", ["efficientnet_lite0", "reference", "R2", "a_b_c"])
def test_plain_keys_pass(key):
    assert safe_key(key, "models") == key


@pytest.mark.parametrize("key", ["a-b", "a.b", "../x", "/x", "a b", "a'b", "$(x)", "-x", "_x",
                                 "", 3, None])
def test_other_keys_are_refused_naming_the_section(key):
    with pytest.raises(InputError, match="class_sets key .* is not allowed"):
        safe_key(key, "class_sets")


def test_keys_the_grid_names_are_checked_even_when_no_section_defines_them():
    raw = {"models": {"m": {}}, "class_sets": {"s": [1]},
           "grid": {"models": ["m", "x;rm -rf"], "class_sets": ["s"]}}
    with pytest.raises(InputError, match="grid.models key 'x;rm -rf' is not allowed"):
        check_keys(raw)


def test_a_params_file_must_be_a_yaml_mapping(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("- a list\n")
    with pytest.raises(InputError, match="must hold a mapping"):
        read_params_file(path)
    path.write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(InputError, match="cannot read params file"):
        read_params_file(path)
