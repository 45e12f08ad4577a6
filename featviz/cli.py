"""The ``featviz`` command line: a thin layer over the library and the pipeline stages."""

from __future__ import annotations

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="Feature visualization by activation maximization, as a reproducible DVC pipeline.",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def main() -> None:
    """Feature visualization by activation maximization, as a reproducible DVC pipeline."""


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
