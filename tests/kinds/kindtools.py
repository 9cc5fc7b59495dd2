"""Schemas and documents of user kinds shared by the kinds tests."""

from __future__ import annotations

import copy
from typing import Any

AGENT_ROLES: dict[str, Any] = {
    "type": "object",
    "description": "Agent roles: skills and concurrency limits",
    "properties": {
        "roles": {
            "type": "object",
            "additionalProperties": {"$ref": "#/$defs/role"},
        }
    },
    "required": ["roles"],
    "additionalProperties": False,
    "$defs": {
        "role": {
            "type": "object",
            "properties": {
                "model": {"type": "string", "minLength": 1},
                "skills": {"type": "array", "items": {"type": "string"}, "uniqueItems": True},
                "max_concurrency": {"type": "integer", "minimum": 1, "maximum": 64},
                "api_token": {"type": "string", "x-configsvc-secret": True},
            },
            "required": ["model"],
            "additionalProperties": False,
        }
    },
}


def agent_roles(concurrency: int = 4, token: str = "tok-secret-1") -> dict[str, Any]:
    return {
        "roles": {
            "planner": {
                "model": "big",
                "skills": ["plan", "search"],
                "max_concurrency": concurrency,
                "api_token": token,
            },
            "coder": {"model": "codebooga-34b", "skills": ["code"]},
        }
    }


def schema_with(**changes: Any) -> dict[str, Any]:
    """AGENT_ROLES with the role's properties changed (None removes one)."""
    schema = copy.deepcopy(AGENT_ROLES)
    props = schema["$defs"]["role"]["properties"]
    for key, value in changes.items():
        if value is None:
            props.pop(key, None)
        else:
            props[key] = value
    return schema
