"""The natural pass on this machine: seconds per 1,000 images and peak memory, for sets of
several sizes, beside a generate stage. Prints JSON.

In a throwaway folder holding the repository's params.yaml, a set of N real images (random
crops of scikit-image's photos, 256 px JPEGs, unlabelled, seeded) is written to images/bench/,
and `featviz natural-examples` of EfficientNet-Lite0 runs on it in a child process, whose peak
resident memory is its own; then `featviz generate-plain` of the same model on the reference
class set, with the default params, the same way. A streamed pass keeps its peak memory flat as
N grows.

    python benchmarks/natural.py --images 1000 10000
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import yaml
from PIL import Image
from skimage import data
from speed import machine, matmul_flops_per_second, print_report  # this folder is on sys.path

REPO = Path(__file__).resolve().parents[1]
MODEL = "efficientnet_lite0"
PHOTOS = (data.chelsea, data.coffee, data.rocket, data.astronaut, data.camera, data.clock,
          data.coins, data.moon, data.brick, data.grass)
SIDE = 256
CHILD = """
import json, resource, sys, time
from featviz.cli import app
start = time.perf_counter()
try:
    app(sys.argv[1:])
except SystemExit as end:
    code = end.code
print(json.dumps({"seconds": time.perf_counter() - start, "exit": code,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def write_set(folder: Path, count: int, seed: int = 0) -> None:
    """``count`` random square crops (a fifth to all of the shorter side) of the photos."""
    folder.mkdir(parents=True)
    photos = [np.asarray(photo()) for photo in PHOTOS]
    photos = [np.stack([p] * 3, -1) if p.ndim == 2 else p[..., :3] for p in photos]
    rng = np.random.default_rng(seed)
    for index in range(count):
        photo = photos[rng.integers(len(photos))]
        height, width = photo.shape[:2]
        side = int(min(height, width) * rng.uniform(0.2, 1.0))
        top, left = rng.integers(height - side + 1), rng.integers(width - side + 1)
        crop = Image.fromarray(photo[top:top + side, left:left + side])
        crop.resize((SIDE, SIDE), Image.Resampling.BILINEAR).save(
            folder / f"{index:06d}.jpg", quality=90)


def run_child(folder: Path, *command: str) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, *command], cwd=folder,
                          capture_output=True, text=True, check=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["exit"] not in (None, 0):
        raise SystemExit(f"featviz {' '.join(command)} failed:\n{done.stderr}")
    return {"seconds": round(result["seconds"], 1),
            "peak_rss_mib": round(result["peak_rss_mib"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    gflops = round(matmul_flops_per_second("cpu") / 1e9, 1)
    passes = {}
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        params = yaml.safe_load((REPO / "params.yaml").read_text())
        params["natural"]["models"] = {MODEL: "bench"}
        (folder / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
        for count in args.images:
            shutil.rmtree(folder / "images", ignore_errors=True)
            write_set(folder / "images/bench", count)
            result = run_child(folder, "natural-examples", "--model", MODEL)
            passes[count] = {**result,
                             "seconds_per_1000": round(1000 * result["seconds"] / count, 1)}
        generate = run_child(folder, "generate-plain", "--model", MODEL, "--class-set",
                             "reference")
    print_report({"machine": {**machine(), "matmul_gflops": gflops}, "model": MODEL,
                  "natural_pass": passes, "generate_plain_reference": generate}, args.output)


if __name__ == "__main__":
    main()
