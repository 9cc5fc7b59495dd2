"""Reports as the service takes them: shape, bounds, strictness, scope (pure logic)."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from configsvc_schemas.wire import (
    MAX_LABEL_VALUE_LENGTH,
    MAX_LABELS,
    MAX_REPORT_DOCUMENTS,
    MAX_REPORT_ERROR_LENGTH,
    MAX_REPORT_INTERVAL,
    MAX_REPORT_NAMESPACES,
    MIN_REPORT_INTERVAL,
    REPORT_MODES,
    Role,
    make_instance_id,
)

from configsvc.auth import Principal
from configsvc.errors import ApiError, Forbidden, ValidationFailed
from configsvc.fleet.report import check_scope, parse_report
from tests.fleet.helpers import applied, report


def refused(body: Any) -> list[Any]:
    """The `loc`s of the 422 that `body` gets."""
    with pytest.raises(ValidationFailed) as caught:
        parse_report(body)
    return [detail["loc"] for detail in caught.value.details]


def test_a_valid_report_is_normalised_and_unknown_fields_are_not_kept() -> None:
    body = report("h-1-ab", namespaces=["staging", "prod"], future_field={"x": 1})
    body["documents"]["prod/limits"]["later"] = "ignored"
    parsed = parse_report(body)
    assert parsed.instance == "h-1-ab"
    assert parsed.namespaces == {"prod", "staging"}
    assert parsed.content["namespaces"] == ["prod", "staging"]  # sorted: order is no change
    assert "future_field" not in parsed.content and "instance" not in parsed.content
    assert parsed.content["documents"]["prod/limits"] == applied(1)
    again = parse_report(report("h-1-ab", namespaces=["prod", "staging"]))
    assert again.content_bytes == parsed.content_bytes


@pytest.mark.parametrize(
    ("change", "where"),
    [
        ({"instance": "-starts-badly"}, ["instance"]),
        ({"instance": "a" * 129}, ["instance"]),
        ({"instance": "has/slash"}, ["instance"]),
        ({"app": "bad app"}, ["app"]),
        ({"mode": "stopped"}, ["mode"]),
        ({"pid": "4242"}, ["pid"]),  # strict: no numbers as strings
        ({"pid": -1}, ["pid"]),
        ({"report_interval": MIN_REPORT_INTERVAL / 2}, ["report_interval"]),
        ({"report_interval": MAX_REPORT_INTERVAL + 1}, ["report_interval"]),
        ({"report_interval": True}, ["report_interval"]),
        ({"namespaces": []}, ["namespaces"]),
        ({"namespaces": ["prod", "prod"]}, ["namespaces"]),
        ({"namespaces": ["Prod"]}, ["namespaces"]),
        ({"host": "line\nbreak"}, ["host"]),
        ({"sdk": "x" * 256}, ["sdk"]),
        ({"labels": {"ok": "line\nbreak"}}, ["labels"]),
        ({"labels": {"bad key": "v"}}, ["labels"]),
        ({"labels": {"k": "v" * (MAX_LABEL_VALUE_LENGTH + 1)}}, ["labels"]),
        ({"labels": {f"k{n}": "v" for n in range(MAX_LABELS + 1)}}, ["labels"]),
        ({"documents": {"prod/limits": {"version": "1", "revision": 1}}}, ["documents"]),
        ({"documents": {"prod/limits": applied(1, at="yesterday")}}, ["documents"]),
        ({"documents": {"staging/limits": applied(1)}}, ["documents", "staging/limits"]),
        ({"documents": {"no-slash": applied(1)}}, ["documents", "no-slash"]),
        ({"rejected": {"prod/x": {"version": 1, "revision": 2}}}, ["rejected"]),
    ],
)
def test_each_rule_refuses_with_the_field_path(change: dict[str, Any], where: list[str]) -> None:
    body = {**report("h-1-ab"), **change}
    locs = refused(body)
    assert any(loc[: len(where)] == where for loc in locs), locs


def test_bounds_hold_at_the_limit_and_refuse_one_past_it() -> None:
    many = {f"prod/d{n}": applied(n) for n in range(MAX_REPORT_DOCUMENTS)}
    parse_report(report("h-1-ab", documents=many))
    refused(report("h-1-ab", documents={**many, "prod/one-more": applied(1)}))
    error = {"version": 2, "revision": 3, "error": "e" * MAX_REPORT_ERROR_LENGTH}
    parse_report(report("h-1-ab", rejected={"prod/limits": error}))
    longer = {**error, "error": error["error"] + "e"}
    refused(report("h-1-ab", rejected={"prod/limits": longer}))
    namespaces = [f"ns{n}" for n in range(MAX_REPORT_NAMESPACES)]
    parse_report(report("h-1-ab", namespaces=namespaces, documents={}))
    refused(report("h-1-ab", namespaces=[*namespaces, "one-more"], documents={}))
    parse_report(report("a" * 128))
    for mode in REPORT_MODES:
        parse_report(report("h-1-ab", mode=mode))


def test_not_an_object_or_missing_fields() -> None:
    for body in ([], "report", None, {}):
        with pytest.raises(ValidationFailed):
            parse_report(body)
    body = copy.deepcopy(report("h-1-ab"))
    del body["documents"]
    assert ["documents"] in refused(body)


def test_a_token_reports_only_for_namespaces_it_may_read() -> None:
    parsed = parse_report(report("h-1-ab", namespaces=["prod", "team-a-x"], documents={}))
    check_scope(Principal("gw", Role.READER, ("prod", "team-a-*"), False), parsed)
    with pytest.raises(Forbidden) as caught:
        check_scope(Principal("gw", Role.READER, ("prod",), False), parsed)
    assert isinstance(caught.value, ApiError) and "team-a-x" in caught.value.message


def test_default_instance_ids_are_valid_whatever_the_host_name() -> None:
    for host in ("gw-1.eu.internal", "UPPER_case host", "", "-.", "é" * 300):
        instance = make_instance_id(host, 4_194_304, "0123abcd")
        parse_report(report(instance))
        assert instance.endswith("-4194304-0123abcd")
