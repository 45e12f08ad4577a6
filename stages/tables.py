"""Tables of cross-evaluation numbers, shared by the cross-evaluate stage and the report."""

from __future__ import annotations

from featviz.stages.variants import VARIANTS


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


SUMMARY_COLUMNS = {"transfer_top1": "transfer top-1", "held_out_top1": "held-out top-1",
                   "self_top1": "self top-1"}


def transfer_table(summary: dict) -> list[str]:
    """Markdown rows: per variant, top-1 by the other grid models, by the held-out evaluators,
    then by the own model."""
    lines = ["| variant | " + " | ".join(SUMMARY_COLUMNS.values()) + " |",
             "| --- |" + " --- |" * len(SUMMARY_COLUMNS)]
    for variant in VARIANTS:
        cells = [percent(summary[variant].get(key)) for key in SUMMARY_COLUMNS]
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return lines
