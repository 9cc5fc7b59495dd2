"""`configsvc rollout …`, run as the installed command against a real service."""

from __future__ import annotations

import json
from textwrap import dedent

import httpx
from cli.clitools import LIMITS_YAML, Cli

CANDIDATE_YAML = dedent(
    """\
    namespace: prod
    name: limits
    kind: RateLimits
    message: raise the chat limit
    spec:
      limits:
        chat: {requests_per_second: 8, burst: 10}
    """
)


def test_start_status_pause_resume_abort_and_promote(cli: Cli, api: httpx.Client) -> None:
    cli.write("limits.yaml", LIMITS_YAML)
    assert cli("apply", "-f", "limits.yaml").code == 0
    candidate = cli.write("candidate.yaml", CANDIDATE_YAML)
    args = ["--steps", "10,50,100", "--step-seconds", "300", "--label", "region=eu"]
    dry = cli("rollout", "start", "prod/limits", "-f", str(candidate), *args, "--dry-run")
    assert dry.code == 0 and dry.out.startswith("dry run: the candidate and the plan are valid")
    assert "rollout of version 2 over version 1: running" in dry.out
    cli("rollout", "status", "prod/limits").failed_with("never had a rollout")
    started = cli("rollout", "start", "prod/limits", "-f", str(candidate), *args,
                  "--abort-on-rejected", "1")  # fmt: skip
    assert started.code == 0, started.err
    first = started.out.splitlines()[0]
    assert first.startswith("prod/limits: rollout of version 2 over version 1: running, step 1")
    assert "(10 %; steps 10,50,100, 300 s each)" in first
    assert "only instances labelled region=eu" in started.out
    data = json.loads(cli("rollout", "status", "prod/limits", "-o", "json").out)
    assert data["state"] == "running" and data["match"] == {"labels": {"region": "eu"}}
    assert data["abort_on"] == {"rejected": 1}
    assert data["message"] == "raise the chat limit"
    assert "unchanged" in cli("apply", "-f", "limits.yaml").out  # equal: nothing to refuse
    changed = cli.write("changed.yaml", LIMITS_YAML.replace("burst: 10", "burst: 11"))
    cli("apply", "-f", str(changed)).failed_with("running rollout")
    cli("rollout", "start", "prod/limits", "-f", str(candidate)).failed_with("conflict", "running")
    assert cli("rollout", "pause", "prod/limits", "-m", "lunch").code == 0
    assert "paused: lunch" in cli("rollout", "status", "prod/limits").out
    assert cli("rollout", "resume", "prod/limits").code == 0
    aborted = cli("rollout", "abort", "prod/limits", "--reason", "p99 up")
    assert aborted.code == 0 and "reason: p99 up" in aborted.out
    rows = json.loads(cli("history", "prod/limits", "-o", "json").out)["items"]
    assert [r["message"] for r in rows[:4]] == ["aborted: p99 up", "resumed", "paused: lunch",
                                                "started"]  # fmt: skip
    assert cli("rollout", "start", "prod/limits", "-f", str(candidate)).code == 0
    promoted = json.loads(cli("rollout", "promote", "prod/limits", "-o", "json").out)
    assert promoted["state"] == "done" and promoted["version"] == 3
    assert api.get("/v1/configs/prod/limits").json()["version"] == 3


def test_refusals_are_one_line(cli: Cli, api: httpx.Client) -> None:
    cli.write("limits.yaml", LIMITS_YAML)
    assert cli("apply", "-f", "limits.yaml").code == 0
    cli("rollout", "status", "prod/limits").failed_with("never had a rollout")
    two = cli.write("two.yaml", CANDIDATE_YAML + "---\n" + CANDIDATE_YAML)
    cli("rollout", "start", "prod/limits", "-f", str(two)).failed_with("2 documents")
    other = cli.write("other.yaml", CANDIDATE_YAML.replace("name: limits", "name: other"))
    cli("rollout", "start", "prod/limits", "-f", str(other)).failed_with("'other'")
    candidate = cli.write("candidate.yaml", CANDIDATE_YAML)
    cli("rollout", "start", "prod/limits", "-f", str(candidate), "--steps", "10,50").failed_with(
        "steps", "100"
    )
    bad = cli("rollout", "start", "prod/limits", "-f", str(candidate), "--label", "eu")
    assert bad.code == 2 and "key=value" in bad.err
    assert api.get("/v1/configs/prod/limits/rollouts/current").status_code == 404


def test_rollback_steps_count_from_the_current_version_after_an_aborted_rollout(
    cli: Cli, api: httpx.Client
) -> None:
    cli.write("limits.yaml", LIMITS_YAML)
    assert cli("apply", "-f", "limits.yaml").code == 0
    cli.write("limits.yaml", LIMITS_YAML.replace("burst: 10", "burst: 11"))
    assert cli("apply", "-f", "limits.yaml").code == 0
    candidate = cli.write("candidate.yaml", CANDIDATE_YAML)
    assert cli("rollout", "start", "prod/limits", "-f", str(candidate)).code == 0
    assert cli("rollout", "abort", "prod/limits").code == 0  # version 3 was the candidate
    done = cli("rollback", "prod/limits", "--steps", "1", "--yes")
    assert done.code == 0, done.err
    assert "rolled back prod/limits to version 1: now version 4" in done.out
