"""Rich tables that stay correct in a narrow terminal: ids and kinds are never cut.

Every column is either a key (ids, kinds, states, numbers: shown whole, on one line) or free
text (names, errors, paths: folded onto more lines). When even the narrowest layout does not
fit, optional columns are left out, highest `drop` first, and the caption says which.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from rich.table import Table
from rich.text import Text

# Rich adds one space of padding either side of every cell, one rule between columns and one
# at either edge: the width of a table is the sum of its columns plus this.
PADDING = 2


@dataclass(frozen=True)
class Column:
    """One column: a key (never cut) or free text (folds), and when it may be left out."""

    header: str
    free: bool = False  # free text: folds onto more lines instead of widening the table
    drop: int = 0  # 0: always shown; the highest number is left out first when it is too narrow
    justify: Literal["left", "right", "center"] = "left"
    min_width: int = 12  # free text folds down to this many cells, no narrower


def _cell_width(cell: str) -> int:
    # Cells may hold markup such as "[red]failed[/]": measure what is shown.
    return max((Text.from_markup(line).cell_len for line in cell.splitlines()), default=0)


def _frame(count: int) -> int:
    return count * PADDING + count + 1


def layout(columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int) -> list[int]:
    """The indices of the columns shown at `width` (every one that fits; see `drop`)."""
    natural = [
        max([len(c.header), *(_cell_width(r[i]) for r in rows)]) for i, c in enumerate(columns)
    ]
    narrowest = [
        min(n, c.min_width) if c.free else n for c, n in zip(columns, natural, strict=True)
    ]
    shown = list(range(len(columns)))
    while sum(narrowest[i] for i in shown) + _frame(len(shown)) > width:
        optional = [i for i in shown if columns[i].drop]
        if not optional:
            break
        shown.remove(max(optional, key=lambda i: (columns[i].drop, i)))
    return shown


def widths(
    columns: Sequence[Column], rows: Sequence[Sequence[str]], width: int, shown: Sequence[int]
) -> dict[int, int]:
    """Content width of each shown column: keys whole, free text sharing what is left."""
    natural = {i: max([len(columns[i].header), *(_cell_width(r[i]) for r in rows)]) for i in shown}
    out = {i: natural[i] for i in shown if not columns[i].free}
    free = [i for i in shown if columns[i].free]
    out.update({i: min(natural[i], columns[i].min_width) for i in free})
    spare = width - _frame(len(shown)) - sum(out.values())
    # Spare cells go one at a time to the narrowest free column still folded, so a long error
    # cannot starve a short film name (max-min fair).
    while spare > 0:
        short = [i for i in free if out[i] < natural[i]]
        if not short:
            break
        out[min(short, key=lambda i: (out[i], i))] += 1
        spare -= 1
    return out


def table(
    title: str | None, columns: Sequence[Column], rows: Iterable[Sequence[str]], width: int
) -> Table:
    """A Rich table of `rows` (cells may hold markup) laid out for a console `width` wide."""
    rows = [list(r) for r in rows]
    shown = layout(columns, rows, width)
    sizes = widths(columns, rows, width, shown)
    left_out = [columns[i].header for i in range(len(columns)) if i not in shown]
    caption = None
    if left_out:
        caption = f"too narrow for: {', '.join(left_out)} (widen the terminal or use --json)"
    result = Table(title=title, caption=caption, caption_style="dim")
    for i in shown:
        column = columns[i]
        # Explicit widths: Rich's own shrinking would cut no_wrap columns evenly with the rest.
        result.add_column(
            column.header,
            justify=column.justify,
            no_wrap=not column.free,
            overflow="fold",
            width=sizes[i],
            min_width=sizes[i],
        )
    for row in rows:
        result.add_row(*(row[i] for i in shown))
    return result
