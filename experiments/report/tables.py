# A table of the report: raw values, rendered to Markdown (rounded) and CSV (full precision).
"""Tables: one list of raw rows, two renderings, so report.md and the CSVs cannot disagree
beyond the rounding of the Markdown."""

from __future__ import annotations

import csv
import dataclasses
import math
import os
from typing import Any


def _isnan(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


def fmt_pct(v) -> str:
    return "–" if _isnan(v) else f"{100 * v:.1f}"


def fmt_dpct(v) -> str:
    return "–" if _isnan(v) else f"{100 * v:+.1f}"


def fmt_num(v, digits=4) -> str:
    if _isnan(v):
        return "–"
    if isinstance(v, int):
        return str(v)
    if v != 0 and (abs(v) >= 1e6 or abs(v) < 1e-3):
        return f"{v:.3e}"
    return f"{v:.{digits}g}"


@dataclasses.dataclass
class Col:
    name: str
    kind: str = "text"   # text | int | num | pct | dpct | ci | dci | sci | mult


@dataclasses.dataclass
class Table:
    name: str                 # CSV file stem
    title: str
    cols: list
    rows: list
    note: str = ""

    def csv_header(self) -> list:
        h = []
        for c in self.cols:
            if c.kind in ("ci", "dci"):
                h += [c.name, c.name + "_lo", c.name + "_hi"]
            else:
                h.append(c.name)
        return h

    def csv_rows(self) -> list:
        out = []
        for r in self.rows:
            row = []
            for c, v in zip(self.cols, r):
                vals = list(v) if c.kind in ("ci", "dci") else [v]
                for x in vals:
                    if _isnan(x):
                        row.append("")
                    elif c.kind == "int" and isinstance(x, float) and x.is_integer():
                        row.append(str(int(x)))
                    elif isinstance(x, float):
                        row.append(repr(x))
                    else:
                        row.append(str(x))
            out.append(row)
        return out

    def write_csv(self, directory: str) -> str:
        path = os.path.join(directory, self.name + ".csv")
        with open(path, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(self.csv_header())
            w.writerows(self.csv_rows())
        return path

    @staticmethod
    def cell(kind: str, v: Any) -> str:
        if kind == "pct":
            return fmt_pct(v)
        if kind == "dpct":
            return fmt_dpct(v)
        if kind == "ci":
            e, lo, hi = v
            return "–" if _isnan(e) else f"{fmt_pct(e)} [{fmt_pct(lo)}, {fmt_pct(hi)}]"
        if kind == "dci":
            e, lo, hi = v
            return "–" if _isnan(e) else f"{fmt_dpct(e)} [{fmt_dpct(lo)}, {fmt_dpct(hi)}]"
        if kind == "int":
            return "–" if _isnan(v) else str(int(v))
        if kind == "num":
            return fmt_num(v)
        if kind == "sci":
            return "–" if _isnan(v) else f"{v:.3e}"
        if kind == "mult":
            return "–" if _isnan(v) else f"×{v:.3g}"
        return "" if v is None else str(v).replace("|", "\\|").replace("\n", " ")

    def markdown(self) -> str:
        lines = ["| " + " | ".join(c.name for c in self.cols) + " |",
                 "|" + "|".join("---" for _ in self.cols) + "|"]
        for r in self.rows:
            lines.append("| " + " | ".join(self.cell(c.kind, v) for c, v in zip(self.cols, r))
                         + " |")
        return "\n".join(lines)
