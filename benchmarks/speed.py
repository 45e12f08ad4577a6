"""Speed benchmark: featviz against the reference recipe. Prints JSON.

Measured, each in a fresh child process so that its peak memory is its own:
- time to quality: wall seconds until every class reaches p(target) >= 0.9 on the generator's
  centered view, for the reference recipe (one class at a time, one shared augmentation for 8
  copies, sigmoid pixels, AdamW lr 0.2, L2 0.001, weights requiring gradients) and for featviz
  with its defaults (all classes in one batch). The p(target) checks of the reference run every
  10 iterations off the clock; featviz's own evaluations are part of featviz and stay on it.
- throughput: image-steps per second of featviz and of a plain PyTorch loop at the same batch
  (per-batch torchvision crop, sigmoid pixels, AdamW, weights requiring gradients).
- the fraction of the machine's peak: the model FLOPs an image-step needs (forward, and backward
  to the input, counted by torch's FlopCounterMode) x image-steps per second, over the fp32
  matmul FLOP/s measured here. The plain loop's weight gradients are work the method does not
  need, so they do not count as useful FLOPs.
- torch.compile: featviz's model step eager and compiled, with the compile time.

The reference recipe and the plain loop run the networks as published, with the default
allocator. featviz folds batch norms into the convolutions before them (featviz.folding) and,
like the featviz command, keeps freed memory in the process (featviz.allocator).

On CUDA (bf16 autocast for featviz) the throughput runs use resnet50 and vit_b_16 with random
weights: speed does not depend on weight values, and time to quality needs real weights.

    python benchmarks/speed.py --quick
    python benchmarks/speed.py --output benchmarks/results/cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from unittest import mock

import torch
import torchvision.transforms.v2 as T

from featviz.allocator import keep_freed_memory
from featviz.cost import image_step_flops
from featviz.devices import autocast
from featviz.models.loading import load_model
from featviz.objectives import class_objective
from featviz.optimize import OptimizationConfig, optimize
from featviz.parameterizations import Fourier
from featviz.transforms import Augmentation, center_view
from stages.common.outputs import write_text

REFERENCE_CLASSES = [207, 294, 398, 409, 455, 531, 681, 724, 851, 852]
QUALITY = 0.9
REFERENCE_COPIES = 8
REFERENCE_MAX_ITERATIONS = 10_000
REFERENCE_PATIENCE, REFERENCE_MIN_DELTA = 2000, 0.1
CHECK_EVERY = 10

# The library's defaults before they became the plain recipe (Lucid's Fourier spectrum, its own
# lr, the true gradient, 288 steps): what the kept results were measured with.
MEASURED_CONFIG = OptimizationConfig(parameterization=Fourier(decay=1.0), lr=None,
                                     skip_gradient=1.0, steps=288, patience=40)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def load_as_published(model_name: str, weights: str | None = None):
    """The classifier without featviz's batch-norm folding, as a plain PyTorch loop has it."""
    with mock.patch("featviz.models.fold_batch_norms", lambda net, example: net):
        return load_model(model_name, weights)


def _plain_network(model):
    """The classifier as a plain PyTorch loop has it: weights requiring grad, default layout."""
    net = model.net.to(memory_format=torch.contiguous_format).requires_grad_(True)
    return lambda images: net((images - model.mean) / model.std)


def reference_time_to_quality(model_name: str, classes: list[int], cap_s: float,
                              device: str) -> dict:
    """The reference recipe, one class after another, until p >= 0.9 or its own stop rule."""
    torch.manual_seed(0)
    device = torch.device(device)
    model = load_as_published(model_name).to(device)
    network = _plain_network(model)
    size = model.input_size
    crop = T.RandomResizedCrop(size, scale=(0.1, 1.0), antialias=True)
    per_class, image_steps = [], 0
    for target in classes:
        logits = torch.randn(3, 256, 256, device=device).requires_grad_(True)
        optimizer = torch.optim.AdamW([logits], lr=0.2)
        best_loss, since_best, seconds, reached = float("inf"), 0, 0.0, False
        for iteration in range(1, REFERENCE_MAX_ITERATIONS + 1):
            start = time.perf_counter()
            image = torch.sigmoid(logits)
            batch = crop(image.repeat(REFERENCE_COPIES, 1, 1, 1))  # one draw for all copies
            loss = -network(batch)[:, target].mean() + 0.001 * torch.norm(image)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            loss_value = loss.item()
            _sync(device)
            seconds += time.perf_counter() - start
            image_steps += REFERENCE_COPIES
            if loss_value < best_loss - REFERENCE_MIN_DELTA:
                best_loss, since_best = loss_value, 0
            else:
                since_best += 1
            if iteration % CHECK_EVERY == 0:
                with torch.no_grad():
                    view = center_view(torch.sigmoid(logits)[None], size)
                    p = model(view).softmax(dim=1)[0, target].item()
                if p >= QUALITY:
                    reached = True
            if reached or since_best >= REFERENCE_PATIENCE or seconds >= cap_s:
                break
        per_class.append({"class": target, "seconds": round(seconds, 2),
                          "iterations": iteration, "reached": reached})
    total = sum(entry["seconds"] for entry in per_class)
    return {
        "seconds_to_quality": round(total, 2),
        "all_reached": all(entry["reached"] for entry in per_class),
        "image_steps_per_second": round(image_steps / total, 2),
        "classes": per_class,
    }


