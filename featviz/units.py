"""Units inside a network, scored per image through forward hooks: channels, neurons, whole
layers and directions of conv layers, and the token features, MLP neurons and attention heads
of Vision Transformers (torchvision's ``vit_*`` and timm's ViTs, DeiT-style extra tokens
included).

A layer's output has one of two layouts: ``conv``, (n, C, H, W), or ``tokens``, (n, T, D) with
the class and other extra tokens first. Every unit says which layouts it fits, and indexes the
axes by name, so a token is never taken for a feature (the mistake of indexing ``output[:, n]``
on a ViT). Activations are read in float32, also under bf16 autocast. Layer names are those of
the wrapped network (``model.net``), as `featviz layers MODEL` lists them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import Field, dataclass, fields
from typing import ClassVar

import torch
from torch import nn

from featviz import validation
from featviz.errors import InputError
from featviz.families import Block
from featviz.models.classifier import Classifier, first_forward, require_classifier
from featviz.objectives import FIXED, Objective, Targeted
from featviz.optimize import OptimizationConfig, OptimizationResult, Progress, optimize
from featviz.recipes import UNITS
from featviz.transforms import Augmentation
from featviz.validation import quoted

CONV, TOKENS = "conv", "tokens"
LAYOUTS = {4: CONV, 3: TOKENS}  # by the number of dimensions of a layer's output
TOKEN_CHOICES = ("cls", "mean")
MAX_DIRECTION_ENTRY = 1e6  # the direction's dot products stay far from float32's range
MAX_COSINE_POWER = 16.0

# kind -> unit class; every subclass of Unit that names its kind registers itself here.
UNIT_KINDS: dict[str, type[Unit]] = {}


def layout_of(activation: torch.Tensor) -> str | None:
    return LAYOUTS.get(activation.dim())


@dataclass(frozen=True)
class Unit:
    """Something inside the network that an image can excite: one score per image.

    A kind of unit is a frozen dataclass that names its ``kind``: its fields are the keys that
    params.yaml writes for it (those without a default are required), its ``stem`` names its
    image file. Integer fields are indices (checked non-negative here, against the layer when
    scored), a ``token`` field is 'cls', 'mean' or a token index.
    """

    kind: ClassVar[str]
    fits: ClassVar[tuple[str, ...]] = (CONV, TOKENS)  # the layouts the unit can score

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        if "kind" in cls.__dict__:
            UNIT_KINDS[cls.kind] = cls

    def __post_init__(self) -> None:
        for field in fields(self):
            value = getattr(self, field.name)
            if field.name == "token":
                _check_token(value, self)
            elif _annotation(field) in ("int", "int | None") and value is not None:
                validation.integer(value, field.name, minimum=0)

    @property
    def name(self) -> str:
        raise NotImplementedError

    def stem(self, position: int) -> str:
        """The file name (without .png) of the unit's image; ``position``: its place in its set."""
        raise NotImplementedError

    def site(self, model: Classifier) -> str:
        """The module of ``model.net`` whose forward pass the unit reads."""
        raise NotImplementedError

    def activation(self, model: Classifier, inputs: tuple, output: torch.Tensor) -> torch.Tensor:
        """What the unit scores, from its module's inputs and output (its output by default)."""
        return output

    def score(self, activation: torch.Tensor, model: Classifier) -> torch.Tensor:
        raise NotImplementedError

    def position_map(self, activation: torch.Tensor, model: Classifier) -> torch.Tensor | None:
        """(n, H, W): what the unit reads at each position of a conv layer, whose largest entry
        is where an image excites it most; None for a unit without positions."""
        return None

    # A unit is a term of an objective sum, as in Lucent: ``ClassLogit() + 0.5 * Channel(...)``.
    def __add__(self, other: object) -> Objective:
        return UnitScore(self) + _term(other)

    def __radd__(self, other: object) -> Objective:
        return _term(other) + UnitScore(self)

    def __sub__(self, other: object) -> Objective:
        return UnitScore(self) - _term(other)

    def __rsub__(self, other: object) -> Objective:
        return _term(other) - UnitScore(self)

    def __neg__(self) -> Objective:
        return -UnitScore(self)

    def __mul__(self, weight: float) -> Objective:
        return UnitScore(self) * weight

    __rmul__ = __mul__

    def check(self, activation: torch.Tensor, model: Classifier) -> None:
        """A clear error when the unit does not fit what its layer puts out."""
        layout = layout_of(activation)
        if layout not in self.fits:
            shape = tuple(activation.shape)
            fitting = [kind for kind, unit in UNIT_KINDS.items() if layout in unit.fits]
            raise InputError(
                f"{self.name}: layer {quoted(self.site(model))} puts out {shape} "
                f"({layout or 'neither conv nor tokens'}), which a {self.kind} unit does not "
                f"fit; units that fit: {', '.join(fitting) or 'none'}")


