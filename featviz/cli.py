"""The ``featviz`` command line: a thin layer over the library and the pipeline stages."""

from __future__ import annotations

from collections.abc import Callable
from importlib import metadata
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table
from typer.core import TyperGroup

from featviz.allocator import keep_freed_memory
from featviz.errors import InputError
from featviz.lifetime import end_with_parent
from featviz.validation import quoted

STAGES = "Pipeline stages (dvc.yaml runs them)"
SCALING = "Scaling out (docs/scaling.md)"


class _Sections(TyperGroup):
    """--help lists the commands in sections: the user's first, then the stages."""

    def format_commands(self, ctx, formatter) -> None:
        sections: dict[str, list[tuple[str, str]]] = {}
        for name in self.list_commands(ctx):
            command = self.get_command(ctx, name)
            if command is None or command.hidden:
                continue
            help_text = command.get_short_help_str(limit=formatter.width)
            sections.setdefault(command.rich_help_panel or "Commands", []).append(
                (name, help_text))
        for title, rows in sections.items():
            with formatter.section(title):
                formatter.write_dl(rows)


app = typer.Typer(
    cls=_Sections,
    help="Feature visualization by activation maximization, as a reproducible DVC pipeline.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    context_settings={"help_option_names": ["-h", "--help"]},
)


def _not_an_option(value: str | None) -> str | None:
    """``--model --help`` would otherwise take '--help' as the model key."""
    if value is not None and value.startswith("-"):
        raise typer.BadParameter(f"{quoted(value)} looks like an option, not a key of "
                                 "params.yaml")
    return value


MAX_LAYERS_SIZE = 1024
PARAMS_OPTION = typer.Option(Path("params.yaml"), "--params", metavar="FILE",
                             help="The params file to read.")
MODEL_OPTION = typer.Option(None, "--model", metavar="KEY",
                            help="A key of params.yaml 'models'.", callback=_not_an_option)
CLASS_SET_OPTION = typer.Option(None, "--class-set", metavar="KEY",
                                help="A key of params.yaml 'class_sets'.",
                                callback=_not_an_option)
MODEL_ARGUMENT = typer.Argument(..., metavar="MODEL", help="A key of params.yaml 'models', or a "
                                "model name as `featviz models` lists them.")


def _run(stage: Callable[[], None]) -> None:
    """Bad input ends the command with exit code 2 and one line that names the problem (as the
    command line's own errors do)."""
    try:
        stage()
    except InputError as error:
        Console(stderr=True).print(f"Error: {error}", highlight=False, soft_wrap=True,
                                   markup=False)
        raise typer.Exit(2) from None


def _version(show: bool) -> None:
    if show:
        typer.echo(f"featviz {metadata.version('featviz')}")
        raise typer.Exit()


@app.callback()
def main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                      help="Show featviz's version and exit.")) -> None:
    """Feature visualization by activation maximization, as a reproducible DVC pipeline."""
    keep_freed_memory()
    end_with_parent()