def featviz_time_to_quality(model_name: str, classes: list[int], device: str) -> dict:
    """featviz on all classes at once, with the settings benchmarks/results/cpu.json was
    measured with (MEASURED_CONFIG); the clock stops at the first evaluation where every
    class's best copy has p >= 0.9 on the centered view."""
    model = load_model(model_name)
    stamps: dict[int, float] = {}
    start = time.perf_counter()
    result = optimize(model, classes, class_objective("logit"), Augmentation(),
                      replace(MEASURED_CONFIG, device=device),
                      progress=lambda p: stamps.__setitem__(p.step, time.perf_counter() - start))
    reached_at = {}
    for c in result.targets:
        reached_at[c.target] = next(
            (point.step for point in c.history if point.p_target >= QUALITY), None)
    all_reached = all(step is not None for step in reached_at.values())
    last_step = max(reached_at.values()) if all_reached else None
    return {
        "seconds_to_quality": round(stamps[last_step], 2) if all_reached else None,
        "all_reached": all_reached,
        "steps_to_quality": reached_at,
        "seconds_total": round(result.seconds, 2),
        "image_steps_per_second": round(result.image_steps_per_second, 2),
    }


def plain_loop_throughput(model_name: str, weights: str | None, batch: int, steps: int,
                          device: str) -> dict:
    torch.manual_seed(0)
    device = torch.device(device)
    model = load_as_published(model_name, weights).to(device)
    network = _plain_network(model)
    crop = T.RandomResizedCrop(model.input_size, scale=(0.1, 1.0), antialias=True)
    logits = torch.randn(batch, 3, 256, 256, device=device).requires_grad_(True)
    optimizer = torch.optim.AdamW([logits], lr=0.2)
    targets = torch.arange(batch, device=device) % model.num_classes

    def step():
        images = torch.sigmoid(logits)
        loss = -network(crop(images)).gather(1, targets[:, None]).mean()
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    step()
    _sync(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    _sync(device)
    seconds = time.perf_counter() - start
    return {"batch": batch, "image_steps_per_second": round(batch * steps / seconds, 2)}


def featviz_throughput(model_name: str, weights: str | None, classes: int, copies: int,
                       steps: int, device: str) -> dict:
    """Steady state, as for the plain loop: from the end of the first step (one-off kernel
    set-up) to the end of the last; featviz's periodic evaluations stay on the clock."""
    model = load_model(model_name, weights)
    config = replace(MEASURED_CONFIG, steps=steps + 1, copies=copies, patience=None,
                     device=device)
    stamps: dict[int, float] = {}
    optimize(model, list(range(classes)), class_objective("logit"), Augmentation(), config,
             progress=lambda p: stamps.__setitem__(p.step, time.perf_counter()))
    seconds = stamps[steps + 1] - stamps[1]
    return {"batch": classes * copies,
            "image_steps_per_second": round(classes * copies * steps / seconds, 2)}


def compile_throughput(model_name: str, weights: str | None, batch: int, steps: int,
                       device: str) -> dict:
    """featviz's model step (forward, backward to the input) eager and under torch.compile:
    steady-state image-steps per second of each, and the one-off seconds of the first compiled
    step (compilation), which every generate stage would pay again."""
    device = torch.device(device)
    model = load_model(model_name, weights).to(device)
    images = torch.rand(batch, 3, model.input_size, model.input_size, device=device)
    targets = torch.arange(batch, device=device) % model.num_classes

    def seconds_per_step(network, repeats: int) -> float:
        start = time.perf_counter()
        for _ in range(repeats):
            views = images.clone().requires_grad_(True)
            with autocast(device):
                logits = network(views).float()
            logits.gather(1, targets[:, None]).sum().backward()
        _sync(device)
        return (time.perf_counter() - start) / repeats

    seconds_per_step(model, 1)
    eager = seconds_per_step(model, steps)
    compiled = torch.compile(model)
    compile_seconds = seconds_per_step(compiled, 1)
    fast = seconds_per_step(compiled, steps)
    return {"batch": batch, "compile_seconds": round(compile_seconds, 1),
            "eager_image_steps_per_second": round(batch / eager, 2),
            "compiled_image_steps_per_second": round(batch / fast, 2)}


def flops_per_image_step(model_name: str, weights: str | None) -> dict:
    """Forward and backward-to-the-input FLOPs for one image of the published network."""
    model = load_as_published(model_name, weights)
    return {"flops": image_step_flops(model, model.input_size)}


def matmul_flops_per_second(device: str) -> float:
    device = torch.device(device)
    n = 2048
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    a @ b
    _sync(device)
    repeats = 10
    start = time.perf_counter()
    for _ in range(repeats):
        a @ b
    _sync(device)
    return 2 * n**3 * repeats / (time.perf_counter() - start)


MEASUREMENTS = {
    "reference_time_to_quality": reference_time_to_quality,
    "featviz_time_to_quality": featviz_time_to_quality,
    "plain_loop_throughput": plain_loop_throughput,
    "featviz_throughput": featviz_throughput,
    "compile_throughput": compile_throughput,
    "flops_per_image_step": flops_per_image_step,
}


FEATVIZ_MEASUREMENTS = ("featviz_time_to_quality", "featviz_throughput", "compile_throughput")


def run_child(name: str, **kwargs) -> dict:
    """Run one measurement in a fresh process; add its peak memory."""
    command = [sys.executable, __file__, "--child", name, "--kwargs", json.dumps(kwargs)]
    print(f"running {name} {kwargs}", file=sys.stderr, flush=True)
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout)


