import os
from pathlib import Path

import pytest

from featviz.errors import InputError
from stages.params.yaml_file import check_keys, read_params_file, safe_key


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


def billion_laughs(levels: int) -> str:
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, levels):
        previous, name = chr(ord("a") + level - 1), chr(ord("a") + level)
        lines.append(f"{name}: &{name} [" + ",".join([f"*{previous}"] * 9) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("levels", [2, 6, 9])
def test_aliases_are_refused_before_they_expand(tmp_path, levels):
    path = tmp_path / "params.yaml"
    path.write_text(billion_laughs(levels))
    with pytest.raises(InputError, match="line 2: aliases .* are not allowed") as error:
        read_params_file(path)
    assert len(str(error.value)) < 400


def test_a_key_twice_in_one_mapping_is_refused(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("generate:\n  steps: 3\n  steps: 4\n")
    with pytest.raises(InputError, match="line 3: key 'steps' appears twice"):
        read_params_file(path)


def test_a_huge_params_file_is_refused_unread(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("class_sets:\n" + "".join(f"  s{i}: [1]\n" for i in range(200_000)))
    with pytest.raises(InputError, match="has 2,.* bytes, more than the 1,048,576"):
        read_params_file(path)


def test_files_that_are_no_regular_files_are_refused(tmp_path):
    fifo = tmp_path / "fifo.yaml"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer forever
    for path in (Path("/dev/zero"), fifo, tmp_path):
        with pytest.raises(InputError, match="is not a regular file"):
            read_params_file(path)


def test_an_error_quotes_a_long_key_in_part(tmp_path):
    with pytest.raises(InputError) as error:
        safe_key("x" * 100_000, "models")
    assert len(str(error.value)) < 400 and "xxx..." in str(error.value)
