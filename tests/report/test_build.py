"""Reports for run and sweep directories, and the `report` / `plot` commands on them."""

from __future__ import annotations

import base64
import csv
import json
import re
from pathlib import Path

import pytest
import yaml

from alignuniform.cli import main
from alignuniform.report.build import write_report
from alignuniform.report.sweep import read_results

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HOSTILE = "<script>alert('x')</script> & | pipe"


def write_run(run_dir: Path, *, lam: float = 0.5, failed: bool = False) -> Path:
    """A run directory as `train` + `eval` leave it (a failed run has no eval.json)."""
    run_dir.mkdir(parents=True)
    loss = f"{1 - lam:g}*align(alpha=2) + {lam:g}*uniform(t=2)"
    config = {
        "dataset": "fashion-mnist",
        "encoder": "convnet",
        "out_dim": 128,
        "loss": loss,
        "epochs": 4,
        "batch_size": 256,
        "lr": 0.0005,
        "seed": 0,
        "method": "twoview",
    }
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config))
    records = [
        {
            "epoch": e,
            "lr": 0.0005,
            "loss": 1.0 / e,
            "terms": {"align(alpha=2)": 0.5 / e},
            "align": 0.5 / e,
            "uniform": -2.0 - 0.3 * e,
            "samples_per_s": 1234.5,
            "epoch_time_s": 12.0,
            "accuracy": 60.0 + 5 * e,
        }
        for e in range(1, 5)
    ]
    (run_dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    status = {
        "status": "failed" if failed else "finished",
        "started": "2025-01-01T10:00:00",
        "finished": "2025-01-01T10:01:00",
        "wall_time_s": 60.0,
        "device": "cpu",
        "torch": "2.14.1",
        "host": "box",
    }
    if failed:
        status["error"] = f"loss became NaN {HOSTILE}"
    else:
        layer = {
            "linear": {"accuracy": 85.1234, "cv_mean": 84.5, "cv_std": 0.25},
            "knn": {"accuracy": 83.0},
            "alignment": 0.31,
            "uniformity": -3.8,
            "uniformity_bound": -3.94,
            "dim": 128,
        }
        evaluation = {
            "layers": {"out": layer, "penultimate": {**layer, "dim": 512}},
            "dataset": "fashion-mnist",
            "encoder": "convnet",
            "time_s": 3.0,
        }
        (run_dir / "eval.json").write_text(json.dumps(evaluation))
    (run_dir / "run.json").write_text(json.dumps(status))
    return run_dir


def write_sweep(sweep_dir: Path, lambdas=(0.0, 0.25, 0.5, 0.75, 1.0), failed=(0.25,)) -> Path:
    """A weight sweep: one run per lambda, results.csv (failed points have no numbers), table.md."""
    rows = []
    for lam in lambdas:
        name = f"lambda-{lam:g}"
        is_failed = lam in failed
        write_run(sweep_dir / name, lam=lam, failed=is_failed)
        accuracy = 10.0 if lam == 0 else 80 - 40 * (lam - 0.6) ** 2
        numbers = {
            "align": 1.2 * lam,
            "uniform": -3.5 * lam - 1e-4,
            "out/linear": accuracy,
            "out/knn": accuracy - 2,
            "penultimate/linear": accuracy + 3,
        }
        rows.append(
            {
                "name": name,
                "status": "failed" if is_failed else "finished",
                "error": f"RuntimeError: {HOSTILE}" if is_failed else "",
                "family": "align_uniform",
                "loss": f"{1 - lam:g}*align + {lam:g}*uniform",
                "dataset": "fashion-mnist",
                "epochs": 4,
                "lr": 0.0005,
                **{k: "" if is_failed else v for k, v in numbers.items()},
                "lambda": lam,
            }
        )
    with (sweep_dir / "results.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    (sweep_dir / "table.md").write_text(
        "## Best encoder per family\n\n| family | loss | out/linear |\n|---|---|---|\n"
        "| align_uniform | 0.5*align + 0.5*uniform | 79.60 |\n"
    )
    return sweep_dir


def embedded_images(page: str) -> list[bytes]:
    return [base64.b64decode(m) for m in re.findall(r'src="data:image/png;base64,([^"]+)"', page)]


def test_run_report_embeds_the_dynamics_figure_and_tables(tmp_path):
    run = write_run(tmp_path / "run-1")
    html_path, md_path = write_report(run)
    assert (html_path, md_path) == (run / "report.html", run / "report.md")
    page = html_path.read_text()
    (image,) = embedded_images(page)
    assert image[:8] == PNG_SIGNATURE and image == (run / "figures" / "dynamics.png").read_bytes()
    assert (run / "figures" / "dynamics.svg").is_file()
    assert "85.12" in page and "84.50 ± 0.25" in page  # numbers to 2 decimals
    assert "0.0005" in page  # configuration values as they are
    for section in ("Summary", "Evaluation", "Training dynamics", "Configuration", "Environment"):
        assert f"<h2>{section}" in page
    assert "torch" in page and "CPU cores" in page and "1m 00.0s" in page
    markdown = md_path.read_text()
    assert "![dynamics](figures/dynamics.png)" in markdown and "| out | " in markdown
    assert not [p for p in run.iterdir() if p.name.endswith(".tmp")]


def test_run_report_escapes_text_and_shows_missing_pieces(tmp_path):
    run = write_run(tmp_path / "broken", failed=True)
    page = write_report(run)[0].read_text()
    assert "<script>" not in page and "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;" in page
    assert "eval.json not found" in page
    markdown = (run / "report.md").read_text()
    assert "<script>" not in markdown and "&lt;script&gt;" in markdown
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "config.yaml").write_text("dataset: fashion-mnist\n")
    page = write_report(bare)[0].read_text()
    assert "run.json not found" in page and "metrics.jsonl has no epochs yet" in page
    assert embedded_images(page) == []


