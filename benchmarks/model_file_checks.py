"""What checking a model file costs: the seconds of featviz's checks of an export archive and a
TorchScript archive (featviz.models.archives, featviz.models.graph_ops) against the seconds
torch takes to load them, for networks people export (random weights; no network needed). Prints
JSON with the machine and its matmul figure:

    python benchmarks/model_file_checks.py --repeats 5 --output benchmarks/results/model-file-checks.json
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import warnings
from pathlib import Path

import timm
import torch
import torchvision
from speed import machine, matmul_flops_per_second, print_report  # this folder is on sys.path

from featviz.models.archives import check_export_archive, check_torchscript_archive
from featviz.models.graph_ops import check_exported_graph, check_script_module

NETWORKS = {
    "resnet50": (torchvision.models.resnet50, 224),
    "vit_b_16": (torchvision.models.vit_b_16, 224),
    "convnext_tiny (timm)": (lambda: timm.create_model("convnext_tiny"), 224),
}


def seconds(action, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, (make, size) in NETWORKS.items():
            net = make().eval()
            example = torch.rand(2, 3, size, size)
            exported, scripted = Path(folder) / "net.pt2", Path(folder) / "net.pt"
            torch.export.save(torch.export.export(
                net, (example,), dynamic_shapes=({0: torch.export.Dim.AUTO},)), exported)
            torch.jit.save(torch.jit.trace(net, example, check_trace=False), scripted)
            program = torch.export.load(exported)
            module = torch.jit.load(str(scripted))
            load_export = seconds(lambda: torch.export.load(exported), args.repeats)
            load_script = seconds(lambda: torch.jit.load(str(scripted)), args.repeats)
            check_export = seconds(lambda: (check_export_archive(exported), check_exported_graph(
                program.graph_module, "the program")), args.repeats)
            check_script = seconds(lambda: (check_torchscript_archive(scripted),
                                            check_script_module(module, "the module")),
                                   args.repeats)
            results[name] = {
                "export_load_s": round(load_export, 4), "export_checks_s": round(check_export, 4),
                "export_checks_per_load": round(check_export / load_export, 3),
                "torchscript_load_s": round(load_script, 4),
                "torchscript_checks_s": round(check_script, 4),
                "torchscript_checks_per_load": round(check_script / load_script, 3)}
    print_report({"machine": machine(),
                  "matmul_gflops": round(matmul_flops_per_second("cpu") / 1e9, 1),
                  "repeats": args.repeats, "networks": results}, args.output)


if __name__ == "__main__":
    main()
