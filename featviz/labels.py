"""Classes named by their labels: a model's labels are its class names in index order, and a
class is given by its index or by its label."""

from __future__ import annotations

import difflib
from collections.abc import Sequence

from featviz.errors import InputError
from featviz.validation import quoted

NEAREST = 3


def resolve_classes(items: Sequence[int | str], labels: Sequence[str]) -> list[int]:
    """Class indices for ``items`` (indices, or labels that name exactly one class)."""
    indices = []
    for item in items:
        if isinstance(item, str):
            indices.append(class_of_label(item, labels))
        elif isinstance(item, bool) or not isinstance(item, int):
            raise InputError(f"class {quoted(item)} is neither a label nor a class index")
        elif not 0 <= item < len(labels):
            raise InputError(f"class index {item} is outside 0..{len(labels) - 1}")
        else:
            indices.append(item)
    return indices


def class_of_label(label: str, labels: Sequence[str]) -> int:
    matches = [index for index, name in enumerate(labels) if name == label]
    if len(matches) == 1:
        return matches[0]
    if matches:
        named = ", ".join(f"{index} ({labels[index]})" for index in matches)
        raise InputError(f"label {quoted(label)} names {len(matches)} classes: {named}; give "
                         "the index")
    nearest = difflib.get_close_matches(label, labels, n=NEAREST, cutoff=0.5)
    hint = f"; nearest: {', '.join(quoted(name) for name in nearest)}" if nearest else ""
    raise InputError(f"no class is labelled {quoted(label)}{hint}")


def search_labels(query: str, labels: Sequence[str],
                  synonyms: Sequence[str] | None = None) -> list[tuple[int, str]]:
    """(index, label) of every label that contains ``query``, case-insensitive, or whose
    ``synonyms`` (one text per label) do; a label found by its synonyms comes with them."""
    query = query.lower()
    found = []
    for index, name in enumerate(labels):
        if query in name.lower():
            found.append((index, name))
        elif synonyms is not None and query in synonyms[index].lower():
            found.append((index, f"{name} ({synonyms[index]})"))
    return found
