"""Secret values (`api_key`): clear only for tokens with `secrets`, `****` everywhere else."""

from __future__ import annotations

import httpx

from tests.api.helpers import (
    HOSTED_KEY,
    LOCAL_KEY,
    body,
    locs,
    model_spec,
    put_models,
)

MASK = "****"
SECRETS = (LOCAL_KEY, HOSTED_KEY)


def keys_of(doc: dict) -> set[str]:
    return {endpoint.get("api_key") for endpoint in doc["spec"]["endpoints"].values()}


def assert_no_secret(response: httpx.Response) -> None:
    for secret in SECRETS:
        assert secret not in response.text, f"{response.request.url} echoed a secret"


def test_admin_and_secrets_tokens_read_clear_values(service, api: httpx.Client, make_token) -> None:
    put_models(api, "prod", "models")
    assert keys_of(api.get("/v1/configs/prod/models").json()) == set(SECRETS)
    token = make_token("sdk", "reader", ["prod"], secrets=True)
    with service.client(token) as client:
        assert keys_of(client.get("/v1/configs/prod/models").json()) == set(SECRETS)
        assert keys_of(client.get("/v1/configs/prod").json()["items"][0]) == set(SECRETS)
        old = client.get("/v1/configs/prod/models/versions/1").json()
        assert keys_of(old) == set(SECRETS)


def test_tokens_without_secrets_read_masks_everywhere(
    service, api: httpx.Client, make_token
) -> None:
    put_models(api, "prod", "models", read=10)
    put_models(api, "prod", "models", read=20)
    reader = make_token("reader", "reader", ["prod"])
    writer = make_token("writer", "writer", ["prod"])
    for token in (reader, writer):
        with service.client(token) as client:
            got = client.get("/v1/configs/prod/models")
            assert keys_of(got.json()) == {MASK}
            assert_no_secret(got)
            listing = client.get("/v1/configs/prod")
            assert keys_of(listing.json()["items"][0]) == {MASK}
            assert_no_secret(listing)
            for version in (1, 2):
                old = client.get(f"/v1/configs/prod/models/versions/{version}")
                assert old.status_code == 200
                assert keys_of(old.json()) == {MASK}
                assert_no_secret(old)
            history = client.get("/v1/configs/prod/models/history")
            assert history.status_code == 200
            assert_no_secret(history)
            assert all("spec" not in item for item in history.json()["items"])
    # the admin's own history listing carries no specs either
    admin_history = api.get("/v1/configs/prod/models/history").json()["items"]
    assert all("spec" not in item for item in admin_history)


def test_writer_answers_are_masked(service, api: httpx.Client, make_token) -> None:
    writer = make_token("writer", "writer", ["prod"])
    with service.client(writer) as client:
        created = put_models(client, "prod", "models", read=10)
        assert created.status_code == 201
        assert keys_of(created.json()) == {MASK}
        assert_no_secret(created)
        dry = put_models(client, "prod", "models", read=11, params={"dry_run": "true"})
        assert keys_of(dry.json()) == {MASK}
        assert_no_secret(dry)
        put_models(client, "prod", "models", read=12)
        rolled = client.post("/v1/configs/prod/models/rollback", json={"to_version": 1})
        assert rolled.status_code == 200
        assert keys_of(rolled.json()) == {MASK}
        assert_no_secret(rolled)
    assert keys_of(api.get("/v1/configs/prod/models").json()) == set(SECRETS)


