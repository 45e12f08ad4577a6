"""Will a batch fit? The memory an optimization step needs, measured on the model itself and
checked against what the device has free, before anything large is allocated."""

from __future__ import annotations

import torch

from featviz.errors import InputError
from featviz.models.classifier import Classifier, first_forward

GIB = 1 << 30
# A generous bound on what autograd keeps per pixel of a view (docs/benchmarks.md has what it
# keeps for the registry's networks): a batch that fits at this bound fits without measuring,
# which costs about a second on a CPU; a larger one is measured.
BYTES_PER_VIEW_PIXEL_BOUND = 8192
# Beyond what autograd keeps for the network: the forward's transient buffers, the views and
# the parameterization's own tensors (its spectrum, the rendered images and their gradients).
HEADROOM = 1.5
IMAGE_BUFFERS = 8  # float32 copies of each rendered image alive during a step


def activation_bytes(model: Classifier, size: int, device: torch.device) -> int:
    """Bytes that autograd keeps for the backward pass to the input of one ``size`` x ``size``
    image (the model's own weights, shared by the batch, left out). A network that cannot take
    such an input is an InputError."""
    weights = {tensor.untyped_storage().data_ptr()
               for tensor in [*model.parameters(), *model.buffers()]}
    kept: dict[int, int] = {}

    def pack(tensor: torch.Tensor) -> torch.Tensor:
        storage = tensor.untyped_storage()
        if storage.data_ptr() not in weights:
            kept[storage.data_ptr()] = storage.nbytes()
        return tensor

    image = torch.zeros(1, 3, size, size, device=device, requires_grad=True)
    with torch.autograd.graph.saved_tensors_hooks(pack, lambda tensor: tensor):
        first_forward(model, image)
    return sum(kept.values())


def free_bytes(device: torch.device) -> int:
    """Memory the device can still give: free GPU memory, or the RAM the OS calls available."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    import psutil

    return psutil.virtual_memory().available


def check_batch_memory(model: Classifier, images: int, view_size: int, image_size: int,
                       device: torch.device) -> None:
    """An InputError, naming what to lower, when ``images`` images of ``image_size`` optimized
    through ``view_size`` views would need more memory than the device has free."""
    free = free_bytes(device)
    buffers = IMAGE_BUFFERS * 4 * 3 * image_size * image_size
    if images * (BYTES_PER_VIEW_PIXEL_BOUND * view_size * view_size + buffers) <= free:
        return
    needed = images * (HEADROOM * activation_bytes(model, view_size, device) + buffers)
    if needed > free:
        raise InputError(
            f"{images} images optimized at once through {view_size} x {view_size} views of "
            f"{model.name} need about {needed / GIB:.1f} GiB, and {device.type} has "
            f"{free / GIB:.1f} GiB free: split the class set, lower copies or view_size")
