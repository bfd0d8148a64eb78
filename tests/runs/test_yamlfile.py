"""The strict YAML loader: plain YAML as PyYAML's safe loader reads it, no aliases, no key twice."""

from __future__ import annotations

import pytest
import yaml

from alignuniform.runs.yamlfile import load_yaml, short_repr

PLAIN = """
name: s
base: {epochs: 1, lr: 1.0e-3, milestones: [2, 4], loss: "align + uniform(t=2)"}
points:
- name: a
  tags: {lambda: 0.5, note: null}
"""


def test_plain_yaml_reads_as_the_safe_loader_reads_it():
    assert load_yaml(PLAIN) == yaml.safe_load(PLAIN)


@pytest.mark.parametrize(
    "text, words",
    [
        ("a: &x [1, 2]\nb: *x\n", r"alias \*x refused"),
        ("a: 1\nb: 2\na: 3\n", "key 'a' appears twice"),
        ("p:\n  q: 1\n  q: 1\n", "key 'q' appears twice"),
        ("x: !!python/object/apply:os.system [id]\n", "could not determine a constructor"),
    ],
)
def test_aliases_duplicate_keys_and_tags_are_errors_naming_the_line(text, words):
    with pytest.raises(yaml.YAMLError, match=words) as info:
        load_yaml(text)
    assert "line" in str(info.value)


def test_short_repr_is_bounded_even_for_shared_structures():
    leaf = ["lol"] * 9
    for _ in range(9):  # 9**9 strings if expanded
        leaf = [leaf] * 9
    text = short_repr(leaf)
    assert len(text) <= 120 and text.startswith("[[[")
    assert len(short_repr("x" * 10_000)) <= 120 and short_repr(1.5) == "1.5"
