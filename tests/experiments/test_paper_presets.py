"""The paper's presets built from its appendix tables: nyu-table2 (Table 8) and stl10-table1
(Table 7's 150 batch-768 encoders), the depth sweep end to end, and lower-is-better selection."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest
import yaml
from tests.helpers.formats import write_nyu

from alignuniform.cli import main
from alignuniform.core.objective import Objective
from alignuniform.experiments.paper import TABLES, read_table
from alignuniform.experiments.reproduce import preset_path, preset_spec
from alignuniform.experiments.results import paper_pick

TINY_NYU = ["device=cpu", "encoder_kwargs={width: 0.0625}", "heldout=4"]
COLUMNS = {"contrastive": ("lc_weight", "lc_tau"), "align": ("la_weight", "la_alpha")}
COLUMNS["uniform"] = ("lu_weight", "lu_t")


def sets(*items: str) -> list[str]:
    return [f"--set={item}" for item in items]


def one_line_error(capsys, code: int, *needles: str) -> str:
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert all(n in err for n in needles), err
    return err


@pytest.fixture
def nyu_dir(tmp_path) -> Path:
    """32 training and 8 test frames."""
    write_nyu(tmp_path / "nyu", n=40, train=range(1, 33), test=range(33, 41))
    return tmp_path / "nyu"


def test_nyu_table2_dry_run_plans_the_64_encoders(nyu_dir, tmp_path, capsys):
    code = main(
        [
            "reproduce",
            "nyu-table2",
            "--data-dir",
            str(nyu_dir),
            "--out",
            str(tmp_path / "s"),
            "--dry-run",
            *sets(*TINY_NYU, "batch_size=16"),
        ]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert "sweep nyu-table2: 64 points" in out and "of training in all" in out
    assert out.count("2 steps per epoch x 400 epochs = 800 steps") == 64
    assert "checked training: nyu-depth-v2 train, 32 images" in out
    assert not (tmp_path / "s").exists()


def test_nyu_points_are_table8_and_the_paper_picks_table2s_rows():
    spec = preset_spec("nyu-table2")
    table = read_table("table8-nyu-depth-v2")
    assert [p.tags["paper_row"] for p in spec.points] == [int(r["row"]) for r in table]
    assert all(
        (p.values["batch_size"], p.values["lr"], p.values["epochs"], p.values["out_dim"])
        == (128, 0.06, 400, 128)
        for p in spec.points
    )
    assert spec.select_metric == "conv5/depth" and spec.select_mode == "min"
    picks = {
        f: paper_pick(spec.paper, "conv5/depth", "min", f) for f in ("contrastive", "align_uniform")
    }
    assert picks["contrastive"]["row"] == "57" and picks["align_uniform"]["row"] == "16"
    values = {f: (picks[f]["val_conv5_mse"], picks[f]["val_conv4_mse"]) for f in picks}
    assert values == {"contrastive": ("0.7024", "0.7575"), "align_uniform": ("0.7014", "0.7592")}


@pytest.mark.slow
def test_two_table8_encoders_train_probe_select_and_report_beside_the_paper(tmp_path, capsys):
    nyu_dir = tmp_path / "nyu"
    write_nyu(nyu_dir)  # 8 training and 4 test frames
    raw = yaml.safe_load(preset_path("nyu-table2").read_text())
    raw["paper"]["rows"] = [16, 57]
    spec_file = tmp_path / "two.yaml"
    spec_file.write_text(yaml.safe_dump(raw))
    out = tmp_path / "sweep"
    tiny = [*TINY_NYU, "epochs=1", "batch_size=4", "eval_depth_epochs=1", "eval_folds=2"]
    code = main(
        [
            "reproduce",
            str(spec_file),
            "--data-dir",
            str(nyu_dir),
            "--out",
            str(out),
            "--no-progress",
            *sets(*tiny),
        ]
    )
    assert code == 0, capsys.readouterr()
    with open(out / "results.csv") as f:
        rows = {r["name"]: r for r in csv.DictReader(f)}
    assert set(rows) == {"row016", "row057"}
    for row in rows.values():
        assert row["status"] == "finished"
        for column in ("conv5/depth", "conv4/depth", "conv5/depth/cv_mean", "conv4/depth/cv_mean"):
            assert float(row[column]) > 0
    best = min(rows, key=lambda name: float(rows[name]["conv5/depth/cv_mean"]))
    table = (out / "table.md").read_text()
    among_all = next(
        line for line in table.splitlines() if line.startswith("| Best among all | ours")
    )
    assert f"`{rows[best]['loss']}`" in among_all
    contrastive = next(
        line for line in table.splitlines() if line.startswith("| Best L_c only | ours")
    )
    align_uniform = next(
        line
        for line in table.splitlines()
        if line.startswith("| Best L_align + L_uniform only | ours")
    )
    assert "0.7024" in contrastive and "0.7575" in contrastive
    assert "0.7014" in align_uniform and "0.7592" in align_uniform
    assert f"{float(rows['row057']['conv5/depth']):.4f}" in contrastive
    assert "| Best among all | paper (row 16) |" in table  # the lowest CV conv5 MSE of all 64
    report = (out / "report.html").read_text()
    assert "0.7024" in report and "0.7592" in report


# stl10-table1's dry-run (all 150 points planned) runs once, as README's `reproduce` line in
# tests/test_readme.py
def test_every_stl10_point_is_its_table7_row():
    spec = preset_spec("stl10-table1")
    table = {int(r["row"]): r for r in read_table("table7-stl10")}
    pool = [
        n
        for n, r in table.items()
        if (r["init"], r["batch_size"], r["dim"]) == ("rand", "768", "128")
    ]
    assert len(pool) == 150 and sorted(p.tags["paper_row"] for p in spec.points) == pool
    for point in spec.points:
        row = table[point.tags["paper_row"]]
        assert (point.values["batch_size"], point.values["epochs"]) == (768, 200)
        assert point.values["lr"] == float(row["lr"]) and row["epochs"] == "200"
        terms = {
            term.kind: (weight, dict(term.params))
            for weight, term in Objective.parse(point.values["loss"]).terms
        }
        for kind, (weight_column, parameter_column) in COLUMNS.items():
            if float(row[weight_column]) == 0:
                assert kind not in terms, (point.name, kind)
                continue
            weight, params = terms[kind]
            assert weight == float(row[weight_column]), (point.name, kind)
            assert list(params.values()) == [float(row[parameter_column])], (point.name, kind)
    assert point.values["eval_linear_protocol"] == "paper"


def test_table1s_three_rows_are_in_the_pool_and_the_paper_picks_them():
    spec = preset_spec("stl10-table1")
    cited = {  # Table 1: loss -> validation output+linear, output+5-NN, fc7+linear, fc7+5-NN
        81: ("contrastive(tau=0.19)", (80.46, 78.75, 83.89, 76.33)),
        178: ("0.98*align(alpha=2) + 0.96*uniform(t=2)", (81.15, 78.89, 84.43, 76.78)),
        111: ("contrastive(tau=0.5) + uniform(t=2)", (81.06, 79.05, 84.14, 76.48)),
    }
    points = {p.tags["paper_row"]: p for p in spec.points}
    for number, (loss, values) in cited.items():
        assert points[number].values["loss"] == loss
        row = spec.paper.row(number)
        probes = ("out/linear", "out/knn", "fc7/linear", "fc7/knn")
        assert tuple(spec.paper.value(row, p) for p in probes) == values
    picks = [
        paper_pick(spec.paper, "out/linear", "max", f)["row"]
        for f in ("contrastive", "align_uniform", "mixed")
    ]
    assert picks == ["81", "178", "111"]
    assert (TABLES / "SOURCE.txt").is_file()


def write_spec(path: Path, **changes) -> Path:
    raw = yaml.safe_load(preset_path("nyu-table2").read_text())
    raw["paper"]["rows"] = [16]
    for key, value in changes.items():
        raw[key] = value
    path.write_text(yaml.safe_dump(raw))
    return path


def test_errors_are_one_line_before_any_step(tmp_path, capsys):
    spec = write_spec(tmp_path / "max.yaml", select={"metric": "conv5/depth", "mode": "max"})
    code = main(["sweep", str(spec), "--out", str(tmp_path / "s"), "--dry-run"])
    one_line_error(capsys, code, "select.mode max on conv5/depth", "use mode min")

    write_nyu(tmp_path / "flat", depths=False)
    code = main(
        [
            "reproduce",
            str(write_spec(tmp_path / "one.yaml")),
            "--data-dir",
            str(tmp_path / "flat"),
            "--dry-run",
            *sets(*TINY_NYU, "batch_size=4"),
        ]
    )
    one_line_error(capsys, code, "lacks the 'depths' dataset")

    write_nyu(tmp_path / "past", train=(1, 2, 3, 4, 13))
    base = [
        "train",
        "--set=dataset=nyu-depth-v2",
        "--set=encoder=depth_alexnet",
        "--out",
        str(tmp_path / "run"),
        *sets(*TINY_NYU, "batch_size=4", "eval_protocols=depth"),
    ]
    code = main([*base, f"--set=data_dir={tmp_path / 'past'}", "--set=eval_layers=conv5"])
    one_line_error(capsys, code, "trainNdxs indexes frames 1..13", "frames 1..12")

    write_nyu(tmp_path / "ok")
    code = main([*base, f"--set=data_dir={tmp_path / 'ok'}", "--set=eval_layers=conv5,conv9"])
    one_line_error(capsys, code, "unknown layer 'conv9'")
    code = main(
        [
            "train",
            "--set=dataset=nyu-depth-v2",
            f"--set=data_dir={tmp_path / 'ok'}",
            "--out",
            str(tmp_path / "run"),
        ]
    )  # the classification probes by default
    one_line_error(capsys, code, "NYU-Depth-V2 has depth maps, not classes")
    assert not (tmp_path / "run" / "checkpoints").exists()

    code = main(
        [
            "eval",
            "--encoder",
            "depth_alexnet",
            "--dataset",
            "nyu-depth-v2",
            "--data-dir",
            str(tmp_path / "ok"),
            "--protocols",
            "depth",
            "--layers",
            "conv5,conv9",
        ]
    )
    one_line_error(capsys, code, "unknown layer 'conv9'")