@pytest.mark.slow
def test_sweep_report_with_a_failed_point(tmp_path):
    sweep = write_sweep(tmp_path / "sweep")
    page = write_report(sweep)[0].read_text()
    images = embedded_images(page)
    figures = [
        "scatter_out_linear",
        "scatter_out_knn",
        "scatter_penultimate_linear",
        "weights",
        "dynamics",
    ]
    assert len(images) == len(figures)
    for name, image in zip(figures, images, strict=True):
        assert image == (sweep / "figures" / f"{name}.png").read_bytes()
    assert page.count('<figure class="wide">') == 1  # 4 runs' dynamics span the whole row
    assert "linear probe" in page and ">fast<" in page
    assert "0.6000" in page and "-1.7501" in page  # align and uniform to 4 decimals (lambda 0.5)
    assert "Failed points" in page and "RuntimeError: &lt;script&gt;" in page
    assert "<script>" not in page
    assert re.search(r"failed</span></td><td class=\"num\">1</td>", page)  # 1 failed point
    assert "Best encoder per family" in page and "79.60" in page  # table.md as a table
    assert "What you are looking at" in page
    markdown = (sweep / "report.md").read_text()
    assert "![weights](figures/weights.png)" in markdown
    assert "RuntimeError: &lt;script&gt;alert('x')&lt;/script&gt; &amp; \\| pipe" in markdown
    assert len(read_results(sweep)) == 5


def test_sweep_report_where_every_point_failed_still_renders(tmp_path):
    sweep = write_sweep(tmp_path / "sweep", lambdas=(0.1, 0.9), failed=(0.1, 0.9))
    (sweep / "table.md").unlink()
    page = write_report(sweep)[0].read_text()
    # Only the epochs the failed points logged before failing are drawn.
    assert embedded_images(page) == [(sweep / "figures" / "dynamics.png").read_bytes()]
    assert "not drawn: no finished entry" in page and "table.md not written yet" in page


def test_write_report_rejects_what_is_not_a_run_or_sweep(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a directory"):
        write_report(tmp_path / "missing")
    with pytest.raises(ValueError, match="neither a run directory"):
        write_report(tmp_path)


@pytest.mark.slow
def test_cli_report_and_plot_on_directories(tmp_path, capsys):
    sweep = write_sweep(tmp_path / "sweep", lambdas=(0.0, 0.5, 1.0), failed=())
    runs = [str(sweep / "lambda-0"), str(sweep / "lambda-0.5")]
    assert main(["plot", "dynamics", *runs, "--labels", "align only,middle"]) == 0
    dynamics = sweep / "figures" / "dynamics.png"  # several runs: their common parent
    assert capsys.readouterr().out.split() == [str(dynamics), str(dynamics.with_suffix(".svg"))]
    pair = sweep / "figures" / "pair.png"
    assert main(["plot", "dynamics", *runs, "--out", str(pair)]) == 0
    out = tmp_path / "figs" / "knn.png"
    assert (
        main(["plot", "scatter", str(sweep), "--accuracy-key", "out/knn", "--out", str(out)]) == 0
    )
    assert out.read_bytes()[:8] == PNG_SIGNATURE and out.with_suffix(".svg").is_file()
    capsys.readouterr()
    assert main(["report", str(sweep)]) == 0
    assert capsys.readouterr().out.split() == [str(sweep / "report.html"), str(sweep / "report.md")]
    page = (sweep / "report.html").read_text()
    assert "Other figures" in page and pair.read_bytes() in embedded_images(page)
    assert dynamics.read_bytes() in embedded_images(page)  # redrawn with every point's epochs
    assert main(["plot", "weights", str(sweep), "--accuracy-key", "out/nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "'out/nope'" in err and "columns present" in err
    assert main(["plot", "dynamics", *runs, "--labels", "one"]) == 2
    assert "--labels has 1 names for 2 directories" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "nowhere")]) == 2
