"""`configsvc promote SRC DST` and `configsvc export NS`, run as a user would."""

from __future__ import annotations

import json
import stat
from pathlib import Path

import httpx
import yaml
from cli.clitools import Cli, models_spec, put

STAGING_KEY = "sk-staging-secret-value"
PROD_KEY = "sk-old-secret-value"
LIMITS = {"limits": {"chat": {"requests_per_second": 5}}}


def seed(api: httpx.Client) -> None:
    put(api, "prod/chat-models", "ModelEndpoints", models_spec(api_key=PROD_KEY))
    put(api, "prod/only-prod", "RateLimits", LIMITS)
    put(api, "staging/chat-models", "ModelEndpoints", models_spec(api_key=STAGING_KEY, read=900))
    put(api, "staging/limits", "RateLimits", LIMITS)


def test_dry_run_shows_a_masked_diff_and_writes_nothing(cli: Cli, api: httpx.Client) -> None:
    seed(api)
    result = cli("promote", "staging", "prod", "--dry-run")
    assert result.code == 0, result
    out = result.out
    assert "--- prod/chat-models version 1" in out
    assert "+++ staging/chat-models version 1" in out
    assert "-        read: 600" in out and "+        read: 900" in out
    assert "+      api_key: ****  (changed)" in out  # the values themselves never shown
    assert "--- prod/limits (absent)" in out
    assert "would update  prod/chat-models  version 2" in out
    assert "would create  prod/limits  version 1" in out
    for secret in (STAGING_KEY, PROD_KEY):
        assert secret not in out + result.err
    assert api.get("/v1/configs/prod/chat-models").json()["version"] == 1
    assert api.get("/v1/configs/prod/limits").status_code == 404


def test_promote_asks_and_a_closed_stdin_means_no(cli: Cli, api: httpx.Client) -> None:
    seed(api)
    refused = cli("promote", "staging", "prod")  # stdin is empty, then closed
    assert refused.code == 1
    assert refused.err_lines[0].startswith("Promote 2 document(s) from staging to prod? [y/N]")
    assert refused.err_lines[-1].startswith("error: cancelled, nothing changed")
    assert api.get("/v1/configs/prod/chat-models").json()["version"] == 1
    answered = cli("promote", "staging", "prod", input="y\n")
    assert answered.code == 0, answered
    assert "updated       prod/chat-models  version 2" in answered.out


def test_promote_with_yes_copies_secrets_on_the_service(cli: Cli, api: httpx.Client) -> None:
    seed(api)
    done = cli("promote", "staging", "prod", "--yes", "-m", "release 42", "-o", "json")
    assert done.code == 0, done
    answer = json.loads(done.out)
    results = {item["name"]: item["result"] for item in answer["items"]}
    assert results == {"chat-models": "updated", "limits": "created"}
    assert all(isinstance(item["diff"], list) for item in answer["items"])
    assert STAGING_KEY not in done.out and "configsvc-secret" not in done.out
    prod = api.get("/v1/configs/prod/chat-models").json()
    assert prod["spec"]["endpoints"]["local"]["api_key"] == STAGING_KEY
    history = api.get("/v1/configs/prod/chat-models/history").json()["items"]
    assert history[0]["message"] == "promoted from staging/chat-models version 1: release 42"
    assert api.get("/v1/configs/prod/only-prod").status_code == 200
    again = cli("promote", "staging", "prod", "--yes")
    assert again.code == 0
    assert "nothing to promote" in again.err


def test_one_document_and_failures(cli: Cli, api: httpx.Client) -> None:
    seed(api)
    one = cli("promote", "staging", "prod", "--name", "limits", "--yes")
    assert one.code == 0, one
    assert "created       prod/limits  version 1" in one.out
    assert api.get("/v1/configs/prod/chat-models").json()["version"] == 1  # not named
    cli("promote", "staging", "prod", "-n", "absent", "--yes").failed_with(
        "prod/absent: missing: no document staging/absent"
    )
    assert cli("promote", "staging", "staging").code == 2
    assert cli("promote", "staging", "Prod").code == 2


def test_export_then_apply_takes_it_back(cli: Cli, api: httpx.Client, tmp_path: Path) -> None:
    seed(api)
    exported = cli("export", "prod", "--dir", "out")
    assert exported.code == 0, exported
    folder = cli.cwd / "out"
    files = sorted(path.name for path in folder.iterdir())
    assert files == ["chat-models.yaml", "only-prod.yaml"]
    text = (folder / "chat-models.yaml").read_text()
    assert text.startswith("# prod/chat-models version 1 (exported at revision ")
    assert PROD_KEY not in text and "api_key: '****'" in text
    assert stat.S_IMODE((folder / "chat-models.yaml").stat().st_mode) == 0o600
    applied = cli("apply", "-f", "out")
    assert applied.code == 0, applied
    assert applied.out.count("unchanged") == 2  # **** keeps the stored secret
    assert api.get("/v1/configs/prod/chat-models").json()["version"] == 1


def test_export_to_stdout_with_secrets(cli: Cli, api: httpx.Client) -> None:
    seed(api)
    masked = cli("export", "staging")
    assert masked.code == 0, masked
    documents = [doc for doc in yaml.safe_load_all(masked.out) if doc]
    assert [doc["name"] for doc in documents] == ["chat-models", "limits"]
    assert set(documents[0]) == {"namespace", "name", "kind", "spec"}
    assert STAGING_KEY not in masked.out
    shown = cli("export", "staging", "--show-secrets", "-o", "json")
    assert shown.code == 0, shown
    assert json.loads(shown.out)[0]["spec"]["endpoints"]["local"]["api_key"] == STAGING_KEY
    # into another namespace: the file carries the secret, so apply needs nothing stored
    moved = shown.out.replace('"namespace": "staging"', '"namespace": "qa"')
    (cli.cwd / "qa.json").write_text(moved)
    assert cli("apply", "-f", "qa.json").code == 0
    assert (
        api.get("/v1/configs/qa/chat-models").json()["spec"]
        == (api.get("/v1/configs/staging/chat-models").json()["spec"])
    )