def child_main(name: str, kwargs: dict) -> None:
    torch.set_num_threads(os.cpu_count() or 1)
    if name in FEATVIZ_MEASUREMENTS:
        keep_freed_memory()  # as the featviz command does
    result = MEASUREMENTS[name](**kwargs)
    if torch.cuda.is_available() and kwargs.get("device", "cpu").startswith("cuda"):
        result["peak_memory_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    else:
        peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        result["peak_memory_mib"] = round(peak_kib / 1024, 1)
    print(json.dumps(result))


def machine() -> dict:
    cpu = platform.processor()
    if Path("/proc/cpuinfo").exists():
        names = [line.split(":", 1)[1].strip()
                 for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")]
        cpu = names[0] if names else cpu
    info = {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(),
            "torch": torch.__version__, "platform": platform.platform()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def cpu_benchmark(quick: bool) -> dict:
    model = "efficientnet_lite0"
    classes = REFERENCE_CLASSES[:3] if quick else REFERENCE_CLASSES
    cap = 60.0 if quick else 120.0
    throughput_steps = 5 if quick else 20
    reference = run_child("reference_time_to_quality", model_name=model, classes=classes,
                          cap_s=cap, device="cpu")
    ours = run_child("featviz_time_to_quality", model_name=model, classes=classes, device="cpu")
    batch_classes, copies = 10, 4
    plain = run_child("plain_loop_throughput", model_name=model, weights=None,
                      batch=batch_classes * copies, steps=throughput_steps, device="cpu")
    fast = run_child("featviz_throughput", model_name=model, weights=None, classes=batch_classes,
                     copies=copies, steps=throughput_steps, device="cpu")
    compiled = run_child("compile_throughput", model_name=model, weights=None,
                         batch=batch_classes * copies, steps=throughput_steps, device="cpu")
    flops = run_child("flops_per_image_step", model_name=model, weights=None)
    peak = matmul_flops_per_second("cpu")
    fraction = {
        "featviz": fast["image_steps_per_second"] * flops["flops"] / peak,
        "plain_loop": plain["image_steps_per_second"] * flops["flops"] / peak,
    }
    ratios = {
        "time_to_quality_reference_over_featviz": (
            round(reference["seconds_to_quality"] / ours["seconds_to_quality"], 2)
            if ours["seconds_to_quality"] else None),
        "image_steps_per_second_featviz_over_plain_loop": round(
            fast["image_steps_per_second"] / plain["image_steps_per_second"], 2),
    }
    return {
        "model": model, "classes": classes, "quick": quick,
        "reference_time_to_quality": reference, "featviz_time_to_quality": ours,
        "plain_loop_throughput": plain, "featviz_throughput": fast,
        "compile_throughput": compiled, "flops_per_image_step": flops,
        "matmul_gflops": round(peak / 1e9, 1),
        "fraction_of_peak": {k: round(v, 4) for k, v in fraction.items()},
        "ratios": ratios,
    }


def gpu_benchmark(quick: bool) -> dict:
    steps = 10 if quick else 50
    results = {}
    for model in ("resnet50", "vit_b_16"):
        plain = run_child("plain_loop_throughput", model_name=model, weights="random", batch=64,
                          steps=steps, device="cuda")
        fast = run_child("featviz_throughput", model_name=model, weights="random", classes=16,
                         copies=4, steps=steps, device="cuda")
        compiled = run_child("compile_throughput", model_name=model, weights="random", batch=64,
                             steps=steps, device="cuda")
        results[model] = {"plain_loop_throughput": plain, "featviz_throughput": fast,
                          "compile_throughput": compiled,
                          "ratio": round(fast["image_steps_per_second"]
                                         / plain["image_steps_per_second"], 2)}
    return results


def print_report(report: dict, output: Path | None) -> None:
    """Print the JSON report and, when asked, also write it to ``output``."""
    text = json.dumps(report, indent=2)
    print(text)
    if output:
        write_text(output, text + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 classes, capped times")
    parser.add_argument("--output", type=Path, help="also write the JSON here")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--kwargs", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args.child, json.loads(args.kwargs))
        return
    report = {"machine": machine(), "cpu": cpu_benchmark(args.quick)}
    if torch.cuda.is_available():
        report["gpu"] = gpu_benchmark(args.quick)
    print_report(report, args.output)


if __name__ == "__main__":
    main()
