"""YAML as alignuniform reads it: PyYAML's safe loader without aliases and duplicate keys.

An alias (``*name``) lets a few hundred bytes stand for a structure of billions of nodes (an
"alias bomb", expanded by anything that copies or prints it), and a key written twice is
silently last-wins in plain YAML. Configs, sweep specs and ``--set`` values have no use for
either, so both are errors that point at the line. Messages show values through `short_repr`,
never a repr of unbounded size.
"""

from __future__ import annotations

import reprlib
from typing import Any

import yaml

_repr = reprlib.Repr()
_repr.maxlevel, _repr.maxlist, _repr.maxdict, _repr.maxstring, _repr.maxother = 3, 6, 6, 60, 60


def short_repr(value: Any, limit: int = 120) -> str:
    """``repr(value)`` cut to a few elements per level and at most ``limit`` characters."""
    text = _repr.repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


class StrictLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that refuses aliases and duplicate keys."""

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.composer.ComposerError(
                None,
                None,
                f"alias *{event.anchor} refused: alignuniform files take no anchors/aliases "
                "(write the value out)",
                event.start_mark,
            )
        return super().compose_node(parent, index)

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _ in node.value:
                key = self.construct_object(key_node, deep=True)
                try:
                    duplicate = key in seen
                    seen.add(key)
                except TypeError:  # an unhashable key: SafeConstructor refuses it itself
                    continue
                if duplicate:
                    raise yaml.constructor.ConstructorError(
                        None,
                        None,
                        f"key {short_repr(key, 60)} appears twice (remove one)",
                        key_node.start_mark,
                    )
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str) -> Any:
    """The value of one YAML document, read by `StrictLoader` (errors: `yaml.YAMLError`)."""
    return yaml.load(text, Loader=StrictLoader)  # a SafeLoader subclass
