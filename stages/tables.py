"""Tables of cross-evaluation numbers, shared by the cross-evaluate stage and the report."""

from __future__ import annotations

from featviz.stages.params import VARIANTS


def percent(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}%"


def transfer_table(summary: dict) -> list[str]:
    """Markdown rows: per variant, top-1 by the other models first, then by the own model."""
    lines = ["| variant | transfer top-1 | self top-1 |", "| --- | --- | --- |"]
    for variant in VARIANTS:
        entry = summary[variant]
        lines.append(f"| {variant} | {percent(entry.get('transfer_top1'))} | "
                     f"{percent(entry['self_top1'])} |")
    return lines
