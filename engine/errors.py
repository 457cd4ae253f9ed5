"""Errors that map to the command line's exit codes (CONTRACTS.md section 3)."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    """One problem found in an input file.

    ``row`` is the 1-based data row (the header is not counted), so row 1 is line 2 of a CSV.
    ``row`` and ``column`` are ``None`` when the problem concerns the whole file or column.
    """

    file: str
    row: int | None
    column: str | None
    problem: str

    def __str__(self) -> str:
        where = self.file
        if self.row is not None:
            where += f", row {self.row} (line {self.row + 1})"
        if self.column is not None:
            where += f", column '{self.column}'"
        return f"{where}: {self.problem}"


class InputError(Exception):
    """Bad input: the command exits 2 and writes nothing.

    Carries every problem found, so the user can fix them all in one pass.
    """

    def __init__(self, problems: list[Problem] | Problem | str, file: str = "") -> None:
        if isinstance(problems, str):
            problems = [Problem(file=file, row=None, column=None, problem=problems)]
        elif isinstance(problems, Problem):
            problems = [problems]
        self.problems: list[Problem] = list(problems)
        super().__init__(self.describe())

    def describe(self, limit: int = 20) -> str:
        lines = [str(p) for p in self.problems[:limit]]
        if len(self.problems) > limit:
            lines.append(f"... and {len(self.problems) - limit} more problems")
        return "\n".join(lines)
