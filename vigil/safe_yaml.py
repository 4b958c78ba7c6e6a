"""The one way Vigil reads YAML: PyYAML's safe loader, with aliases and nesting on a budget.

An alias is cheap to write and expensive to read: nine aliases of a nine-item list, nested
eight levels deep, is 400 bytes of text and 43 million nodes for anything that walks the
document (our line finder, pydantic). PyYAML only guards against none of this, so every
node is sized as it is composed and the document is refused, with the line where the
budget ran out, before anything walks it:

* aliases may add at most `MAX_ALIASED_NODES` nodes in all (each alias counts the size of
  what it points to, its own aliases expanded);
* collections nest at most `MAX_DEPTH` levels (the composer and every walker recurse);
* an alias to a collection that is still open (a recursive structure) is refused.

Errors are `yaml.MarkedYAMLError`s, so a caller reports them as any YAML syntax error.
"""
from __future__ import annotations

from typing import Any

import yaml
from yaml.events import AliasEvent

MAX_ALIASED_NODES = 10_000
MAX_DEPTH = 64


class Refused(yaml.MarkedYAMLError):
    """Valid YAML that is too costly to read (past the alias or nesting budget)."""


class Loader(yaml.SafeLoader):
    """SafeLoader whose composer sizes each node (aliases expanded) and refuses past the budget."""

    def __init__(self, stream: str | bytes) -> None:
        super().__init__(stream)
        self._sizes: dict[int, int] = {}  # id(node) -> nodes under it, aliases expanded
        self._aliased = 0
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        if self.check_event(AliasEvent):
            event = self.peek_event()
            target = self.anchors.get(event.anchor) if event.anchor is not None else None
            if target is not None:  # an unknown anchor is PyYAML's own error, raised below
                size = self._sizes.get(id(target))
                if size is None:
                    raise Refused(None, None, f"alias *{event.anchor} refers to a collection that contains it "
                                                    "(recursive aliases are refused)", event.start_mark)
                self._aliased += size
                if self._aliased > MAX_ALIASED_NODES:
                    raise Refused(None, None, f"aliases expand to more than {MAX_ALIASED_NODES} nodes "
                                                    "(an alias bomb?); write the values out instead", event.start_mark)
            return self._composed(parent, index)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise Refused(None, None, f"nested more than {MAX_DEPTH} levels deep", self.peek_event().start_mark)
            node = self._composed(parent, index)
        finally:
            self._depth -= 1
        self._sizes[id(node)] = 1 + sum(self._size_of(child) for child in _children(node))
        return node

    def fetch_flow_collection_start(self, token_class: Any) -> None:
        # The scanner reads up to 1024 characters ahead of the composer, rechecking every open
        # bracket for each token: refuse deep brackets here, before that lookahead grows.
        if self.flow_level >= MAX_DEPTH:
            raise Refused(None, None, f"nested more than {MAX_DEPTH} levels deep", self.get_mark())
        super().fetch_flow_collection_start(token_class)

    def _composed(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        node = super().compose_node(parent, index)  # typed Optional; PyYAML returns a node for every event here
        assert node is not None
        return node

    def _size_of(self, node: yaml.Node) -> int:
        return self._sizes.get(id(node), 1)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return []


def parse(text: str | bytes, loader: type[Loader] = Loader) -> tuple[yaml.Node | None, Any]:
    """The single document's node tree (for line numbers) and its Python value, composed once."""
    reader = loader(text)
    try:
        node = reader.get_single_node()
        data = reader.construct_document(node) if node is not None else None
    finally:
        reader.dispose()
    return node, data


def safe_load(text: str | bytes) -> Any:
    """`yaml.safe_load` on the budget."""
    return parse(text)[1]
