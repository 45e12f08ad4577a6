"""The ``featviz`` command line: a thin layer over the library and the pipeline stages."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from featviz.allocator import keep_freed_memory
from featviz.errors import InputError

app = typer.Typer(
    help="Feature visualization by activation maximization, as a reproducible DVC pipeline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)



def _not_an_option(value: str) -> str:
    """``--model --help`` would otherwise take '--help' as the model key."""
    if value.startswith("-"):
        raise typer.BadParameter(f"{value!r} looks like an option, not a key of params.yaml")
    return value


MAX_LAYERS_SIZE = 1024
PARAMS_OPTION = typer.Option(Path("params.yaml"), "--params", help="The params file to read.")
MODEL_OPTION = typer.Option(..., "--model", help="A key of params.yaml 'models'.",
                            callback=_not_an_option)
CLASS_SET_OPTION = typer.Option(..., "--class-set", help="A key of params.yaml 'class_sets'.",
                                callback=_not_an_option)


def _run(stage: Callable[[], None]) -> None:
    """Bad input ends the command with exit code 2 and one line that names the problem."""
    try:
        stage()
    except InputError as error:
        Console(stderr=True).print(f"[red]error:[/red] {error}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None


@app.callback()
def main() -> None:
    """Feature visualization by activation maximization, as a reproducible DVC pipeline."""
    keep_freed_memory()


@app.command("models")
def models_command() -> None:
    """List the named models and whether their weights are available on this machine."""
    from featviz.models import known_models, parse_model_name, weights_available

    table = Table("model", "source", "weights here")
    for name in known_models():
        available = weights_available(name)
        table.add_row(name, parse_model_name(name).source, "yes" if available else "no")
    console = Console()
    console.print(table)
    console.print(
        "Any torchvision classifier as 'torchvision:<arch>' and any timm model as "
        "'timm:<arch>'; torchvision and timm weights download once into TORCH_HOME / HF_HOME."
    )


@app.command("classes")
def classes_command(
    query: str = typer.Argument("", help="Part of a class name, case-insensitive; empty: all."),
) -> None:
    """Find ImageNet class indices by name."""
    from featviz.models import IMAGENET_CLASSES

    matches = [(i, name) for i, name in enumerate(IMAGENET_CLASSES)
               if query.lower() in name.lower()]
    if not matches:
        Console(stderr=True).print(f"no ImageNet class name contains {query!r}")
        raise typer.Exit(1)
    for index, name in matches:
        typer.echo(f"{index}\t{name}")


@app.command("layers")
def layers_command(
    model: str = typer.Argument(..., help="A model name, as `featviz models` lists them."),
    size: int = typer.Option(0, "--size", help="Input size; 0: the model's own."),
) -> None:
    """List a model's layers that units can read: name, output shape for one image, and
    layout (conv: channels x height x width; tokens: tokens x features). Built with random
    weights, so nothing downloads."""
    from featviz import validation
    from featviz.models import RANDOM_WEIGHTS, load_model
    from featviz.units import layers, transformer_blocks

    def show() -> None:
        validation.integer(size, "--size", 0, MAX_LAYERS_SIZE)
        classifier = load_model(model, RANDOM_WEIGHTS)
        table = Table("layer", "output shape", "layout")
        for info in layers(classifier, size or None):
            table.add_row(info.name, " x ".join(map(str, info.shape)), info.layout)
        console = Console()
        console.print(table)
        blocks = transformer_blocks(classifier.net)
        if blocks:
            console.print(f"mlp_neuron and head units take a block index 0..{len(blocks) - 1} "
                          f"({blocks[0][0]} ..., {blocks[0][1]} heads each)", highlight=False)

    _run(show)


@app.command("check-params")
def check_params_command(params: Path = PARAMS_OPTION) -> None:
    """Check every value and key of the params file, then write data/params_checked.txt.

    dvc.yaml runs it before the generate stages, whose commands hold params keys: a key that is
    not letters, digits and underscores stops `dvc repro` before any shell sees it.
    """
    from featviz.stages.check_params import check_params

    _run(lambda: check_params(params))


@app.command("generate-plain")
def generate_plain_command(
    model: str = MODEL_OPTION, class_set: str = CLASS_SET_OPTION, params: Path = PARAMS_OPTION
) -> None:
    """Make the best image per class with the 'plain' augmentation (random resized crops).

    Settings: the params file's 'generate' section, overridden by keys in its 'plain' section.

    Writes data/generated/plain/<model>-<class_set>/<class>_<name>.png,
    data/history/plain/<model>-<class_set>.csv and
    metrics/generate/plain/<model>-<class_set>.json.
    """
    from featviz.stages.generate import generate

    _run(lambda: generate("plain", model, class_set, params))


@app.command("generate-augmented")
def generate_augmented_command(
    model: str = MODEL_OPTION, class_set: str = CLASS_SET_OPTION, params: Path = PARAMS_OPTION
) -> None:
    """Make the best image per class with the 'augmented' augmentation chain.

    Settings: the params file's 'generate' section, overridden by keys in its 'augmented' section.

    Writes data/generated/augmented/<model>-<class_set>/<class>_<name>.png,
    data/history/augmented/<model>-<class_set>.csv and
    metrics/generate/augmented/<model>-<class_set>.json.
    """
    from featviz.stages.generate import generate

    _run(lambda: generate("augmented", model, class_set, params))


@app.command("generate-units")
def generate_units_command(
    model: str = MODEL_OPTION,
    unit_set: str = typer.Option(..., "--unit-set", help="A key of params.yaml 'unit_sets'.",
                                 callback=_not_an_option),
    params: Path = PARAMS_OPTION,
) -> None:
    """One image per unit of a unit set (params.yaml 'units' section over 'generate'), with its
    transparency map; metrics compare each unit's activation with scikit-image's photos."""
    from featviz.stages.generate_units import generate_units

    _run(lambda: generate_units(model, unit_set, params))


@app.command("cross-evaluate")
def cross_evaluate_command(params: Path = PARAMS_OPTION) -> None:
    """Score every grid image set with every evaluator (grid models plus extra evaluators).

    Writes metrics/cross_eval.json, metrics/cross_eval.md and data/cross_eval/images.csv.
    """
    from featviz.stages.cross_evaluate import cross_evaluate

    _run(lambda: cross_evaluate(params))


@app.command("shard")
def shard_command(
    workers: int = typer.Option(..., "--workers", help="How many workers share the grid."),
    index: int = typer.Option(..., "--index", help="This worker's shard: 0 .. workers - 1."),
    params: Path = PARAMS_OPTION,
) -> None:
    """Print the generate stages of one worker's shard, one per line (balanced by expected
    FLOPs; the balance goes to stderr). A worker runs them with
    `featviz shard --workers N --index I | xargs -r dvc repro --single-item`
    after `dvc repro check-params`, then `featviz push`; see docs/scaling.md."""
    from featviz.stages.shard import shard

    _run(lambda: typer.echo("\n".join(shard(workers, index, params))))


@app.command("push")
def push_command() -> None:
    """`dvc push --run-cache`, plus the metrics files (cache: false outputs) that it leaves out
    and without which no other clone can restore a stage from the run cache. A worker runs it
    after its shard; see docs/scaling.md."""
    from featviz.stages.shard import push

    _run(push)


@app.command("assemble")
def assemble_command(
    workers: int = typer.Option(..., "--workers", help="How many workers shared the grid."),
    recompute: bool = typer.Option(False, "--recompute",
                                   help="Run a missing shard's stages here instead of failing."),
    params: Path = PARAMS_OPTION,
) -> None:
    """Restore every generate stage from DVC's run cache (pulled from the default remote, if
    any), then `dvc repro` cross-evaluate and report. A stage no worker has pushed is an error that
    names the stage and the worker that should have run it, unless --recompute."""
    from featviz.stages.shard import assemble

    _run(lambda: assemble(workers, recompute, params))


@app.command("report")
def report_command(params: Path = PARAMS_OPTION) -> None:
    """Write data/report/index.html (gallery, cross-evaluation heatmap and tables, run
    parameters and timings; opens from disk, no server or network) and metrics/summary.md."""
    from featviz.stages.report import report

    _run(lambda: report(params))
