"""`featviz examples`: the real images of a folder that excite a class or a unit of a model most
(its dataset examples), without the pipeline: a table on the terminal and a contact sheet of
the top k (for a channel, the crop around its most excited position)."""

from __future__ import annotations

import sys
from pathlib import Path

from featviz.errors import InputError
from featviz.exemplars import top_examples
from featviz.models.loading import load_model
from featviz.natural import UNLABELLED
from featviz.pictures import save_png, sheet
from featviz.progress import progress_reporter
from featviz.transforms import center_view
from stages.commands.lookup import named_model
from stages.commands.render import check_writable, parse_target
from stages.common.natural_images import batches, list_set, read_natural_image

THUMBNAIL = 128


def examples(model_name: str, target: str, folder: Path, output: Path, k: int,
             params_path: Path) -> None:
    check_writable(output)
    model = load_model(named_model(model_name, params_path))
    parsed = parse_target(target, model.class_names)
    files = list_set(folder)
    size = model.input_size
    classes, units = ([], [parsed]) if not isinstance(parsed, int) else ([parsed], [])
    with progress_reporter(f"examples in {folder}", len(files)) as update:
        def images():
            for start, (batch, _) in enumerate(batches(folder, files, [UNLABELLED] * len(files),
                                                       size)):
                yield batch
                update(min((start + 1) * len(batch), len(files)), "images")
        by_class, by_unit = top_examples(model, images(), classes, units, k)
    found = (by_class or by_unit)[0]
    what = model.class_names[parsed] if isinstance(parsed, int) else parsed.name
    tiles, captions = [], []
    for rank, example in enumerate(found, start=1):
        image = read_natural_image(folder / files[example.image].path, size)
        if example.box is not None:
            left, top, right, bottom = example.box
            image = image[:, top:bottom, left:right]
        tiles.append(center_view(image[None], THUMBNAIL)[0])
        captions.append(f"{rank}: {example.activation:.3g}")
        box = "" if example.box is None else f"  box {example.box}"
        print(f"{rank:3d}  {example.activation:10.4g}  {files[example.image].path}{box}")
    try:
        save_png(sheet(tiles, captions), output)
    except OSError as error:
        raise InputError(f"--output {output} cannot be written: {error.strerror}") from None
    print(f"{output}: the top {len(found)} of {len(files)} images for {what}", file=sys.stderr)
