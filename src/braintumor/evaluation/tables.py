"""A markdown table, as the series and localisation reports draw theirs."""

from __future__ import annotations


def table(header: list[str], rows: list[list[str]]) -> list[str]:
    """A markdown table, the first column left-aligned and the others right-aligned."""
    lines = ["| " + " | ".join(header) + " |",
             "|" + "|".join("---" if i == 0 else "---:" for i in range(len(header))) + "|"]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]

