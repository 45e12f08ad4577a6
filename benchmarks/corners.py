"""Do the corners of the generated images carry as much detail as the centre?

For every PNG under a folder (default data/generated), the standard deviation of the pixels in
its four corner patches over that of its central patch (patch side: 1/8 of the image), averaged
per variant folder and model. 1.0: corners as detailed as the centre; images that fade to gray
towards their corners read far below 1.

    python benchmarks/corners.py [data/generated]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from PIL import Image


def corner_centre_ratio(image: np.ndarray) -> float:
    side = image.shape[0] // 8
    corners = np.concatenate([image[:side, :side], image[:side, -side:],
                              image[-side:, :side], image[-side:, -side:]])
    middle = image.shape[0] // 2 - side // 2
    centre = image[middle:middle + side, middle:middle + side]
    return float(corners.reshape(4, -1, 3).std(axis=1).mean() / centre.std(axis=(0, 1)).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", nargs="?", type=Path, default=Path("data/generated"))
    folder = parser.parse_args().folder
    ratios: dict[str, list[float]] = {}
    for path in sorted(folder.rglob("*.png")):
        image = np.asarray(Image.open(path).convert("RGB"), dtype=np.float64) / 255
        ratios.setdefault(str(path.parent.relative_to(folder)), []).append(
            corner_centre_ratio(image))
    print(json.dumps({group: round(sum(values) / len(values), 2)
                      for group, values in ratios.items()}, indent=2))


if __name__ == "__main__":
    main()
