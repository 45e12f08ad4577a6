"""Tables of cross-evaluation numbers, shared by the cross-evaluate stage and the report, and
text made safe for the CSV files the stages write."""

from __future__ import annotations

from dataclasses import dataclass

from stages.params.variants import VARIANTS

# The headline metrics of a variant (metrics/cross_eval.json), as the tables title them.
HEADLINE = {"self_top1": "self top-1", "transfer_top1": "transfer top-1",
            "held_out_top1": "held-out top-1"}


# A spreadsheet reads a cell that starts with one of these as a formula (=HYPERLINK(...)).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_text(text: str) -> str:
    """``text`` as a CSV cell that a spreadsheet shows as text: a leading ' before a formula."""
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


@dataclass(frozen=True)
class Table:
    """A table of text cells, rendered as markdown here and as HTML by the report's templates;
    ``held_out`` marks the columns of evaluators that make no images."""

    header: list[str]
    rows: list[list[str]]
    caption: str = ""
    held_out: frozenset[int] = frozenset()

    def markdown(self) -> list[str]:
        lines = [self.caption, ""] if self.caption else []
        return [*lines, "| " + " | ".join(self.header) + " |",
                "| --- |" + " --- |" * (len(self.header) - 1),
                *("| " + " | ".join(row) + " |" for row in self.rows)]


def headline_table(summary: dict) -> Table:
    """Per variant, the headline metrics (metrics/cross_eval.json)."""
    return Table(["variant", *HEADLINE.values()],
                 [[variant, *(percent(summary[variant][key]) for key in HEADLINE)]
                  for variant in VARIANTS])


def space_tables(summary: dict, space: list[str], grid_models: list[str]) -> list[Table]:
    """Per variant, the label space's matrix of top-1 (centered view's in parentheses), rows
    made for, columns scored by."""
    generators, scorers = space_models(space, grid_models)
    held_out = frozenset(i + 1 for i, e in enumerate(scorers) if e not in grid_models)
    return [Table(["images made for", *scorers],
                  [[generator, *(f"{percent(summary[variant][generator][e]['top1'])} "
                                 f"({percent(summary[variant][generator][e]['center_top1'])})"
                                 for e in scorers)] for generator in generators],
                  f"{variant}: rows made for, columns scored by", held_out)
            for variant in VARIANTS]


def space_models(space: list[str], grid_models: list[str]) -> tuple[list[str], list[str]]:
    """(the grid models of a label space, which make images; all its models, which score)."""
    return [key for key in space if key in grid_models], space


def lonely_space_note(space: list[str]) -> str:
    return (f"Only {space[0]} has its labels: it scores its own images, and nothing else "
            "could read them.")


def label_space_lines(summary: dict, space: list[str], grid_models: list[str]) -> list[str]:
    """Markdown: the label space's tables (``space_tables``)."""
    lines = [f"## Label space of {', '.join(space)}"]
    if len(space) == 1:
        lines += ["", lonely_space_note(space)]
    for table in space_tables(summary, space, grid_models):
        lines += ["", *table.markdown()]
    return lines
