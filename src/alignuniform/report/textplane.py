"""The alignment-uniformity plane in a terminal: a character grid, x = L_uniform, y = L_align,
one numbered mark per encoder (``*`` where several fall in one place), ``.`` along a training
path, ``:`` the uniform distribution's bound; lower left is better."""

from __future__ import annotations

from alignuniform.viz.plane import PlanePoint

MARKS = "123456789abcdefghijklmnopqrstuvwxyz"


def text_plane(points: list[PlanePoint], width: int = 64, height: int = 14) -> str:
    """The grid, its axis values and one line per mark (points beyond `MARKS` share ``+``)."""
    if not points:
        return ""
    xs = [p.uniformity for p in points] + [x for p in points for x, _ in p.path]
    bounds = sorted({p.bound for p in points if p.bound is not None})
    xs += bounds
    ys = [p.alignment for p in points] + [y for p in points for _, y in p.path]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(0.0, min(ys)), max(ys)
    x1, y1 = (x1 if x1 > x0 else x0 + 1.0), (y1 if y1 > y0 else y0 + 1.0)

    def cell(x: float, y: float) -> tuple[int, int]:
        column = round((x - x0) / (x1 - x0) * (width - 1))
        return height - 1 - round((y - y0) / (y1 - y0) * (height - 1)), column

    grid = [[" "] * width for _ in range(height)]
    for bound in bounds:
        for row in range(height):
            grid[row][cell(bound, y0)[1]] = ":"
    for point in points:
        for x, y in point.path:
            row, column = cell(x, y)
            grid[row][column] = "."
    for k, point in enumerate(points):
        row, column = cell(point.uniformity, point.alignment)
        shared = grid[row][column] in MARKS + "+*"
        grid[row][column] = "*" if shared else MARKS[k] if k < len(MARKS) else "+"
    margin = max(len(f"{y1:.3f}"), len(f"{y0:.3f}"))
    lines = ["L_align (lower = better aligned)"]
    for row, chars in enumerate(grid):
        label = f"{y1:.3f}" if row == 0 else f"{y0:.3f}" if row == height - 1 else ""
        lines.append(f"{label:>{margin}} |{''.join(chars).rstrip()}")
    lines.append(" " * margin + " +" + "-" * width)
    left, right = f"{x0:.3f}", f"{x1:.3f}"
    lines.append(" " * (margin + 2) + left + right.rjust(width - len(left)))
    lines.append(
        " " * (margin + 2)
        + "L_uniform (left = more uniform)"
        + ("; ':' the uniform distribution's bound" if bounds else "")
    )
    lines += [
        f"  {MARKS[k] if k < len(MARKS) else '+'}  {p.label}"
        + (f" [{p.protocol}]" if p.protocol else "")
        + ("  (training path: .)" if p.path else "")
        for k, p in enumerate(points)
    ]
    if any("*" in chars for chars in grid):
        lines.append("  *  several encoders in one place")
    return "\n".join(lines)