@app.command("render")
def render_command(
    model: str = MODEL_ARGUMENT,
    target: str = typer.Argument(..., metavar="TARGET", help="A class (its index or label, e.g. "
                                 "207 or 'golden retriever') or a unit as LAYER:CHANNEL (e.g. "
                                 "blocks.4:17)."),
    output: Path = typer.Option(Path("featviz.png"), "-o", "--output", metavar="FILE",
                                help="Where to write the PNG."),
    variant: str = typer.Option("augmented", "--variant", metavar="NAME",
                                help="The recipe of a class: plain or augmented."),
    steps: int = typer.Option(0, "--steps", metavar="N", help="Steps; 0: the recipe's."),
    size: int = typer.Option(0, "--size", metavar="N", help="Image side; 0: the recipe's (256)."),
    seed: int = typer.Option(0, "--seed", metavar="N", help="The random seed."),
    start: Path | None = typer.Option(None, "--from", metavar="IMAGE", help="Start from this "
                                      "real image (PNG, JPEG, WebP, BMP) and accentuate the "
                                      "target in it, changing it as little as it takes."),
    weights: str | None = typer.Option(None, "--weights", metavar="FILE", help="A state dict "
                                       "under models/ for a MODEL name (not a params key), or "
                                       "'random'."),
    labels: str | None = typer.Option(None, "--labels", metavar="FILE", help="A labels file "
                                      "under models/, or 'imagenet': for a model file (export:, "
                                      "torchscript:, python:)."),
    input_size: int | None = typer.Option(None, "--input-size", metavar="N", help="The side "
                                          "of the model's inputs: for a model file."),
    mean: tuple[float, float, float] | None = typer.Option(None, "--mean", metavar="R G B",
                                                           help="The model's normalization mean: "
                                                           "for a model file."),
    std: tuple[float, float, float] | None = typer.Option(None, "--std", metavar="R G B",
                                                          help="The model's normalization std: "
                                                          "for a model file."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    params: Path = PARAMS_OPTION,
) -> None:
    """One picture of a class or a unit, the pipeline's recipe.

    The recipes are featviz.recipes' (params.yaml's defaults); writes a PNG. With --from, the
    real image's centre square at the model's input size, accentuated for the target
    (featviz.accentuate; --variant and --size do not apply). A model file without a params.yaml
    entry: `featviz render export:models/net.pt2 cat --labels models/labels.txt --input-size 64
    --mean 0.5 0.5 0.5 --std 0.5 0.5 0.5`.
    """
    from featviz import validation
    from stages.commands.render import render

    def run() -> None:
        validation.choice(variant, "--variant", ("plain", "augmented"))
        validation.integer(steps, "--steps", 0, 100_000)
        validation.integer(size, "--size", 0, 1024)
        validation.integer(seed, "--seed", 0, validation.MAX_SEED)
        options = {"weights": weights, "labels": labels, "input_size": input_size,
                   "mean": mean and list(mean), "std": std and list(std)}
        render(model, target, output, variant, steps or None, size or None, seed, params, start,
               options, not quiet)

    _run(run)


@app.command("quick-look")
def quick_look_command(
    classes: list[str] = typer.Argument(None, metavar="[CLASS]...", help="Classes (indices or "
                                        "labels); default: 207 294 724, a golden retriever, a "
                                        "brown bear, a pirate ship."),
    model: str | None = typer.Option(None, "--model", metavar="KEY", help="The model to make "
                                     "images for; default: params.yaml's first grid model."),
    output: Path = typer.Option(Path("quick-look.png"), "-o", "--output", metavar="FILE",
                                help="Where to write the contact sheet."),
    steps: int = typer.Option(64, "--steps", metavar="N", help="Steps per image."),
    size: int = typer.Option(0, "--size", metavar="N", help="Image side; 0: the recipe's, at "
                             "most 160."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    params: Path = PARAMS_OPTION,
) -> None:
    """A first look in seconds: a few classes, plain and augmented, cross-evaluated.

    params.yaml's two recipes for the model (featviz's for a model it does not list), shorter,
    one copy, at most 160 px; each image scored by every grid model with the same labels
    (top-1 over 8 random views, as cross-evaluate scores). No DVC, nothing under data/: one PNG
    and a table. The full run: dvc repro.
    """
    from featviz import validation
    from stages.commands.quick_look import DEFAULT_CLASSES, quick_look

    def run() -> None:
        validation.integer(steps, "--steps", 1, 10_000)
        if size:
            validation.integer(size, "--size", 32, 1024)
        quick_look(model, classes or list(DEFAULT_CLASSES), output, steps, size or None, params,
                   not quiet)

    _run(run)


@app.command("examples")
def examples_command(
    model: str = MODEL_ARGUMENT,
    target: str = typer.Argument(..., metavar="TARGET", help="A class (its index or label) or a "
                                 "unit as LAYER:CHANNEL (e.g. blocks.4:17)."),
    images: Path = typer.Option(..., "--images", metavar="FOLDER", help="A folder of images: "
                                "files, or <label>/<file> (PNG, JPEG, WebP, BMP)."),
    output: Path = typer.Option(Path("examples.png"), "-o", "--output", metavar="FILE",
                                help="Where to write the contact sheet (PNG)."),
    top_k: int = typer.Option(9, "--top-k", metavar="K", help="How many images to show."),
    params: Path = PARAMS_OPTION,
) -> None:
    """The real images that excite a class or a unit most.

    Its dataset examples in a folder of images, streamed in batches: a table and a contact
    sheet (for a channel, the crop around its most excited position).
    """
    from featviz import validation
    from stages.commands.examples import examples

    def run() -> None:
        validation.integer(top_k, "--top-k", 1, 1000)
        examples(model, target, images, output, top_k, params)

    _run(run)


@app.command("models")
def models_command() -> None:
    """List the registry's models, whether their weights are here, and the kinds of name."""
    from featviz.models.loading import weights_available
    from featviz.models.registry import SOURCES, known_models, parse_model_name

    console = Console()
    table = Table("model", "source", "weights here")
    for name in known_models():
        available = weights_available(name)
        table.add_row(name, parse_model_name(name).kind, "yes" if available else "no")
    console.print(table)
    kinds = Table("kind", "name", "what featviz does with it")
    for kind in SOURCES:
        kinds.add_row(kind.kind, kind.example, kind.gets)
    console.print(kinds)
    console.print("torchvision and timm weights download once into TORCH_HOME / HF_HOME; "
                  "your own networks: docs/own-models.md.")


@app.command("classes")
def classes_command(
    query: str = typer.Argument("", metavar="QUERY",
                                help="Part of a label, case-insensitive; empty: all."),
    model: str | None = typer.Option(None, "--model", metavar="KEY",
                                     help="A key of params.yaml 'models' whose labels to "
                                     "search; default: ImageNet's.", callback=_not_an_option),
    params: Path = PARAMS_OPTION,
) -> None:
    """Find class indices by label.

    A class set lists indices or labels; with --model, that model's labels. ImageNet's labels
    are searched with their WordNet synonyms (724 'pirate' is found by 'pirate ship').
    """
    from featviz.labels import search_labels
    from featviz.models.class_names import IMAGENET_CLASSES, IMAGENET_SYNONYMS
    from stages.commands.lookup import model_labels

    def show() -> None:
        labels = model_labels(model, params)
        synonyms = IMAGENET_SYNONYMS if labels == IMAGENET_CLASSES else None
        matches = search_labels(query, labels, synonyms)
        if not matches:
            where = f"model {model}'s labels" if model else "ImageNet's labels"
            raise InputError(f"none of {where} contains {quoted(query)}")
        for index, name in matches:
            typer.echo(f"{index}\t{name}")

    _run(show)


@app.command("layers")
def layers_command(
    model: str = MODEL_ARGUMENT,
    query: str = typer.Argument("", metavar="QUERY", help="Part of a layer name (layer4, "
                                "blocks.5), or a layout (conv, tokens); empty: all."),
    size: int = typer.Option(0, "--size", metavar="N", help="Input size; 0: the model's own."),
    params: Path = PARAMS_OPTION,
) -> None:
    """List the layers that units can read.

    For each: name, output shape, layout; with QUERY, those whose name contains it or whose
    layout it names.

    Layouts: conv, channels x height x width; tokens, tokens x features. A registry network is
    built with random weights, so nothing downloads.
    """
    from featviz import validation
    from featviz.models.loading import load_model
    from featviz.units import layers
    from stages.commands.lookup import named_model

    def show() -> None:
        validation.integer(size, "--size", 0, MAX_LAYERS_SIZE)
        classifier = load_model(named_model(model, params, random_weights=True))
        table = Table("layer", "output shape", "layout")
        found = [info for info in layers(classifier, size or None)
                 if query in info.name or query == info.layout]
        if not found:
            raise InputError(f"no layer of {model} is named with {quoted(query)} or has that "
                             "layout: leave QUERY out to list them all")
        for info in found:
            table.add_row(info.name, " x ".join(map(str, info.shape)), info.layout)
        console = Console()
        console.print(table)
        blocks = classifier.family.transformer_blocks(classifier.net)
        if blocks:
            console.print(f"mlp_neuron and head units take a block index 0..{len(blocks) - 1} "
                          f"({blocks[0].name} ..., {blocks[0].heads} heads each)",
                          highlight=False)

    _run(show)


@app.command("check-model")
def check_model_command(
    model: str = MODEL_ARGUMENT,
    images: Path | None = typer.Option(None, "--images", metavar="FOLDER", help="Real images "
                                       "the model was trained on, <label>/<file> or files: "
                                       "does it classify them (at most 64, sampled)?"),
    params: Path = PARAMS_OPTION,
) -> None:
    """Check a model before a long run, in one screen.

    What featviz sees of it (input size, grey or RGB, mean and std, labels, family, the
    residual branches the skip gradient scales, layers for units) and will do (each variant's
    recipe at the model's scale, seconds per step, memory per image); and whether its pictures
    would mean anything: eval mode (no dropout or batch statistics at work), mean and std
    against its first batch norm's learned spread, outputs that respond to the image, and with
    --images, how many real images it classifies right. Exit code 1 when a check finds a
    problem, 2 for bad input.
    """
    from stages.commands.check_model import model_report

    def show() -> None:
        lines, problem = model_report(model, params, images)
        for line in lines:
            typer.echo(line)
        if problem:
            raise typer.Exit(1)

    _run(show)


@app.command("check-params", rich_help_panel=STAGES)
def check_params_command(params: Path = PARAMS_OPTION) -> None:
    """Check every key and value of params.yaml.

    Then write data/params_checked.txt (always the same). dvc.yaml runs it before every other
    stage: DVC names their outputs by the params keys and removes a stage's outputs before it
    runs it, and a bad value would otherwise stop a run minutes in.
    """
    from stages.check_params import check_params

    _run(lambda: check_params(params))


def _grid_point(stage: str, model: str | None, set_key: str | None,
                set_option: str) -> tuple[str, str]:
    """The keys given as options, or else the grid point of the DVC matrix stage running."""
    from stages.common.outputs import dvc_grid_point

    if model is None and set_key is None:
        return dvc_grid_point(stage)
    if model is None or set_key is None:
        raise InputError(f"give both --model and {set_option}, or neither (under DVC)")
    return model, set_key


def _generate_command(variant: str, augmentation: str) -> Callable[..., None]:
    def command(model: str | None = MODEL_OPTION, class_set: str | None = CLASS_SET_OPTION,
                params: Path = PARAMS_OPTION) -> None:
        from stages.generate import generate

        stage = f"generate-{variant}"
        _run(lambda: generate(variant, *_grid_point(stage, model, class_set, "--class-set"),
                              params))

    command.__doc__ = f"""The best image per class of a grid point, {variant}.

    Optimized {augmentation}.

    Settings: the params file's 'generate' section, overridden by keys in its '{variant}'
    section. Without --model and --class-set, the grid point of the DVC stage running
    (dvc.yaml passes no params key through the shell). Writes under data/:
    generated/{variant}/<model>-<class_set>/, sheets/, history/, generate/ and live/.
    """
    return command


app.command("generate-plain", rich_help_panel=STAGES)(
    _generate_command("plain", "through random resized crops"))
app.command("generate-augmented", rich_help_panel=STAGES)(
    _generate_command("augmented", "through the augmented chain of transforms"))


@app.command("generate-units", rich_help_panel=STAGES)
def generate_units_command(
    model: str | None = MODEL_OPTION,
    unit_set: str | None = typer.Option(None, "--unit-set", metavar="KEY",
                                        help="A key of params.yaml 'unit_sets'.",
                                        callback=_not_an_option),
    params: Path = PARAMS_OPTION,
) -> None:
    """One image per unit of a unit set.

    Each with its transparency map.

    Settings: params.yaml's 'units' section over 'generate'; the records compare each unit's
    activation with scikit-image's photos. Without --model and --unit-set, the grid point of
    the DVC stage running.
    """
    from stages.generate_units import generate_units

    _run(lambda: generate_units(*_grid_point("generate-units", model, unit_set, "--unit-set"),
                                params))


@app.command("model-files", rich_help_panel=STAGES)
def model_files_command(
    model: str | None = MODEL_OPTION,
    held_out: bool = typer.Option(False, "--held-out",
                                  help="The model is a held-out evaluator (its stage's name)."),
    params: Path = PARAMS_OPTION,
) -> None:
    """A fingerprint of one model's files.

    The model's stages depend on it.

    Writes data/model_files/<model>.json. Without --model, the model of the DVC stage running.
    """
    from stages.common.outputs import dvc_matrix_item
    from stages.model_files import model_files

    stage = "held-out-model-files" if held_out else "model-files"
    _run(lambda: model_files(model or dvc_matrix_item(stage), stage, params))


@app.command("building-blocks", rich_help_panel=STAGES)
def building_blocks_command(model: str | None = MODEL_OPTION,
                            class_set: str | None = CLASS_SET_OPTION,
                            params: Path = PARAMS_OPTION) -> None:
    """Which channels of a layer make up each class, checked by ablation.

    For one model and class set: each class's logit attributed to the channels of the layers
    of params.yaml's building_blocks section, its top channels ablated against random ones and
    pictured. Without --model and --class-set, the grid point of the DVC stage running.
    """
    from stages.building_blocks import STAGE, building_blocks

    _run(lambda: building_blocks(*_grid_point(STAGE, model, class_set, "--class-set"), params))


@app.command("natural-examples", rich_help_panel=STAGES)
def natural_examples_command(model: str | None = MODEL_OPTION,
                             params: Path = PARAMS_OPTION) -> None:
    """One pass of a grid model over its set of real images.

    The set is the folder of images/ that params.yaml's natural.models names for the model.
    Writes data/natural/<model>/: the top images of each grid class and unit (records and
    thumbnails) and the reference of real images that the trust stage reads. Without --model,
    the model of the DVC stage running.
    """
    from stages.common.outputs import dvc_matrix_item
    from stages.natural_examples import STAGE, natural_examples

    _run(lambda: natural_examples(model or dvc_matrix_item(STAGE), params))


@app.command("trust", rich_help_panel=STAGES)
def trust_command(model: str | None = MODEL_OPTION, params: Path = PARAMS_OPTION) -> None:
    """Every picture of a grid model measured against its real images.

    Each class picture's plausibility and processing check, beside the real images' own
    numbers, and each unit picture's plausibility (docs/natural-images.md). Writes data/trust/<model>.json and metrics/trust/<model>.json. Without
    --model, the model of the DVC stage running.
    """
    from stages.common.outputs import dvc_matrix_item
    from stages.trust import STAGE, trust_stage

    _run(lambda: trust_stage(model or dvc_matrix_item(STAGE), params))


@app.command("accentuate", rich_help_panel=STAGES)
def accentuate_command(model: str | None = MODEL_OPTION, params: Path = PARAMS_OPTION) -> None:
    """Each grid class's top real image accentuated for the class, and cross-evaluated.

    For a model of params.yaml's natural.accentuated: its top real image per class (from the
    natural-examples stage) changed as little as it takes for the class to fire, scored before
    and after by every model of its labels. Writes data/generated/accentuated/<model>/,
    data/generate/accentuated/<model>.json and metrics/accentuated/<model>.json. Without
    --model, the model of the DVC stage running.
    """
    from stages.accentuate import STAGE, accentuate_stage
    from stages.common.outputs import dvc_matrix_item

    _run(lambda: accentuate_stage(model or dvc_matrix_item(STAGE), params))


@app.command("cross-evaluate", rich_help_panel=STAGES)
def cross_evaluate_command(params: Path = PARAMS_OPTION) -> None:
    """Score every grid image with the models of its labels.

    Writes metrics/cross_eval.json (the headline numbers), metrics/cross_eval.md,
    data/cross_eval/summary.json and data/cross_eval/images.csv.
    """
    from stages.cross_evaluate import cross_evaluate

    _run(lambda: cross_evaluate(params))


@app.command("report", rich_help_panel=STAGES)
def report_command(params: Path = PARAMS_OPTION) -> None:
    """The HTML report and the markdown summary.

    Writes data/report/index.html (one file: cross-evaluation, gallery, loss curves, units,
    the run's settings; opens from disk) and metrics/summary.md.
    """
    from stages.report import report

    _run(lambda: report(params))


@app.command("shard", rich_help_panel=SCALING)
def shard_command(
    workers: int = typer.Option(..., "--workers", metavar="N",
                                help="How many workers share the grid."),
    index: int = typer.Option(..., "--index", metavar="I",
                              help="This worker's shard: 0 .. workers - 1."),
    params: Path = PARAMS_OPTION,
) -> None:
    """Print one worker's generate stages.

    One per line.

    Balanced by expected FLOPs (the balance goes to stderr). A worker runs them with
    `featviz shard --workers N --index I | xargs -r dvc repro --single-item` after
    `featviz check-params`, then `featviz push`.
    """
    from stages.commands.shard import shard

    _run(lambda: typer.echo("\n".join(shard(workers, index, params))))


@app.command("push", rich_help_panel=SCALING)
def push_command() -> None:
    """Push a worker's results to the DVC remote.

    `dvc push --run-cache`, and the metrics files it leaves out.

    Without them (cache: false outputs) no other clone can restore a stage from the run cache.
    A worker runs it after its shard.
    """
    from stages.commands.shard import push

    _run(push)


@app.command("assemble", rich_help_panel=SCALING)
def assemble_command(
    workers: int = typer.Option(..., "--workers", metavar="N",
                                help="How many workers shared the grid."),
    recompute: bool = typer.Option(False, "--recompute",
                                   help="Run a missing shard's stages here instead of failing."),
    params: Path = PARAMS_OPTION,
) -> None:
    """Restore the workers' stages, then run the rest.

    Every generate stage comes from DVC's run cache.

    The run cache is pulled from the default remote, if any. A stage no worker has pushed is an
    error that names the stage and the worker that should have run it, unless --recompute.
    """
    from stages.commands.shard import assemble

    _run(lambda: assemble(workers, recompute, params))
