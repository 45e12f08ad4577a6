from featviz.labels import search_labels
from featviz.models.class_names import IMAGENET_CLASSES, IMAGENET_SYNONYMS


def test_imagenets_synonyms_name_each_class_in_index_order():
    assert len(IMAGENET_SYNONYMS) == len(IMAGENET_CLASSES) == 1000
    assert IMAGENET_SYNONYMS[724] == "pirate, pirate ship"
    assert IMAGENET_SYNONYMS[207] == "golden retriever"
    assert IMAGENET_SYNONYMS[0].startswith("tench")


def test_a_label_is_found_by_its_synonyms_too_and_shows_them():
    assert search_labels("pirate ship", IMAGENET_CLASSES, IMAGENET_SYNONYMS) == [
        (724, "pirate (pirate, pirate ship)")]
    assert search_labels("pirate ship", IMAGENET_CLASSES) == []
    assert search_labels("DOG", ["cat", "dog", "hotdog"]) == [(1, "dog"), (2, "hotdog")]