def test_masked_document_written_back_keeps_the_stored_keys(
    service, api: httpx.Client, make_token
) -> None:
    put_models(api, "prod", "models", read=10)
    writer = make_token("writer", "writer", ["prod"])
    with service.client(writer) as client:
        doc = client.get("/v1/configs/prod/models").json()
        assert keys_of(doc) == {MASK}
        unchanged = client.put("/v1/configs/prod/models", json=doc)
        assert unchanged.status_code == 200, unchanged.text
        assert unchanged.json()["version"] == 1, "a masked write-back of the same doc wrote"

        doc["spec"]["endpoints"]["local-34b"]["timeout"]["read"] = 99
        response = client.put("/v1/configs/prod/models", json=doc)
        assert response.status_code == 200, response.text
        assert response.json()["version"] == 2
        assert_no_secret(response)
    stored = api.get("/v1/configs/prod/models").json()
    assert keys_of(stored) == set(SECRETS)
    assert stored["spec"]["endpoints"]["local-34b"]["timeout"]["read"] == 99
    assert stored["spec"]["endpoints"]["local-34b"]["api_key"] == LOCAL_KEY


def test_writer_may_replace_a_secret(service, api: httpx.Client, make_token) -> None:
    put_models(api, "prod", "models")
    writer = make_token("writer", "writer", ["prod"])
    with service.client(writer) as client:
        doc = client.get("/v1/configs/prod/models").json()
        doc["spec"]["endpoints"]["hosted"]["api_key"] = "sk-rotated-key"
        response = client.put("/v1/configs/prod/models", json=doc)
        assert response.status_code == 200, response.text
        assert "sk-rotated-key" not in response.text
    stored = api.get("/v1/configs/prod/models").json()["spec"]["endpoints"]
    assert stored["hosted"]["api_key"] == "sk-rotated-key"
    assert stored["local-34b"]["api_key"] == LOCAL_KEY


def test_mask_where_nothing_is_stored_is_422(api: httpx.Client, unchanged) -> None:
    spec = model_spec()
    del spec["endpoints"]["hosted"]["api_key"]
    api.put("/v1/configs/prod/models", json=body("ModelEndpoints", spec))
    snapshot = unchanged("prod")
    # a mask for a new endpoint, for an endpoint without a key, and for a new document
    masked = model_spec()
    masked["endpoints"]["hosted"]["api_key"] = MASK
    masked["endpoints"]["extra"] = {"base_url": "http://x", "model": "m", "api_key": MASK}
    response = api.put("/v1/configs/prod/models", json=body("ModelEndpoints", masked))
    assert response.status_code == 422, response.text
    assert ["spec", "endpoints", "hosted", "api_key"] in locs(response)
    assert ["spec", "endpoints", "extra", "api_key"] in locs(response)
    new = api.put("/v1/configs/prod/new-models", json=body("ModelEndpoints", masked))
    assert new.status_code == 422
    dry = api.put(
        "/v1/configs/prod/new-models",
        params={"dry_run": "true"},
        json=body("ModelEndpoints", masked),
    )
    assert dry.status_code == 422
    snapshot.check()


def test_errors_never_echo_secrets(service, api: httpx.Client, make_token) -> None:
    put_models(api, "prod", "models")
    bad = model_spec()
    bad["endpoints"]["local-34b"]["api_key"] = 12345  # wrong type, stays out of the answer
    bad["endpoints"]["hosted"]["api_key"] = ["sk-in-a-list-secret"]
    bad["endpoints"]["local-34b"]["base_url"] = "ftp://" + LOCAL_KEY
    bad["default"] = HOSTED_KEY
    response = api.put("/v1/configs/prod/models", json=body("ModelEndpoints", bad))
    assert response.status_code == 422
    assert_no_secret(response)
    assert "sk-in-a-list-secret" not in response.text
    assert "12345" not in response.text
    reader = make_token("reader", "reader", ["prod"])
    with service.client(reader) as client:
        refused = put_models(client, "prod", "models")
        assert refused.status_code == 403
        assert_no_secret(refused)
    mismatch = api.put(
        "/v1/configs/prod/models", json=body("ModelEndpoints", model_spec(), name="other")
    )
    assert mismatch.status_code == 400
    assert_no_secret(mismatch)
    broken = api.put(
        "/v1/configs/prod/models",
        content=f'{{"kind": "ModelEndpoints", "spec": {{"api_key": "{LOCAL_KEY}"',
        headers={"Content-Type": "application/json"},
    )
    assert broken.status_code == 400
    assert_no_secret(broken)
