"""The ``featviz`` command line: a thin layer over the library and the pipeline stages."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from featviz.allocator import keep_freed_memory
from featviz.errors import InputError
from featviz.lifetime import end_with_parent
from featviz.validation import quoted

app = typer.Typer(
    help="Feature visualization by activation maximization, as a reproducible DVC pipeline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)



def _not_an_option(value: str | None) -> str | None:
    """``--model --help`` would otherwise take '--help' as the model key."""
    if value is not None and value.startswith("-"):
        raise typer.BadParameter(f"{value!r} looks like an option, not a key of params.yaml")
    return value


MAX_LAYERS_SIZE = 1024
PARAMS_OPTION = typer.Option(Path("params.yaml"), "--params", help="The params file to read.")
MODEL_OPTION = typer.Option(None, "--model", help="A key of params.yaml 'models'.",
                            callback=_not_an_option)
CLASS_SET_OPTION = typer.Option(None, "--class-set", help="A key of params.yaml 'class_sets'.",
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
    end_with_parent()


@app.command("models")
def models_command() -> None:
    """List the named models and whether their weights are available on this machine."""
    from featviz.models import known_models, parse_model_name, weights_available

    table = Table("model", "source", "weights here")
    for name in known_models():
        available = weights_available(name)
        table.add_row(name, parse_model_name(name).kind, "yes" if available else "no")
    console = Console()
    console.print(table)
    console.print(
        "Any torchvision classifier as 'torchvision:<arch>' and any timm model as "
        "'timm:<arch>'; torchvision and timm weights download once into TORCH_HOME / HF_HOME."
    )


@app.command("classes")
def classes_command(
    query: str = typer.Argument("", help="Part of a label, case-insensitive; empty: all."),
    model: str | None = typer.Option(None, "--model", help="A key of params.yaml 'models' "
                                     "whose labels to search; default: ImageNet's.",
                                     callback=_not_an_option),
    params: Path = PARAMS_OPTION,
) -> None:
    """Find class indices by label (what a class set may list: indices or labels)."""
    from featviz.labels import search_labels
    from featviz.stages.lookup import model_labels

    def show() -> None:
        matches = search_labels(query, model_labels(model, params))
        if not matches:
            where = f"model {model}'s labels" if model else "ImageNet's labels"
            Console(stderr=True).print(f"none of {where} contains {quoted(query)}",
                                       highlight=False)
            raise typer.Exit(1)
        for index, name in matches:
            typer.echo(f"{index}\t{name}")

    _run(show)


@app.command("layers")
def layers_command(
    model: str = typer.Argument(..., help="A key of params.yaml 'models', or a model name as "
                                "`featviz models` lists them."),
    size: int = typer.Option(0, "--size", help="Input size; 0: the model's own."),
    params: Path = PARAMS_OPTION,
) -> None:
    """List a model's layers that units can read: name, output shape for one image, and
    layout (conv: channels x height x width; tokens: tokens x features). A registry network is
    built with random weights, so nothing downloads."""
    from featviz import validation
    from featviz.models import load_model
    from featviz.stages.lookup import named_model
    from featviz.units import layers

    def show() -> None:
        validation.integer(size, "--size", 0, MAX_LAYERS_SIZE)
        classifier = load_model(named_model(model, params))
        table = Table("layer", "output shape", "layout")
        for info in layers(classifier, size or None):
            table.add_row(info.name, " x ".join(map(str, info.shape)), info.layout)
        console = Console()
        console.print(table)
        blocks = classifier.family.transformer_blocks(classifier.net)
        if blocks:
            console.print(f"mlp_neuron and head units take a block index 0..{len(blocks) - 1} "
                          f"({blocks[0].name} ..., {blocks[0].heads} heads each)",
                          highlight=False)

    _run(show)


@app.command("check-params")
def check_params_command(params: Path = PARAMS_OPTION) -> None:
    """Check the params file's keys (models, class sets, unit sets and the grid's lists: letters,
    digits and underscores), then write data/params_checked.txt. Values are checked by each
    stage when it starts.

    dvc.yaml runs it before every other stage: DVC names their outputs by these keys and removes
    a stage's outputs before it runs it.
    """
    from featviz.stages.check_params import check_params

    _run(lambda: check_params(params))


def _grid_point(stage: str, model: str | None, set_key: str | None,
                set_option: str) -> tuple[str, str]:
    """The keys given as options, or else the grid point of the DVC matrix stage running."""
    from featviz.stages.outputs import dvc_grid_point

    if model is None and set_key is None:
        return dvc_grid_point(stage)
    if model is None or set_key is None:
        raise InputError(f"give both --model and {set_option}, or neither (under DVC)")
    return model, set_key


def _generate_command(variant: str, augmentation: str) -> Callable[..., None]:
    def command(model: str | None = MODEL_OPTION, class_set: str | None = CLASS_SET_OPTION,
                params: Path = PARAMS_OPTION) -> None:
        from featviz.stages.generate import generate

        stage = f"generate-{variant}"
        _run(lambda: generate(variant, *_grid_point(stage, model, class_set, "--class-set"),
                              params))

    command.__doc__ = f"""Make the best image per class with the '{variant}' augmentation
    ({augmentation}).

    Settings: the params file's 'generate' section, overridden by keys in its '{variant}'
    section. Without --model and --class-set, the grid point of the DVC stage running
    (dvc.yaml passes no params key through the shell).

    Writes data/generated/{variant}/<model>-<class_set>/<class>_<name>.png,
    data/history/{variant}/<model>-<class_set>.csv and
    metrics/generate/{variant}/<model>-<class_set>.json.
    """
    return command


app.command("generate-plain")(_generate_command("plain", "random resized crops"))
app.command("generate-augmented")(_generate_command("augmented", "its chain of transforms"))


@app.command("generate-units")
def generate_units_command(
    model: str | None = MODEL_OPTION,
    unit_set: str | None = typer.Option(None, "--unit-set",
                                        help="A key of params.yaml 'unit_sets'.",
                                        callback=_not_an_option),
    params: Path = PARAMS_OPTION,
) -> None:
    """One image per unit of a unit set (params.yaml 'units' section over 'generate'), with its
    transparency map; metrics compare each unit's activation with scikit-image's photos.
    Without --model and --unit-set, the grid point of the DVC stage running."""
    from featviz.stages.generate_units import generate_units

    _run(lambda: generate_units(*_grid_point("generate-units", model, unit_set, "--unit-set"),
                                params))


@app.command("model-files")
def model_files_command(
    model: str | None = typer.Option(None, "--model", help="A key of params.yaml 'models'.",
                                     callback=_not_an_option),
    held_out: bool = typer.Option(False, "--held-out",
                                  help="The model is a held-out evaluator (its stage's name)."),
    params: Path = PARAMS_OPTION,
) -> None:
    """Write data/model_files/<model>.json, the fingerprint of the model's files, on which its
    stages depend. Without --model, the model of the DVC stage running."""
    from featviz.stages.model_files import model_files
    from featviz.stages.outputs import dvc_matrix_item

    stage = "held-out-model-files" if held_out else "model-files"
    _run(lambda: model_files(model or dvc_matrix_item(stage), stage, params))


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
