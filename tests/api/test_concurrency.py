"""Concurrent writers: compare-and-set has exactly one winner per round; nothing is lost."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx

from tests.api.helpers import body, rate_spec

WRITERS = 20
ROUNDS = 5


def _client(service) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=WRITERS, max_keepalive_connections=WRITERS)
    return httpx.AsyncClient(
        base_url=service.url,
        headers={"Authorization": f"Bearer {service.admin_token}"},
        limits=limits,
        timeout=30,
    )


async def test_compare_and_set_writers_have_one_winner_per_round(service) -> None:
    async with _client(service) as client:
        created = await client.put("/v1/configs/prod/limits", json=body("RateLimits", rate_spec(1)))
        assert created.status_code == 201
        for round_ in range(ROUNDS):
            current = await client.get("/v1/configs/prod/limits")
            tag = current.headers["etag"]
            version = current.json()["version"]
            start = asyncio.Event()

            base = 1000 * (round_ + 1)  # every writer of every round writes a distinct spec

            async def writer(
                index: int, tag: str = tag, start: asyncio.Event = start, base: int = base
            ) -> int:
                await start.wait()
                payload = body("RateLimits", rate_spec(base + index), message=f"writer {index}")
                response = await client.put(
                    "/v1/configs/prod/limits", json=payload, headers={"If-Match": tag}
                )
                assert response.status_code in (200, 412), response.text
                return response.status_code

            tasks = [asyncio.create_task(writer(i)) for i in range(WRITERS)]
            await asyncio.sleep(0)
            start.set()
            statuses = await asyncio.gather(*tasks)
            assert Counter(statuses) == {200: 1, 412: WRITERS - 1}, (round_, statuses)

            winner = statuses.index(200)
            after = (await client.get("/v1/configs/prod/limits")).json()
            assert after["version"] == version + 1
            assert after["spec"] == rate_spec(base + winner), "the stored spec is not the winner's"
            assert after["message"] == f"writer {winner}"

        history = (await client.get("/v1/configs/prod/limits/history")).json()["items"]
        assert [item["version"] for item in history] == list(range(ROUNDS + 1, 0, -1))


async def test_unconditional_writers_all_succeed_with_distinct_versions(service) -> None:
    async with _client(service) as client:
        start = asyncio.Event()

        async def writer(index: int) -> int:
            await start.wait()
            payload = body("RateLimits", rate_spec(100 + index), message=f"writer {index}")
            response = await client.put("/v1/configs/prod/limits", json=payload)
            assert response.status_code in (200, 201), response.text
            version: int = response.json()["version"]
            return version

        tasks = [asyncio.create_task(writer(i)) for i in range(WRITERS)]
        await asyncio.sleep(0)
        start.set()
        got = await asyncio.gather(*tasks)
        assert sorted(got) == list(range(1, WRITERS + 1)), got

        history = (await client.get("/v1/configs/prod/limits/history")).json()["items"]
        assert [item["version"] for item in history] == list(range(WRITERS, 0, -1))
        # every writer's update is in the history, under the version it was answered
        messages = {item["version"]: item["message"] for item in history}
        for index, version in enumerate(got):
            assert messages[version] == f"writer {index}"
            old = await client.get(f"/v1/configs/prod/limits/versions/{version}")
            assert old.json()["spec"] == rate_spec(100 + index)
        current = (await client.get("/v1/configs/prod/limits")).json()
        assert current["version"] == WRITERS
        assert current["spec"] == rate_spec(100 + got.index(WRITERS))


async def test_concurrent_creators_with_if_none_match_have_one_winner(service) -> None:
    async with _client(service) as client:
        start = asyncio.Event()

        async def creator(index: int) -> int:
            await start.wait()
            response = await client.put(
                "/v1/configs/prod/fresh",
                json=body("RateLimits", rate_spec(index + 1)),
                headers={"If-None-Match": "*"},
            )
            return response.status_code

        tasks = [asyncio.create_task(creator(i)) for i in range(WRITERS)]
        await asyncio.sleep(0)
        start.set()
        statuses = await asyncio.gather(*tasks)
        assert Counter(statuses) == {201: 1, 409: WRITERS - 1}, statuses
        history = (await client.get("/v1/configs/prod/fresh/history")).json()["items"]
        assert [item["version"] for item in history] == [1]


async def test_concurrent_read_modify_write_loses_no_update(service) -> None:
    """Writers that retry on 412 (as a careful client does) all land their increments."""
    async with _client(service) as client:
        await client.put("/v1/configs/prod/counter", json=body("RateLimits", rate_spec(1)))
        increments = 3

        async def incrementer() -> int:
            retries = 0
            for _ in range(increments):
                while True:
                    current = await client.get("/v1/configs/prod/counter")
                    rps = current.json()["spec"]["limits"]["chat"]["requests_per_second"]
                    response = await client.put(
                        "/v1/configs/prod/counter",
                        json=body("RateLimits", rate_spec(rps + 1)),
                        headers={"If-Match": current.headers["etag"]},
                    )
                    if response.status_code == 200:
                        break
                    assert response.status_code == 412, response.text
                    retries += 1
            return retries

        workers = 10
        await asyncio.gather(*(incrementer() for _ in range(workers)))
        final = (await client.get("/v1/configs/prod/counter")).json()
        assert final["spec"]["limits"]["chat"]["requests_per_second"] == 1 + workers * increments
        assert final["version"] == 1 + workers * increments
