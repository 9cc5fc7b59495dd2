"""How much work a JSON Schema can make validation do at one place in a document.

Validation visits each value of a document with the subschemas that apply there: those its
parent's `properties`, `items`, … hand down, and everything they pull in at the same place
through `$ref`, `allOf`, `anyOf`, `oneOf`, `not`, `if`/`then`/`else` and
`dependentSchemas`. Small schemas can make that number explode (an `anyOf` of two
references to a schema with the same `anyOf`, twenty levels deep, is a million subschemas
for one value). `check_cost` follows the schema as validation would, for every path a
document may take (property names the schema knows, any other name, array positions), down
to the deepest document the API accepts, and refuses a schema where one value could cost
more than `MAX_COST`. Each subschema costs 1, plus the size of its `enum` and `required`
lists. A reference cycle that never descends into the document is refused too.

So the validation of a document costs at most `MAX_COST` subschema checks per value it
holds, whatever the schema; and a document whose values times its kind's cost exceed
`MAX_CHECKS` is refused before it is validated (`check_budget`), which bounds the time one
validation may take (about a quarter of a second here). Patterns are bounded apart: they are
compiled by a linear-time regex engine (see `schema_rules`).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping
from typing import Any

from configsvc_schemas.secrets import resolve_pointer

from configsvc.api.http import MAX_JSON_DEPTH
from configsvc.settings import MAX_BODY_BYTES

MAX_COST = 256
"""Subschema checks one document value may cost (1 per subschema, plus its enum/required)."""

MAX_CHECKS = 4_000_000
"""Subschema checks one document's validation may take (values x the kind's cost)."""

MAX_VALUES = MAX_BODY_BYTES // 2 + 1
"""The most JSON values a request body may hold (each but the first takes two bytes)."""

MAX_STATES = 20_000
"""Distinct sets of applicable subschemas explored before the schema counts as too complex."""

MAX_DEPTH = MAX_JSON_DEPTH
"""Levels followed into the document: no accepted body nests deeper."""

IN_PLACE_LISTS = ("allOf", "anyOf", "oneOf")
IN_PLACE_SINGLE = ("not", "if", "then", "else")
ANY_KEY = ("additionalProperties", "unevaluatedProperties")
ANY_INDEX = ("items", "contains", "unevaluatedItems")
OTHER = object()
"""A step to a property name the schema does not list, or an array position past
`prefixItems`."""

Pointer = str
State = frozenset[tuple[Pointer, int]]


class TooComplex(ValueError):
    """The schema could make validating one value too costly; `loc` is where it shows."""

    def __init__(self, message: str, loc: list[str | int]) -> None:
        super().__init__(message)
        self.loc = loc


def check_cost(schema: Mapping[str, Any]) -> int:
    """The most subschema checks one document value may cost; `TooComplex` past `MAX_COST`."""
    return _Analysis(schema).run()


def within_budget(document: Any, cost: int) -> bool:
    """Whether validating `document` at `cost` checks per value stays within `MAX_CHECKS`.

    Cheap first: no body the API accepts holds more than `MAX_VALUES` values, and compact
    JSON spends at least two bytes per value; the values are counted only when neither
    bound settles it.
    """
    allowed = MAX_CHECKS // max(cost, 1)
    if allowed >= MAX_VALUES:
        return True
    if (len(json.dumps(document, separators=(",", ":"))) + 1) // 2 <= allowed:
        return True
    seen = 0
    stack = [document]
    while stack:
        node = stack.pop()
        seen += 1
        if seen > allowed:
            return False
        if isinstance(node, dict):
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return True


class _Analysis:
    def __init__(self, schema: Mapping[str, Any]) -> None:
        self.schema = schema
        self.anchors = _anchors(schema)
        self.expanded: dict[Pointer, Counter[Pointer]] = {}
        self.expanding: set[Pointer] = set()

    def run(self) -> int:
        start = self.expand("#")
        worst = self._cost(start, "#")
        seen: set[State] = {_freeze(start)}
        frontier = [start]
        for _depth in range(MAX_DEPTH):
            following: list[Counter[Pointer]] = []
            for state in frontier:
                for step in self._steps(state):
                    after = self._descend(state, step)
                    if not after:
                        continue
                    worst = max(worst, self._cost(after, _some(after)))
                    frozen = _freeze(after)
                    if frozen not in seen:
                        seen.add(frozen)
                        following.append(after)
                        if len(seen) > MAX_STATES:
                            raise TooComplex(
                                "the schema is too complex to bound its validation cost "
                                f"(over {MAX_STATES} combinations of subschemas)",
                                [],
                            )
            if not following:
                break
            frontier = following
        return worst

    # ---- one place: every subschema that applies there ------------------------------

    def node(self, pointer: Pointer) -> Any:
        return resolve_pointer(self.schema, pointer)

    def canonical(self, ref: str) -> Pointer:
        """A local reference as a JSON pointer (`#name` anchors resolved)."""
        if ref == "#" or ref.startswith("#/"):
            return ref
        return self.anchors.get(ref.removeprefix("#"), ref)

    def expand(self, pointer: Pointer) -> Counter[Pointer]:
        """The subschemas applied at the same place as `pointer`'s, with repetition."""
        if pointer in self.expanded:
            return self.expanded[pointer]
        if pointer in self.expanding:
            raise TooComplex(
                "a $ref cycle never descends into the document (validation would not end)",
                _loc(pointer),
            )
        self.expanding.add(pointer)
        found: Counter[Pointer] = Counter({pointer: 1})
        node = self.node(pointer)
        if isinstance(node, Mapping):
            for child in self._in_place(node, pointer):
                found.update(self.expand(child))
                if sum(found.values()) > MAX_COST:
                    raise TooComplex(
                        f"over {MAX_COST} subschemas apply at one place in a document",
                        _loc(pointer),
                    )
        self.expanding.discard(pointer)
        self.expanded[pointer] = found
        return found

    def _in_place(self, node: Mapping[str, Any], pointer: Pointer) -> list[Pointer]:
        children: list[Pointer] = []
        ref = node.get("$ref")
        if isinstance(ref, str):
            children.append(self.canonical(ref))
        for key in IN_PLACE_LISTS:
            branches = node.get(key)
            if isinstance(branches, list):
                children += [f"{pointer}/{key}/{i}" for i in range(len(branches))]
        for key in IN_PLACE_SINGLE:
            if key in node:
                children.append(f"{pointer}/{key}")
        dependent = node.get("dependentSchemas")
        if isinstance(dependent, Mapping):
            children += [f"{pointer}/dependentSchemas/{_escape(k)}" for k in dependent]
        return children

    # ---- one step down: the subschemas that apply to a child ------------------------

    def _steps(self, state: Counter[Pointer]) -> list[Any]:
        names: set[str] = set()
        positions = 0
        for pointer in state:
            node = self.node(pointer)
            if not isinstance(node, Mapping):
                continue
            properties = node.get("properties")
            if isinstance(properties, Mapping):
                names.update(str(name) for name in properties)
            prefix = node.get("prefixItems")
            if isinstance(prefix, list):
                positions = max(positions, len(prefix))
        return [*(("key", name) for name in sorted(names)), ("key", OTHER),
                *(("index", i) for i in range(positions)), ("index", OTHER)]  # fmt: skip

    def _descend(self, state: Counter[Pointer], step: tuple[str, Any]) -> Counter[Pointer]:
        """Every subschema that applies to the child `step`, counted conservatively (every
        pattern of `patternProperties` is taken to match)."""
        after: Counter[Pointer] = Counter()
        what, which = step
        for pointer, times in state.items():
            node = self.node(pointer)
            if not isinstance(node, Mapping):
                continue
            for child in self._children(node, pointer, what, which):
                for sub, count in self.expand(child).items():
                    after[sub] += count * times
            if sum(after.values()) > MAX_COST:
                raise TooComplex(
                    f"over {MAX_COST} subschemas apply at one place in a document",
                    _loc(pointer),
                )
        return after

    @staticmethod
    def _children(node: Mapping[str, Any], pointer: Pointer, what: str, which: Any) -> list[str]:
        children: list[str] = []
        if what == "key":
            properties = node.get("properties")
            if which is not OTHER and isinstance(properties, Mapping) and which in properties:
                children.append(f"{pointer}/properties/{_escape(which)}")
            patterns = node.get("patternProperties")
            if isinstance(patterns, Mapping):
                children += [f"{pointer}/patternProperties/{_escape(p)}" for p in patterns]
            children += [f"{pointer}/{key}" for key in ANY_KEY if key in node]
        else:
            prefix = node.get("prefixItems")
            if which is not OTHER and isinstance(prefix, list) and which < len(prefix):
                children.append(f"{pointer}/prefixItems/{which}")
            children += [f"{pointer}/{key}" for key in ANY_INDEX if key in node]
        return children

    def _cost(self, state: Counter[Pointer], where: Pointer) -> int:
        total = 0
        for pointer, times in state.items():
            node = self.node(pointer)
            weight = 1
            if isinstance(node, Mapping):
                for key in ("enum", "required"):
                    listed = node.get(key)
                    if isinstance(listed, list):
                        weight += len(listed)
            total += weight * times
        if total > MAX_COST:
            raise TooComplex(
                f"validating one value could take {total} subschema checks (limit {MAX_COST})",
                _loc(where),
            )
        return total


def _anchors(schema: Mapping[str, Any]) -> dict[str, Pointer]:
    """`$anchor` name -> pointer of the subschema that declares it."""
    found: dict[str, Pointer] = {}
    stack: list[tuple[Any, Pointer]] = [(schema, "#")]
    while stack:
        node, pointer = stack.pop()
        if isinstance(node, Mapping):
            anchor = node.get("$anchor")
            if isinstance(anchor, str):
                found.setdefault(anchor, pointer)
            stack.extend((value, f"{pointer}/{_escape(str(key))}") for key, value in node.items())
        elif isinstance(node, list):
            stack.extend((value, f"{pointer}/{i}") for i, value in enumerate(node))
    return found


def _escape(key: str) -> str:
    return key.replace("~", "~0").replace("/", "~1")


def _loc(pointer: Pointer) -> list[str | int]:
    """A JSON pointer as a field path of the schema (`["schema", "$defs", "a"]`)."""
    parts = pointer.removeprefix("#").split("/")[1:]
    return [part.replace("~1", "/").replace("~0", "~") for part in parts]


def _freeze(state: Counter[Pointer]) -> State:
    return frozenset(state.items())


def _some(state: Counter[Pointer]) -> Pointer:
    return next(iter(state))
