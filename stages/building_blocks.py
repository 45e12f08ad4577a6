"""Stage building-blocks: which channels of a layer make up each class of a class set, for one
model, checked by ablation, with each class's top channels' pictures (featviz.blocks).

The attribution averages over views of every image the grid made of the class: the plain and
augmented images of every grid model with the model's labels, so that no single image decides.
All the classes' top channels get their pictures in one batched optimization (a channel that
several classes share, once).
"""

from __future__ import annotations

import csv
import io
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from featviz.blocks import attribute_channels, channel_pictures, default_layer, faithfulness
from featviz.errors import InputError
from featviz.models.classifier import Classifier
from featviz.models.loading import load_model
from featviz.progress import progress_reporter
from featviz.transforms import Augmentation
from featviz.units import Channel
from stages.common.images import png_bytes, read_image
from stages.common.outputs import (
    block_outputs,
    generate_stage,
    grid_point,
    image_filename,
    images_dir,
    json_text,
    write_stage_outputs,
)
from stages.common.tables import spreadsheet_text
from stages.params.blocks import BlockSettings, block_settings
from stages.params.reader import Params, load_params, prefixed
from stages.params.variants import VARIANTS

# The views the attribution and the ablation average over: crops of at least half the image.
VIEWS = Augmentation(crop_scale=(0.5, 1.0))
STAGE = "building-blocks"


def building_blocks(model_key: str, class_set: str, params_path: Path) -> None:
    start = time.perf_counter()
    params = load_params(params_path)
    entry = params.model(model_key)
    classes = params.classes(model_key, class_set)
    settings = block_settings(params, entry)
    outputs = block_outputs(model_key, class_set)
    images, targets = class_images(params, model_key, class_set)
    model = prefixed(f"models.{model_key}", lambda: load_model(entry.spec))
    point = grid_point(model_key, class_set)
    found = {layer: prefixed(f"building_blocks, layer {layer}", lambda layer=layer: layer_blocks(
        model, layer, classes, entry.labels, images, targets, settings))
        for layer in settings.layers or [default_layer(model)]}
    channels = {layer: sorted({item["channel"] for record in blocks.record.values()
                               for item in record["channels"]})
                for layer, blocks in found.items()}  # each once, however many classes use it
    write_stage_outputs(f"{STAGE}@{point}", {
        outputs.pictures: picture_files(model, channels, f"building blocks {point}", settings),
        outputs.attributions: attributions_csv([row for blocks in found.values()
                                                for row in blocks.rows]),
        outputs.records: json_text({
            "k": settings.k, "random_draws": settings.random_draws,
            "layers": {layer: {"classes": blocks.record, "metrics": blocks.metrics}
                       for layer, blocks in found.items()}}),
        outputs.metrics: json_text({layer: blocks.metrics for layer, blocks in found.items()}),
    }, params.source)
    print(f"building blocks {point}: done in {time.perf_counter() - start:.1f} s",
          file=sys.stderr)


@dataclass(frozen=True)
class LayerBlocks:
    record: dict  # class -> its label and top channels with their shares
    metrics: dict  # the ablation check and the top channels' share
    rows: list[tuple]  # every class x channel: (class, label, layer, channel, attribution, share)


def layer_blocks(model: Classifier, layer: str, classes: list[int], labels: list[str],
                 images: torch.Tensor, targets: list[int], settings: BlockSettings) -> LayerBlocks:
    """One layer's attribution of every class, its check by ablation, and its records."""
    attribution = attribute_channels(model, layer, images, targets, VIEWS, settings.views,
                                     settings.seed)
    check = faithfulness(model, attribution, settings.k, images, targets, VIEWS,
                         settings.views, settings.random_draws, settings.seed)
    shares = attribution.shares()
    top = attribution.top(settings.k)
    row_of = {target: row for row, target in enumerate(attribution.classes)}
    record = {str(target): {"label": labels[target], "channels": [
        {"channel": channel, "share": float(shares[row_of[target], channel]),
         "attribution": float(attribution.scores[row_of[target], channel])}
        for channel in top[row_of[target]]]} for target in classes}
    metrics = {
        "ablation_ratio": check.ratio,
        "top_k_share": float(shares.gather(1, torch.tensor(top)).sum(dim=1).mean()),
        "top1": check.top1, "top1_top_k_ablated": check.top1_top_k,
        "top1_random_ablated": check.top1_random,
        "logit_drop_top_k": check.logit_drop_top_k,
        "logit_drop_random": check.logit_drop_random}
    rows = [(target, labels[target], layer, channel,
             float(attribution.scores[row_of[target], channel]),
             float(shares[row_of[target], channel]))
            for target in classes for channel in range(shares.shape[1])]
    return LayerBlocks(record, metrics, rows)


def class_images(params: Params, model_key: str, class_set: str) -> tuple[torch.Tensor, list]:
    """Every image the grid made of the class set's classes, by grid models with the model's
    labels (the generate stages' outputs), and each one's class."""
    labels = params.model(model_key).labels
    images, targets = [], []
    for generator in params.grid_models:
        if params.model(generator).labels != labels:
            continue
        for variant in VARIANTS:
            folder = images_dir(variant, generator, class_set)
            for target in params.classes(generator, class_set):
                images.append(read_image(folder / image_filename(target, labels)))
                targets.append(target)
    if not images:
        raise InputError(f"building_blocks of {model_key}: the grid made no images with its "
                         f"labels: run {generate_stage('plain', model_key, class_set)} first")
    return torch.stack(images), targets


def picture_files(model: Classifier, channels: dict[str, list[int]], description: str,
                  settings: BlockSettings) -> dict[str, bytes]:
    """Every layer's chosen channels in one optimization: file name -> PNG bytes, each image
    beside its transparency map (the units' file names)."""
    chosen = [(layer, channel) for layer, numbers in channels.items() for channel in numbers]
    with progress_reporter(description, settings.pictures.steps) as update:
        result = channel_pictures(model, chosen, settings.augmentation, settings.pictures,
                                  lambda p: update(p.step, f"{p.total_targets} channels"))
    files = {}
    for (layer, channel), target in zip(chosen, result.targets):
        stem = Channel(layer, channel).stem(0)
        files[f"{stem}.png"] = png_bytes(target.image)
        files[f"{stem}_transparency.png"] = png_bytes(target.transparency.expand(3, -1, -1))
    return files


def attributions_csv(rows: list[tuple]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["class", "label", "layer", "channel", "attribution", "share"])
    writer.writerows((target, spreadsheet_text(label), *rest) for target, label, *rest in rows)
    return buffer.getvalue()
