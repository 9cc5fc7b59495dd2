"""Two services with different key prefixes share one etcd without seeing each other."""

from __future__ import annotations

from collections.abc import Callable

from support import RunningService


def test_key_prefixes_isolate_services(service_factory: Callable[..., RunningService]) -> None:
    blue = service_factory(key_prefix="/blue/")
    green = service_factory(key_prefix="/green/")
    doc = {"kind": "RateLimits", "spec": {"limits": {"chat": {"requests_per_second": 1}}}}
    with blue.client() as blue_api, green.client() as green_api:
        assert blue_api.put("/v1/configs/prod/limits", json=doc).status_code == 201
        assert green_api.get("/v1/configs/prod/limits").status_code == 404
        assert green_api.get("/v1/namespaces").json()["items"] == []
        assert blue_api.get("/v1/namespaces").json()["items"] == ["prod"]