def _annotation(field: Field) -> str:
    """A field's type as written ("int | None"), whether or not annotations are postponed."""
    if isinstance(field.type, str):
        return field.type
    return field.type.__name__ if isinstance(field.type, type) else str(field.type)


def _index(value: int, size: int, what: str, unit: Unit) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < size:
        raise InputError(f"{unit.name}: {what} must be an integer from 0 to {size - 1}, "
                         f"got {quoted(value)}")
    return value


def _check_token(token: object, unit: Unit) -> None:
    if token in TOKEN_CHOICES:
        return
    if isinstance(token, bool) or not isinstance(token, int) or token < 0:
        raise InputError(f"{unit.kind}: token must be 'cls', 'mean' or a token index, "
                         f"got {quoted(token)}")


@dataclass(frozen=True)
class OnLayer(Unit):
    """A unit that reads the output of the module ``layer``."""

    layer: str

    def __post_init__(self) -> None:
        validation.module_name(self.layer, "layer")  # it becomes part of a file name
        super().__post_init__()

    def site(self, model):
        return self.layer


@dataclass(frozen=True)
class LayerUnit(OnLayer):
    """A layer's mean squared activation (Deep Dream)."""

    kind = "layer"

    @property
    def name(self) -> str:
        return f"layer({self.layer})"

    def stem(self, position):
        return f"{self.layer}_layer"

    def score(self, activation, model):
        return activation.pow(2).flatten(1).mean(dim=1)

    def position_map(self, activation, model):
        return activation.pow(2).mean(dim=1) if layout_of(activation) == CONV else None


@dataclass(frozen=True)
class Channel(OnLayer):
    """A conv channel's mean over space."""

    channel: int
    kind = "channel"
    fits: ClassVar[tuple[str, ...]] = (CONV,)

    @property
    def name(self) -> str:
        return f"channel({self.layer}, {self.channel})"

    def stem(self, position):
        return f"{self.layer}_channel_{self.channel}"

    def score(self, activation, model):
        channel = _index(self.channel, activation.shape[1], "channel", self)
        return activation[:, channel].mean(dim=(1, 2))

    def position_map(self, activation, model):
        return activation[:, _index(self.channel, activation.shape[1], "channel", self)]


