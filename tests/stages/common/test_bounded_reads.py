import json

import pytest

from featviz.errors import InputError
from stages.common.bounded_reads import MAX_JSON_DEPTH, read_bounded, read_json


def test_a_regular_file_within_the_bound_is_read_whole(tmp_path):
    path = tmp_path / "a.txt"
    path.write_bytes(b"x" * 100)
    assert read_bounded(path, 100, "text file") == b"x" * 100
    with pytest.raises(InputError, match="text file .*a.txt has 100 bytes, more than the 99"):
        read_bounded(path, 99, "text file")


def test_a_missing_file_says_what_writes_it(tmp_path):
    with pytest.raises(InputError, match="metrics file .*m.json not found: run the x stage first"):
        read_json(tmp_path / "m.json", "the x stage")


@pytest.mark.parametrize("depth", [MAX_JSON_DEPTH + 1, 100_000])
def test_json_nested_too_deep_is_an_input_error(tmp_path, depth):
    path = tmp_path / "m.json"
    path.write_text('{"a": ' + "[" * depth + "]" * depth + "}")
    with pytest.raises(InputError, match="nested .*deep.*; run the x stage again"):
        read_json(path, "the x stage")


def test_json_that_is_no_object_is_an_input_error(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(json.dumps([1, 2]))
    with pytest.raises(InputError, match="must hold a JSON object; run the x stage again"):
        read_json(path, "the x stage")
