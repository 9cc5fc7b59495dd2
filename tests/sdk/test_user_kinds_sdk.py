"""The SDK with user kinds (a real service): `bind(key)` with no model gives a read-only
mapping; `bind(key, Model)` takes any pydantic model, here one generated from the kind's
JSON Schema by the recipe of docs/kinds.md (`configsvc schemas --export DIR --spec`, then
datamodel-code-generator)."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
import yaml
from configsvc_client import ConfigClient
from support import RunningService

from tests.sdk.helpers import FAST, wait_until

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "kinds"
BIN = Path(sys.executable).parent


def apply_examples(admin: httpx.Client) -> None:
    for path in sorted((EXAMPLES / "kinds").glob("*.yaml")):
        kind = yaml.safe_load(path.read_text())
        body = {"schema": kind["schema"], "description": kind.get("description")}
        assert admin.put(f"/v1/schemas/{kind['kind']}", json=body).status_code in (200, 201)
    for path in sorted((EXAMPLES / "prod").glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        url = f"/v1/configs/{doc['namespace']}/{doc['name']}"
        assert admin.put(url, json=doc).status_code in (200, 201)


def generate_models(service: RunningService, folder: Path) -> ModuleType:
    """The documented recipe: export the spec schemas, generate pydantic models from one."""
    env = {**os.environ, "CONFIGSVC_URL": service.url, "CONFIGSVC_TOKEN": service.admin_token}
    exported = folder / "schemas"
    subprocess.run(
        [str(BIN / "configsvc"), "schemas", "--export", str(exported), "--spec"],
        check=True,
        env=env,
        capture_output=True,
        timeout=60,
    )
    target = folder / "mcp_servers.py"
    subprocess.run(
        [
            str(BIN / "datamodel-codegen"),
            "--input", str(exported / "McpServers.json"),
            "--input-file-type", "jsonschema",
            "--output-model-type", "pydantic_v2.BaseModel",
            "--class-name", "McpServers",
            "--extra-fields", "ignore",
            "--target-python-version", "3.11",
            "--formatters", "black",
            "--disable-timestamp",
            "--output", str(target),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )  # fmt: skip
    spec = importlib.util.spec_from_file_location("generated_mcp_servers", target)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its annotations are resolved by module name
    spec.loader.exec_module(module)
    return module


def test_bind_with_no_model_and_with_a_generated_one(
    sdk_service: RunningService, admin: httpx.Client, tmp_path: Path
) -> None:
    apply_examples(admin)
    generated = generate_models(sdk_service, tmp_path)
    client = ConfigClient(
        sdk_service.url, sdk_service.admin_token, namespaces=["prod"], options=FAST
    )
    agents = client.bind("prod/agents")
    servers = client.bind("prod/mcp-servers", generated.McpServers)
    seen: list[Any] = []
    agents.on_change(lambda _old, new: seen.append(new))
    client.start()
    try:
        assert agents.value is not None
        planner = agents.value["roles"]["planner"]
        assert planner["max_concurrency"] == 4 and planner["skills"] == ("plan", "search")
        with pytest.raises(TypeError):
            agents.value["roles"]["planner"]["max_concurrency"] = 99  # type: ignore[index]
        assert dict(agents.value).keys() == {"roles"}
        assert servers.value is not None
        search = servers.value.servers["search"]
        assert search.max_retries == 3 and search.token == "mcp-search-token-example"
        assert str(search.url).startswith("https://search.internal.example")

        doc = yaml.safe_load((EXAMPLES / "prod" / "agents.yaml").read_text())
        doc["spec"]["roles"]["planner"]["max_concurrency"] = 8
        assert admin.put("/v1/configs/prod/agents", json=doc).status_code == 200
        wait_until(
            lambda: (
                agents.value is not None
                and agents.value["roles"]["planner"]["max_concurrency"] == 8
            )
        )
        assert agents.value["roles"]["planner"]["max_concurrency"] == 8
    finally:
        client.stop()
