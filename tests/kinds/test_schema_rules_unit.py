"""Checking a team's schema and validating with it, without a service: the cost bound, the
validation budget, messages that never quote a value, and random schemas and documents
(hypothesis) that may only ever be refused with `ValidationFailed`."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from configsvc.errors import ValidationFailed
from configsvc.kinds import UserKind
from configsvc.kinds.complexity import MAX_CHECKS, MAX_COST, TooComplex, check_cost
from configsvc.kinds.schema_rules import check_schema
from configsvc.store.kinds import KindRecord


def kind_of(schema: dict[str, Any]) -> UserKind:
    compiled = check_schema(schema)
    return UserKind(KindRecord("K", 1, compiled.schema, None, (), "t", "test"))


def test_cost_follows_references_branches_and_recursion() -> None:
    flat = {"type": "object", "properties": {"a": {"type": "string"}}}
    assert check_cost(flat) == 1
    union = {
        "type": "object",
        "properties": {"a": {"oneOf": [{"type": "string"}, {"type": "integer"}]}},
    }
    assert check_cost(union) == 3
    tree = {"type": "object", "properties": {"kids": {"type": "array", "items": {"$ref": "#"}}}}
    assert check_cost(tree) == 2  # the $ref and the root it names, at any depth
    doubling = {"type": "object", "allOf": [{"properties": {"n": {"$ref": "#"}}}] * 2}
    with pytest.raises(TooComplex):
        check_cost(doubling)
    wide = {"type": "object", "properties": {"a": {"enum": list(range(MAX_COST))}}}
    with pytest.raises(TooComplex):
        check_cost(wide)
    loop = {
        "type": "object",
        "$defs": {"a": {"$ref": "#/$defs/a"}},
        "properties": {"x": {"$ref": "#/$defs/a"}},
    }
    with pytest.raises(TooComplex, match="cycle"):
        check_cost(loop)


def test_anchors_count_like_pointers() -> None:
    schema = {
        "type": "object",
        "properties": {"a": {"$ref": "#item"}},
        "$defs": {"item": {"$anchor": "item", "type": "string", "enum": ["x", "y"]}},
    }
    assert check_cost(schema) == 4
    assert kind_of(schema).validate({"a": "x"}) == {"a": "x"}


def test_budget_refuses_documents_too_costly_to_validate() -> None:
    branches = [{"type": "integer", "minimum": -i} for i in range(100)]
    kind = kind_of(
        {"type": "object", "properties": {"a": {"type": "array", "items": {"allOf": branches}}}}
    )
    assert kind.cost > 100
    fits = MAX_CHECKS // kind.cost - 2
    assert kind.validate({"a": [1] * fits})
    with pytest.raises(ValidationFailed, match="too large"):
        kind.validate({"a": [1] * (fits + 10)})


def test_messages_quote_the_schema_never_the_value() -> None:
    secret = "s3cr3t-VALUE-991"
    schema = {
        "type": "object",
        "properties": {
            "a": {"type": "string", "pattern": "^[a-z]+$"},
            "b": {"type": "string", "maxLength": 3},
            "c": {"enum": ["x", "y"]},
            "d": {"type": "string", "format": "email"},
            "e": {"not": {"type": "string"}},
            "f": {"anyOf": [{"type": "integer"}, {"type": "boolean"}]},
            "g": {"const": 1},
        },
        "additionalProperties": False,
    }
    kind = kind_of(schema)
    for field in "abcdefg":
        with pytest.raises(ValidationFailed) as refused:
            kind.validate({field: secret})
        text = str(refused.value.body())
        assert secret not in text, text
        assert refused.value.details[0]["loc"][:2] == ["spec", field], refused.value.details
    with pytest.raises(ValidationFailed) as unknown:
        kind.validate({secret: 1})
    assert unknown.value.details[0]["loc"] == ["spec", secret]  # a key: a path, not a value


JSON_LEAVES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-5, 5),
    st.floats(allow_nan=False, width=32),
    st.text(max_size=5),
)
JSON = st.recursive(
    JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3)
    ),
    max_leaves=12,
)
TYPES = st.sampled_from(
    ["string", "integer", "number", "object", "array", "boolean", "null", "strnig"]
)


def subschemas(depth: int) -> st.SearchStrategy[Any]:
    leaf = st.one_of(
        st.booleans(),
        st.fixed_dictionaries({"type": TYPES}),
        st.fixed_dictionaries(
            {
                "type": st.just("string"),
                "pattern": st.sampled_from(
                    ["^a+$", "(a+)+$", "(?=x)", "[", "\\d{2,}", "a{1000}{1000}"]
                ),
            }
        ),
        st.fixed_dictionaries({"enum": st.lists(JSON, max_size=3)}),
        st.fixed_dictionaries(
            {
                "$ref": st.sampled_from(
                    ["#", "#/$defs/a", "#/nope", "http://x/y", "#a", "other.json"]
                )
            }
        ),
        st.fixed_dictionaries(
            {"type": st.just("string"), "x-configsvc-secret": st.sampled_from([True, 1, False])}
        ),
        st.fixed_dictionaries(
            {"format": st.sampled_from(["email", "uri", "date-time", "regex", "nope"])}
        ),
        st.fixed_dictionaries({"minimum": st.integers(-3, 3), "maxLength": st.integers(-1, 3)}),
    )
    if depth == 0:
        return leaf
    inner = subschemas(depth - 1)
    return st.one_of(
        leaf,
        st.fixed_dictionaries(
            {
                "type": st.just("object"),
                "properties": st.dictionaries(
                    st.sampled_from(["a", "b", "$ref"]), inner, max_size=3
                ),
            }
        ),
        st.fixed_dictionaries({"items": inner, "uniqueItems": st.booleans()}),
        st.fixed_dictionaries({"anyOf": st.lists(inner, min_size=1, max_size=3)}),
        st.fixed_dictionaries({"oneOf": st.lists(inner, min_size=1, max_size=3), "not": inner}),
        st.fixed_dictionaries({"if": inner, "then": inner, "else": inner}),
        st.fixed_dictionaries(
            {
                "additionalProperties": inner,
                "patternProperties": st.dictionaries(
                    st.sampled_from(["^x", "(", "y$"]), inner, max_size=2
                ),
            }
        ),
    )


ROOTS = st.builds(
    lambda body, defs, extra: {"type": "object", **body, "$defs": {"a": defs}, **extra},
    st.fixed_dictionaries(
        {"properties": st.dictionaries(st.sampled_from(["a", "b", "c"]), subschemas(3), max_size=3)}
    ),
    subschemas(2),
    st.sampled_from(
        [
            {},
            {"$schema": "https://json-schema.org/draft/2020-12/schema"},
            {"$id": "http://x/"},
            {"$dynamicRef": "#a"},
        ]
    ),
)


@given(schema=ROOTS, documents=st.lists(JSON, max_size=4))
@settings(
    max_examples=300, deadline=None, derandomize=True, suppress_health_check=list(HealthCheck)
)
def test_random_schemas_and_documents_are_only_ever_refused_cleanly(
    schema: dict[str, Any], documents: list[Any]
) -> None:
    try:
        compiled = check_schema(schema)
    except ValidationFailed as refused:
        assert refused.details and refused.details[0]["loc"][0] == "schema"
        return
    kind = UserKind(KindRecord("K", 1, compiled.schema, None, (), "t", "test"))
    for document in [*documents, {}, {"a": documents}]:
        try:
            kind.validate(document)
        except ValidationFailed as refused:
            assert all(detail["loc"][0] in ("spec", "kind") for detail in refused.details)