@dataclass(frozen=True)
class Neuron(OnLayer):
    """A conv channel at one position, by default the centre."""

    channel: int
    x: int | None = None
    y: int | None = None
    kind = "neuron"
    fits: ClassVar[tuple[str, ...]] = (CONV,)

    @property
    def name(self) -> str:
        where = "" if self.x is None and self.y is None else f", x={self.x}, y={self.y}"
        return f"neuron({self.layer}, {self.channel}{where})"

    def stem(self, position):
        if self.x is None and self.y is None:
            return f"{self.layer}_neuron_{self.channel}_centre"
        x, y = ("c" if value is None else value for value in (self.x, self.y))
        return f"{self.layer}_neuron_{self.channel}_x{x}_y{y}"

    def score(self, activation, model):
        _, channels, height, width = activation.shape
        channel = _index(self.channel, channels, "channel", self)
        x = _index(width // 2 if self.x is None else self.x, width, "x", self)
        y = _index(height // 2 if self.y is None else self.y, height, "y", self)
        return activation[:, channel, y, x]

    def position_map(self, activation, model):
        """Its own position, wherever the image excites it."""
        n, _, height, width = activation.shape
        x = _index(width // 2 if self.x is None else self.x, width, "x", self)
        y = _index(height // 2 if self.y is None else self.y, height, "y", self)
        marked = torch.zeros(n, height, width, device=activation.device)
        marked[:, y, x] = 1
        return marked


@dataclass(frozen=True)
class Direction(OnLayer):
    """A direction in a layer's channel (or feature) space: the activation's dot product with
    ``vector`` at each position (or token), averaged; ``cosine_power`` > 0 multiplies each
    position's dot product by its cosine similarity to the vector to that power (Lucid's
    direction_neuron_cossim), which favours the direction over sheer magnitude."""

    vector: tuple[float, ...]
    cosine_power: float = 0.0
    kind = "direction"
    MAX_ENTRIES: ClassVar[int] = 65536

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.vector, (list, tuple)) or \
                not 0 < len(self.vector) <= self.MAX_ENTRIES:
            raise InputError(f"vector must be a list of at most {self.MAX_ENTRIES} numbers, "
                             f"got {quoted(self.vector)}")
        vector = tuple(validation.number(value, f"{self.layer} direction entry",
                                         -MAX_DIRECTION_ENTRY, MAX_DIRECTION_ENTRY)
                       for value in self.vector)
        if not any(vector):
            raise InputError(f"direction({self.layer}): the vector must not be zero")
        object.__setattr__(self, "vector", vector)
        validation.number(self.cosine_power, "cosine_power", 0, MAX_COSINE_POWER)

    @property
    def name(self) -> str:
        power = f", cosine_power={self.cosine_power:g}" if self.cosine_power else ""
        return f"direction({self.layer}, {len(self.vector)}-d{power})"

    def stem(self, position):
        return f"{self.layer}_direction_{position}"

    def score(self, activation, model):
        features = activation if layout_of(activation) == TOKENS else activation.movedim(1, -1)
        if features.shape[-1] != len(self.vector):
            raise InputError(f"{self.name}: the vector has {len(self.vector)} entries, the "
                             f"layer {features.shape[-1]} channels")
        vector = torch.tensor(self.vector, dtype=features.dtype, device=features.device)
        dot = features @ vector
        if self.cosine_power:
            cosine = dot / (features.norm(dim=-1) * vector.norm() + 1e-8)
            dot = dot * cosine.clamp(min=0.1) ** self.cosine_power
        return dot.flatten(1).mean(dim=1)

    def position_map(self, activation, model):
        if layout_of(activation) != CONV:
            return None
        vector = torch.tensor(self.vector, dtype=activation.dtype, device=activation.device)
        return activation.movedim(1, -1) @ vector


def _token_score(activation: torch.Tensor, feature: int, token: int | str,
                 model: Classifier, unit: Unit, what: str) -> torch.Tensor:
    """One feature (``what`` the unit calls it) of (n, T, D) at the class token, a token index,
    or the mean of the patch tokens (the extra tokens left out)."""
    tokens, features = activation.shape[1:]
    feature = _index(feature, features, what, unit)
    if token == "cls":
        index = model.family.class_token(model.net)
        if index is None:
            raise InputError(f"{unit.name}: {type(model.net).__name__} has no class token: use "
                             "token='mean' or a token index")
        return activation[:, index, feature]
    if token == "mean":
        return activation[:, model.family.prefix_tokens(model.net):, feature].mean(dim=1)
    return activation[:, _index(token, tokens, "token", unit), feature]


@dataclass(frozen=True)
class TokenFeature(OnLayer):
    """Feature ``feature`` of a token layout: at the class token, token index ``token``, or
    averaged over the patch tokens ("mean")."""

    feature: int
    token: int | str = "cls"
    kind = "token_feature"
    fits: ClassVar[tuple[str, ...]] = (TOKENS,)

    @property
    def name(self) -> str:
        return f"token_feature({self.layer}, {self.feature}, token={self.token})"

    def stem(self, position):
        return f"{self.layer}_token_feature_{self.feature}_{self.token}"

    def score(self, activation, model):
        return _token_score(activation, self.feature, self.token, model, self, "feature")


@dataclass(frozen=True)
class InBlock(Unit):
    """A unit of transformer block ``block`` (an index into the model's blocks)."""

    block: int
    fits: ClassVar[tuple[str, ...]] = (TOKENS,)

    def transformer_block(self, model: Classifier) -> Block:
        blocks = model.family.transformer_blocks(model.net)
        if not blocks:
            raise InputError(f"{self.name} needs a Vision Transformer (torchvision vit_* or a "
                             f"timm ViT); {type(model.net).__name__} is neither")
        return blocks[_index(self.block, len(blocks), "block", self)]


@dataclass(frozen=True)
class MlpNeuron(InBlock):
    """Hidden unit ``neuron`` of transformer block ``block``'s MLP (after its activation
    function), at a token or averaged over the patch tokens."""

    neuron: int
    token: int | str = "mean"
    kind = "mlp_neuron"

    @property
    def name(self) -> str:
        return f"mlp_neuron({self.block}, {self.neuron}, token={self.token})"

    def stem(self, position):
        return f"block{self.block}_mlp_neuron_{self.neuron}_{self.token}"

    def site(self, model):
        block = self.transformer_block(model)
        return f"{block.name}.{model.family.mlp_site(block)}"

    def score(self, activation, model):
        return _token_score(activation, self.neuron, self.token, model, self, "neuron")


@dataclass(frozen=True)
class Head(InBlock):
    """Attention head ``head`` of transformer block ``block``: its output before the output
    projection, (n, T, head_dim), scored by its mean square (how strongly the head writes)."""

    head: int
    kind = "head"

    @property
    def name(self) -> str:
        return f"head({self.block}, {self.head})"

    def stem(self, position):
        return f"block{self.block}_head_{self.head}"

    def site(self, model):
        block = self.transformer_block(model)
        return f"{block.name}.{model.family.head_site(block)}"

    def activation(self, model, inputs, output):
        block = self.transformer_block(model)
        head = _index(self.head, block.heads, "head", self)
        return model.family.head_activation(block, inputs, output, head)

    def score(self, activation, model):
        return activation.pow(2).flatten(1).mean(dim=1)


@contextlib.contextmanager
def capture(net: nn.Module, sites: Sequence[str]) -> Iterator[dict[str, tuple]]:
    """Forward hooks on the named modules; while open, the dict holds each module's latest
    (inputs, output), as float32."""
    modules = dict(net.named_modules())
    unknown = [site for site in sites if site not in modules]
    if unknown:
        raise InputError(f"unknown layer {quoted(unknown[0])} in {type(net).__name__}: "
                         "`featviz layers MODEL` lists the layer names")
    captured: dict[str, tuple] = {}

    def keep(site: str):
        def hook(module, inputs, output):
            captured[site] = (tuple(_float(x) for x in inputs), _float(output))
        return hook

    handles = [modules[site].register_forward_hook(keep(site)) for site in dict.fromkeys(sites)]
    try:
        yield captured
    finally:
        for handle in handles:
            handle.remove()


def _float(value: object) -> object:
    return value.float() if isinstance(value, torch.Tensor) else value


class UnitObjective(Targeted):
    """Sample i maximizes ``units[targets[i]]``: a batch may mix units of any kinds and layers.
    Use it inside ``attached(model)``, which hooks the layers the units read."""

    kind = "unit"

    def __init__(self, units: Sequence[Unit]) -> None:
        if not units:
            raise InputError("no units to optimize: give at least one unit")
        for unit in units:
            if not isinstance(unit, Unit):
                raise InputError(f"{quoted(unit)} is not a unit: use one of "
                                 f"{', '.join(cls.__name__ for cls in UNIT_KINDS.values())}")
        self.units = list(units)
        self.name = "unit"
        self._model: Classifier | None = None
        self._captured: dict[str, tuple] = {}

    @contextlib.contextmanager
    def attached(self, model: Classifier) -> Iterator[None]:
        sites = [unit.site(model) for unit in self.units]
        with capture(model.net, sites) as captured:
            self._model, self._captured = model, captured
            try:
                yield
            finally:
                self._model, self._captured = None, {}

    def check_targets(self, model: Classifier, targets: list[int]) -> None:
        for target in targets:
            if isinstance(target, bool) or not isinstance(target, int) or \
                    not 0 <= target < len(self.units):
                raise InputError(f"unit index {quoted(target)} is outside 0..{len(self.units) - 1}")

    def describe(self, model: Classifier, target: int) -> str:
        return f"unit {self.units[target].name}"

    def __call__(self, logits, images, targets):
        model = self._model
        if model is None:
            raise RuntimeError("a UnitObjective scores only inside attached(model)")
        scores = torch.zeros(len(targets), device=logits.device)
        for target in targets.unique().tolist():
            unit = self.units[target]
            inputs, output = self._captured[unit.site(model)]
            activation = unit.activation(model, inputs, output)
            unit.check(activation, model)
            rows = (targets == target).nonzero().squeeze(1)
            scores = scores.index_put((rows,), unit.score(activation, model)[rows])
        return scores


class UnitScore(Targeted):
    """One unit's score for every sample, whatever its target: ``ClassLogit() + Channel(layer,
    3)`` raises class and channel together; alone, or as a sum of units (``Channel(layer, 3) -
    Channel(layer, 5)``), each target is one more image of it (``targets=[0]`` for one)."""

    kind = FIXED

    def __init__(self, unit: Unit) -> None:
        self.unit = unit
        self.name = unit.name
        self._scores = UnitObjective([unit])

    def attached(self, model: Classifier) -> contextlib.AbstractContextManager:
        return self._scores.attached(model)

    def check_targets(self, model: Classifier, targets: list[int]) -> None:
        for target in targets:
            validation.integer(target, "image index", minimum=0)

    def describe(self, model: Classifier, target: int) -> str:
        return f"{self.name} (image {target})"

    def __call__(self, logits, images, targets):
        return self._scores(logits, images, torch.zeros_like(targets))


def _term(other: object) -> Objective:
    """A unit as the objective term it scores; an objective as it is."""
    if isinstance(other, Unit):
        return UnitScore(other)
    if isinstance(other, Objective) or (isinstance(other, (int, float)) and other == 0):
        return other
    raise InputError(f"{quoted(other)} cannot be added to a unit: add an objective "
                     "(ClassLogit(), TotalVariation()) or another unit")


class Diversity(Objective):
    """Pushes the copies of each target apart (Lucid's diversity term): a sample scores minus
    its mean cosine similarity to the other copies of its target, compared by the Gram matrices
    of ``layer``'s activation (channels x channels, or features x features for tokens), which
    capture what is drawn rather than where. Add it with a weight, for classes or units:
    ``UnitObjective(units) + 0.5 * Diversity("blocks.4")``. In the fixed-view evaluation an
    image's views count as copies too, which shifts every copy's score alike."""

    def __init__(self, layer: str) -> None:
        self.layer = layer
        self.name = f"diversity({layer})"
        self._captured: dict[str, tuple] | None = None

    @contextlib.contextmanager
    def attached(self, model: Classifier) -> Iterator[None]:
        with capture(model.net, [self.layer]) as captured:
            self._captured = captured
            try:
                yield
            finally:
                self._captured = None

    def __call__(self, logits, images, targets):
        if self._captured is None:
            raise RuntimeError("Diversity scores only inside attached(model)")
        activation = self._captured[self.layer][1]
        if layout_of(activation) == CONV:
            features = activation.flatten(2)
        elif layout_of(activation) == TOKENS:
            features = activation.transpose(1, 2)
        else:
            raise InputError(f"{self.name}: layer {self.layer!r} puts out "
                             f"{tuple(activation.shape)}, neither conv nor tokens")
        gram = features @ features.transpose(1, 2) / features.shape[2]
        flat = torch.nn.functional.normalize(gram.flatten(1), dim=1)
        others = targets[:, None] == targets[None, :]
        others.fill_diagonal_(False)
        similarity = (flat @ flat.T * others).sum(dim=1) / others.sum(dim=1).clamp(min=1)
        return -similarity


def unit_activations(model: Classifier, units: Sequence[Unit],
                     images: torch.Tensor) -> torch.Tensor:
    """(images, units): every unit's score on every image (at the model's input size)."""
    objective = UnitObjective(units)
    columns = []
    with torch.no_grad(), objective.attached(model):
        logits = model(images)
        for target in range(len(units)):
            targets = torch.full((len(images),), target, device=logits.device)
            columns.append(objective(logits, images, targets))
    return torch.stack(columns, dim=1)


@dataclass(frozen=True)
class LayerInfo:
    name: str
    shape: tuple[int, ...]  # without the batch axis
    layout: str


def layers(model: Classifier, size: int | None = None) -> list[LayerInfo]:
    """Every module of ``model.net`` whose output is a conv or token layout, in forward order,
    with its output shape for one ``size`` x ``size`` input (the model's input size)."""
    require_classifier(model, "layers")
    size = size or model.input_size
    names = {module: name for name, module in model.net.named_modules() if name}
    found: list[LayerInfo] = []

    def hook(module, inputs, output):
        if isinstance(output, torch.Tensor) and layout_of(output):
            found.append(LayerInfo(names[module], tuple(output.shape[1:]), layout_of(output)))

    handles = [module.register_forward_hook(hook) for module in names]
    try:
        with torch.no_grad():
            first_forward(model, torch.zeros(1, 3, size, size))
    finally:
        for handle in handles:
            handle.remove()
    return found


def optimize_units(model: Classifier, units: Sequence[Unit], augmentation: Augmentation,
                   config: OptimizationConfig | None = None,
                   penalty: Objective | None = None,
                   progress: Callable[[Progress], None] | bool = True) -> OptimizationResult:
    """One image (``config.copies`` images) per unit, all units in one batch; ``penalty`` (e.g.
    ``0.05 * TotalVariation()``) is subtracted. Result i belongs to ``units[i]``. Without a
    ``config``, the pipeline's units recipe (``featviz.recipes.UNITS``); ``progress`` as
    ``optimize``'s."""
    objective = UnitObjective(units)
    if penalty is not None:
        objective = objective - penalty
    return optimize(model, list(range(len(units))), objective, augmentation,
                    config or UNITS.config, progress)
