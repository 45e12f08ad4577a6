"""Tables of cross-evaluation numbers, shared by the cross-evaluate stage and the report, and
text made safe for the CSV files the stages write."""

from __future__ import annotations

from featviz.stages.variants import VARIANTS

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


def space_models(space: list[str], grid_models: list[str]) -> tuple[list[str], list[str]]:
    """(the grid models of a label space, which make images; all its models, which score)."""
    return [key for key in space if key in grid_models], space


def lonely_space_note(space: list[str]) -> str:
    return (f"Only {space[0]} has its labels: it scores its own images, and nothing else "
            "could read them.")


def label_space_lines(summary: dict, space: list[str], grid_models: list[str]) -> list[str]:
    """Markdown: per variant, the label space's matrix of top-1 (centered view's in
    parentheses), rows made for, columns scored by."""
    generators, scorers = space_models(space, grid_models)
    lines = [f"## Label space of {', '.join(space)}"]
    if len(space) == 1:
        lines += ["", lonely_space_note(space)]
    for variant in VARIANTS:
        lines += ["", f"{variant}: rows made for, columns scored by", "",
                  "| images made for | " + " | ".join(scorers) + " |",
                  "| --- |" + " --- |" * len(scorers)]
        for generator in generators:
            scores = summary[variant][generator]
            cells = [f"{percent(scores[e]['top1'])} ({percent(scores[e]['center_top1'])})"
                     for e in scorers]
            lines.append(f"| {generator} | " + " | ".join(cells) + " |")
    return lines
