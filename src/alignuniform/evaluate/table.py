"""The evaluation results (eval.json) as a fixed-width text table, one row per layer."""

from __future__ import annotations

from alignuniform.core.formatting import fixed


def _cell(protocol_result: dict | None) -> str:
    if not protocol_result:
        return "-"
    digits, key = (4, "mse") if "mse" in protocol_result else (2, "accuracy")
    text = fixed(protocol_result[key], digits)
    if "cv_mean" in protocol_result:
        mean, std = protocol_result["cv_mean"], protocol_result["cv_std"]
        text += f" (cv {mean:.{digits}f}±{std:.{digits}f})"
    return text


def format_table(results: dict) -> str:
    """The results as a fixed-width table: one row per layer."""
    if any("depth" in r for r in results["layers"].values()):
        header = ["layer", "tap", "channels", "decoder blocks", "depth MSE"]
        rows = [
            [layer, str(r["tap"]), str(r["dim"]), str(r["blocks"]), _cell(r["depth"])]
            for layer, r in results["layers"].items()
        ]
    else:
        header = ["layer", "tap", "dim", "linear %", "5-NN %", "L_align", "L_uniform", "bound"]
        rows = [
            [
                layer,
                str(r.get("tap", layer)),
                str(r["dim"]),
                _cell(r.get("linear")),
                _cell(r.get("knn")),
                *(fixed(r[key], 4, "-") for key in ("alignment", "uniformity", "uniformity_bound")),
            ]
            for layer, r in results["layers"].items()
        ]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *rows]
    ]
    images = results.get("images")
    sizes = f", {images['train']} train / {images['test']} test images" if images else ""
    title = (
        f"{results['encoder']} on {results['dataset']}{sizes} "
        f"(evaluated in {results['time_s']:.1f} s)"
    )
    return "\n".join([title, *lines])
