"""Encoding progress goes to an ``on_event`` callback (the CLI's prints it), never to stderr
from below the CLI: each interval's line and the final one with the time."""

from __future__ import annotations

import logging

import torch

from alignuniform.measure import encode as encode_module
from alignuniform.measure import measure


class CharCounts(torch.nn.Module):
    """A text encoder: counts of the letters a-e in each sentence, plus one."""

    modality = "text"

    def __init__(self) -> None:
        super().__init__()
        self.info = {"kind": "test", "spec": "char-counts"}

    def forward(self, texts: list[str]) -> torch.Tensor:
        return torch.tensor([[1.0 + t.count(c) for c in "abcde"] for t in texts])


def test_encode_progress_reaches_the_callback_not_stderr(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(encode_module, "LOG_EVERY", 0.0)  # a line after every batch
    data = tmp_path / "sts.tsv"
    data.write_text("5.0\ta cab\tbad cab\n1.0\tdeed\tace\n4.5\tbead\tbeaded\n")
    events: list[str] = []
    result = measure(CharCounts(), "sts", data, progress=True, batch_size=2, on_event=events.append)
    assert capsys.readouterr().err == ""
    assert len(events) == 4, events  # 6 sentences in batches of 2: 3 interval lines, 1 final
    assert events[0].startswith("encoding: 2/6 items, ") and "items/s, ETA" in events[0]
    assert events[2].startswith("encoding: 6/6 items, ")
    assert events[3].startswith("encoding: 6 items encoded in ") and events[3].endswith("items/s)")
    assert result.protocol["n_items"] == 6


def test_direct_encode_takes_a_callback_too(capsys, monkeypatch):
    monkeypatch.setattr(encode_module, "LOG_EVERY", 0.0)
    events: list[str] = []
    texts = ["ab", "cd", "e"]
    rows = encode_module.encode(
        CharCounts(),
        3,
        lambda a, b: texts[a:b],
        progress=True,
        what="texts",
        on_event=events.append,
    )
    assert rows.tolist() == CharCounts()(texts).tolist()
    assert capsys.readouterr().err == ""
    assert len(events) == 2 and events[0].startswith("texts: 3/3 items, ")
    assert events[1].startswith("texts: 3 items encoded in ")


def test_without_a_callback_the_lines_go_to_the_logger(capsys, caplog):
    texts = ["ab", "cd", "e"]
    with caplog.at_level(logging.INFO, logger="alignuniform.measure.encode"):
        encode_module.encode(CharCounts(), 3, lambda a, b: texts[a:b], progress=True)
    assert capsys.readouterr().err == ""
    assert [r.getMessage().split(" in ")[0] for r in caplog.records] == [
        "encoding: 3 items encoded"
    ]
