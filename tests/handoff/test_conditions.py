"""MQL conditions as data: what parses, and errors that name the bad part by its path."""

from __future__ import annotations

from typing import Any

import pytest

from handoff.conditions import parse_conditions
from handoff.requirements import parse_requirements
from tenants.errors import ValidationFailed

from .conftest import BANT, CLICKED_TWICE_BIG


def _error(value: Any, parse: Any = parse_conditions) -> ValidationFailed:
    with pytest.raises(ValidationFailed) as caught:
        parse(value)
    return caught.value


def test_a_valid_tree_parses_with_its_leaves_in_order():
    # when
    tree = parse_conditions(
        {
            "mode": "score",
            "threshold": 30,
            "conditions": [
                {"kind": "industry", "values": ["IT"], "points": 10},
                {
                    "kind": "any",
                    "points": 20,
                    "conditions": [
                        {"kind": "titleContains", "value": "部長"},
                        {"kind": "attribute", "key": "budget", "op": "exists"},
                    ],
                },
            ],
        }
    )
    # then
    assert tree.mode == "score"
    assert tree.threshold == 30
    assert [leaf.path for leaf in tree.leaves] == [
        "mqlConditions.conditions[0]",
        "mqlConditions.conditions[1].conditions[0]",
        "mqlConditions.conditions[1].conditions[1]",
    ]


def test_an_empty_object_is_an_empty_tree_that_qualifies_nobody():
    assert parse_conditions({}).is_empty


@pytest.mark.parametrize(
    ("value", "field"),
    [
        ([], "mqlConditions"),
        ({"mode": "most"}, "mqlConditions.mode"),
        ({"mode": "all", "conditions": []}, "mqlConditions.conditions"),
        ({"conditions": [{"kind": "eval", "value": "1"}]}, "mqlConditions.conditions[0].kind"),
        ({"conditions": [{"kind": "employeeCount", "op": "gt", "value": 1}]},
         "mqlConditions.conditions[0].op"),
        ({"conditions": [{"kind": "employeeCount", "op": "between", "min": 9, "max": 1}]},
         "mqlConditions.conditions[0].max"),
        ({"conditions": [{"kind": "employeeCount", "op": "gte", "value": "50"}]},
         "mqlConditions.conditions[0].value"),
        ({"conditions": [{"kind": "industry", "values": []}]},
         "mqlConditions.conditions[0].values"),
        ({"conditions": [{"kind": "industry", "values": ["IT", "a\x00b"]}]},
         "mqlConditions.conditions[0].values[1]"),
        ({"conditions": [{"kind": "titleContains", "value": "x" * 201}]},
         "mqlConditions.conditions[0].value"),
        ({"conditions": [{"kind": "attribute", "key": "a b", "op": "exists"}]},
         "mqlConditions.conditions[0].key"),
        ({"conditions": [{"kind": "attribute", "key": "plan", "op": "equals"}]},
         "mqlConditions.conditions[0].value"),
        (
            {"conditions": [CLICKED_TWICE_BIG["conditions"][0], CLICKED_TWICE_BIG["conditions"][1],
                            {"kind": "activity", "activity": "call", "days": 0, "atLeast": 1}]},
            "mqlConditions.conditions[2].days",
        ),
        ({"conditions": [{"kind": "activity", "activity": "emailReply", "days": 3, "atLeast": 1}]},
         "mqlConditions.conditions[0].activity"),
        ({"conditions": [{"kind": "activity", "activity": "call", "days": 3, "atLeast": 1,
                          "extra": 1}]},
         "mqlConditions.conditions[0].extra"),
        ({"conditions": [{"kind": "industry", "values": ["IT"], "points": 3}]},
         "mqlConditions.conditions[0].points"),
        ({"mode": "score", "conditions": [{"kind": "industry", "values": ["IT"]}], "threshold": 1},
         "mqlConditions.conditions[0].points"),
        ({"mode": "score", "conditions": [{"kind": "industry", "values": ["IT"], "points": 1}]},
         "mqlConditions.threshold"),
        ({"conditions": [{"kind": "any", "conditions": [{"kind": "all", "conditions": [
            {"kind": "any", "conditions": [{"kind": "industry", "values": ["IT"]}]}]}]}]},
         "mqlConditions.conditions[0].conditions[0].conditions[0]"),
        ({"conditions": [{"kind": "industry", "values": ["IT"]}] * 31},
         "mqlConditions.conditions[30]"),
    ],
)  # fmt: skip
def test_each_bad_part_is_named_by_its_path(value, field):
    # when
    error = _error(value)
    # then
    assert error.field == field
    assert error.message.startswith(field + ":")


def test_sql_requirements_parse_and_name_their_bad_parts():
    requirements = parse_requirements(BANT)
    assert requirements.activity is not None
    assert requirements.activity.activity == "connectedCall"
    assert requirements.required_fields == ("budget", "authority", "need", "timeline")
    assert _error({"requiredFields": ["ok", "no way"]}, parse_requirements).field == (
        "sqlRequirements.requiredFields[1]"
    )
    assert _error({"activity": {"activity": "fax"}}, parse_requirements).field == (
        "sqlRequirements.activity.activity"
    )
    assert _error({"activity": {"activity": "call", "days": 0}}, parse_requirements).field == (
        "sqlRequirements.activity.days"
    )
    assert _error({"bant": True}, parse_requirements).field == "sqlRequirements.bant"
