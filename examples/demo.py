"""Live configuration demo: change an LLM gateway's settings while requests flow.

    python examples/demo.py          # ~15 s; everything on free ports in a temporary dir
    python examples/demo.py --keep   # leave it all running at the end (Ctrl-C stops it)

It starts `configsvc serve` (embedded etcd), two fake model servers (`local-34b`, which
needs 0.6 s per answer, and `hosted`, which requires an API key), and the example gateway.
A background loop sends a chat request every 0.1 s. Then, through the `configsvc` CLI
only, it raises the local model's read timeout, switches the default endpoint, tightens
and restores a rate limit, and rotates a caller key (active -> retiring -> revoked). After
each change it waits for the first request that shows the new behaviour. Finally it
breaks a streamed answer mid-way and falls back to a non-streaming call. The gateway's
process is the same from start to end: nothing restarts.

Exit status 0 when every change was seen taking effect, 1 otherwise.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

EXAMPLES = Path(__file__).resolve().parent
CONFIG = EXAMPLES / "llm_gateway" / "config"
LOCAL_LATENCY = 0.6
TRAFFIC_INTERVAL = 0.1
EFFECT_TIMEOUT = 15.0
READY_TIMEOUT = 30.0
ADMIN_TOKEN = "demo-admin-token-0123456789"
KEY_A_OLD = "sk-demo-team-a-2026-10"
KEY_A_NEW = "sk-demo-team-a-2026-11"
KEY_A_NEW_SHA256 = "af1aefa7c2993a80428be1705bfbf9e29de6baefcc691286dfa0b5704e4cdb00"
KEY_B = "sk-demo-team-b"


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def configsvc_command() -> list[str]:
    """The `configsvc` console script of this Python, else the one on PATH."""
    script = Path(sys.executable).with_name("configsvc")
    return [str(script)] if script.exists() else [shutil.which("configsvc") or "configsvc"]


def say(text: str = "") -> None:
    print(text, flush=True)


@dataclass
class Hit:
    """One request of the background traffic."""

    started: float
    key: str
    status: int
    endpoint: str
    attempts: str
    warning: str | None
    seconds: float


class Demo:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.logs = workdir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        self.ports = {name: free_port() for name in ("configsvc", "local", "hosted", "gateway")}
        self.configsvc_url = f"http://127.0.0.1:{self.ports['configsvc']}"
        self.gateway_url = f"http://127.0.0.1:{self.ports['gateway']}"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CONFIGSVC_")}
        self.env["PYTHONUNBUFFERED"] = "1"
        self.procs: dict[str, subprocess.Popen[bytes]] = {}
        self.docs: dict[str, dict[str, Any]] = {}
        self.hits: list[Hit] = []
        self.traffic_key = KEY_A_OLD
        self.stop_traffic = threading.Event()
        self.http = httpx.Client(timeout=30)

    # -- processes ------------------------------------------------------------------

    def spawn(self, name: str, args: list[str], env: dict[str, str] | None = None) -> None:
        log = (self.logs / f"{name}.log").open("wb")
        self.procs[name] = subprocess.Popen(
            args, stdout=log, stderr=subprocess.STDOUT, env={**self.env, **(env or {})}
        )

    def wait_ready(self, name: str, url: str) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.procs[name].poll() is not None:
                raise RuntimeError(f"{name} exited; see {self.logs / name}.log")
            with contextlib.suppress(httpx.HTTPError):
                if self.http.get(url, timeout=1).status_code == 200:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"{name} did not become ready; see {self.logs / name}.log")

    def stop(self) -> None:
        self.stop_traffic.set()
        for proc in reversed(self.procs.values()):
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs.values():
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.http.close()

    def cli(self, *args: str) -> str:
        """Run the configsvc CLI; returns its stdout."""
        command = [*configsvc_command(), "--url", self.configsvc_url, "--token", ADMIN_TOKEN, *args]
        done = subprocess.run(command, capture_output=True, text=True, env=self.env, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"configsvc {' '.join(args)}: {done.stderr.strip()}")
        return done.stdout.strip()

    def start(self) -> None:
        p = self.ports
        say(f"* configsvc serve on :{p['configsvc']} (embedded etcd in {self.workdir / 'data'})")
        self.spawn(
            "configsvc",
            [
                *configsvc_command(),
                "serve",
                "--port",
                str(p["configsvc"]),
                "--data-dir",
                str(self.workdir / "data"),
            ],
            env={"CONFIGSVC_ADMIN_TOKEN": ADMIN_TOKEN},
        )
        fake = [sys.executable, str(EXAMPLES / "fake_llm.py")]
        say(
            f"* fake model servers: local-34b on :{p['local']} ({LOCAL_LATENCY} s per answer), "
            f"hosted on :{p['hosted']} (needs its API key)"
        )
        self.spawn(
            "local",
            [
                *fake,
                "--port",
                str(p["local"]),
                "--name",
                "local-34b",
                "--latency",
                str(LOCAL_LATENCY),
            ],
        )
        self.spawn(
            "hosted",
            [*fake, "--port", str(p["hosted"]), "--name", "hosted", "--api-key", "sk-hosted-demo"],
        )
        self.wait_ready("configsvc", f"{self.configsvc_url}/readyz")
        self.wait_ready("local", f"http://127.0.0.1:{p['local']}/admin/stats")
        self.wait_ready("hosted", f"http://127.0.0.1:{p['hosted']}/admin/stats")

        say(f"$ configsvc apply -f {self.workdir / 'config'}")
        for path in sorted(CONFIG.glob("*.yaml")):
            text = path.read_text()
            text = text.replace("127.0.0.1:9001", f"127.0.0.1:{p['local']}")
            text = text.replace("127.0.0.1:9002", f"127.0.0.1:{p['hosted']}")
            self.docs[path.stem] = yaml.safe_load(text)
            self.write(path.stem)
        say(indent(self.cli("apply", "-f", str(self.workdir / "config"))))
        say("$ configsvc tokens create gateway --role reader --namespace prod --secrets")
        token = self.cli(
            "tokens", "create", "gateway", "--role", "reader", "--namespace", "prod", "--secrets"
        )
        say(f"* gateway on :{p['gateway']}, following prod/chat-models, prod/limits, prod/keys")
        self.spawn(
            "gateway",
            [
                sys.executable,
                str(EXAMPLES / "llm_gateway"),
                "--port",
                str(p["gateway"]),
                "--url",
                self.configsvc_url,
                "--token",
                token,
            ],
        )
        self.wait_ready("gateway", f"{self.gateway_url}/healthz")
        self.gateway_pid = self.procs["gateway"].pid
        threading.Thread(target=self.traffic, daemon=True).start()

    # -- traffic --------------------------------------------------------------------

    def chat(self, key: str, *, stream: bool = False, content: str = "hello") -> httpx.Response:
        body = {
            "model": "any",
            "stream": stream,
            "messages": [{"role": "user", "content": content}],
        }
        return self.http.post(
            f"{self.gateway_url}/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {key}"},
        )

    def traffic(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self.stop_traffic.is_set():
                key, started = self.traffic_key, time.monotonic()
                try:
                    response = client.post(
                        f"{self.gateway_url}/v1/chat/completions",
                        json={"messages": [{"role": "user", "content": "ping"}]},
                        headers={"Authorization": f"Bearer {key}"},
                    )
                except httpx.HTTPError:
                    continue
                self.hits.append(
                    Hit(
                        started,
                        key,
                        response.status_code,
                        response.headers.get("x-gateway-endpoint", "-"),
                        response.headers.get("x-gateway-attempts", "-"),
                        response.headers.get("warning"),
                        time.monotonic() - started,
                    )
                )
                self.stop_traffic.wait(TRAFFIC_INTERVAL)

    def expect(self, since: float | None, what: str, check: Callable[[Hit], bool]) -> Hit:
        """Wait for the first request started after `since` that satisfies `check`."""
        deadline = time.monotonic() + EFFECT_TIMEOUT
        while time.monotonic() < deadline:
            for hit in list(self.hits):
                if (since is None or hit.started >= since) and check(hit):
                    say(f"  -> {what}: {describe(hit, since)}")
                    return hit
            time.sleep(0.05)
        raise RuntimeError(f"not seen within {EFFECT_TIMEOUT} s: {what}")

    # -- changes --------------------------------------------------------------------

    def write(self, name: str) -> Path:
        path = self.workdir / "config" / f"{name}.yaml"
        path.parent.mkdir(exist_ok=True)
        path.write_text(yaml.safe_dump(self.docs[name], sort_keys=False))
        return path

    def change(self, name: str, message: str, edit: Callable[[dict[str, Any]], None]) -> float:
        """Edit a document's spec, apply it with the CLI; returns when it was applied."""
        doc = copy.deepcopy(self.docs[name])
        edit(doc["spec"])
        doc["message"] = message
        self.docs[name] = doc
        path = self.write(name)
        say(f"\n$ configsvc apply -f {path.name}    # {message}")
        output = self.cli("apply", "-f", str(path))
        applied = time.monotonic()
        say(indent(output))
        return applied

    def run(self) -> None:
        say("\n# 0. Before any change: the local model needs 0.6 s, its read timeout is 0.3 s")
        self.expect(
            None,
            "local-34b times out twice, hosted answers",
            lambda h: h.status == 200 and h.endpoint == "hosted" and h.attempts == "3",
        )

        say("\n# 1. Raise the read timeout of local-34b to 5 s")
        since = self.change(
            "chat-models",
            "raise read timeout for the local 34B model",
            lambda s: s["endpoints"]["local-34b"]["timeout"].update(read=5),
        )
        self.expect(
            since,
            "the same gateway now waits for local-34b",
            lambda h: h.status == 200 and h.endpoint == "local-34b",
        )

        say("\n# 2. Make `hosted` the default endpoint")
        since = self.change(
            "chat-models",
            "switch default to hosted",
            lambda s: s.update(default="hosted", fallbacks=["local-34b"]),
        )
        self.expect(
            since,
            "requests go to hosted, with its api_key",
            lambda h: h.status == 200 and h.endpoint == "hosted" and h.attempts == "1",
        )
        stats = self.http.get(f"http://127.0.0.1:{self.ports['hosted']}/admin/stats").json()
        assert stats["last_api_key"] == "sk-hosted-demo", stats

        say("\n# 3. Tighten the `chat` rate limit to 60 a minute, bursts of 2")
        since = self.change(
            "limits",
            "tighten chat to 60/min",
            lambda s: s["limits"].update(chat={"requests_per_minute": 60, "burst": 2}),
        )
        time.sleep(0.2)  # the background traffic is limited too; show a fresh key's burst
        statuses = sorted(self.chat(KEY_B).status_code for _ in range(5))
        say(f"  -> 5 quick requests with team-b's key: {statuses}")
        if statuses != [200, 200, 429, 429, 429]:
            raise RuntimeError(f"expected 2 x 200 and 3 x 429, got {statuses}")
        self.expect(since, "the background traffic is limited too", lambda h: h.status == 429)
        since = self.change(
            "limits",
            "restore chat limit",
            lambda s: s["limits"].update(chat={"requests_per_second": 20, "burst": 20}),
        )
        self.expect(
            since,
            "restored (each bucket refills at the new rate, no free burst)",
            lambda h: h.status == 200,
        )

        say("\n# 4. Rotate team-a's key: add the new one, mark the old one retiring")
        new_key = {
            "id": "team-a-2026-11",
            "sha256": KEY_A_NEW_SHA256,
            "scopes": ["chat"],
            "state": "active",
        }

        def rotate(spec: dict[str, Any]) -> None:
            spec["keys"][0]["state"] = "retiring"
            spec["keys"].append(new_key)

        since = self.change("keys", "rotate team-a: new key, old retiring", rotate)
        hit = self.expect(
            since,
            "the old key still works, with a warning",
            lambda h: h.status == 200 and h.warning is not None,
        )
        say(f"     Warning: {hit.warning}")
        self.traffic_key = KEY_A_NEW
        self.expect(
            time.monotonic(),
            "the new key works",
            lambda h: h.status == 200 and h.key == KEY_A_NEW and h.warning is None,
        )
        since = self.change(
            "keys", "revoke team-a's old key", lambda s: s["keys"][0].update(state="revoked")
        )
        response = self.chat(KEY_A_OLD)
        say(
            f"  -> the old key now: HTTP {response.status_code} "
            f"{response.json()['error']['message']!r}"
        )
        if response.status_code != 401:
            raise RuntimeError("the revoked key was accepted")
        self.expect(since, "the new key still works", lambda h: h.status == 200)

        say("\n# 5. Streaming, and a stream that breaks mid-way")
        say(f"  -> streamed: {self.stream_text(KEY_A_NEW)!r}")
        admin = f"http://127.0.0.1:{self.ports['hosted']}/admin/behaviour"
        self.http.post(admin, json={"break_after": 3})
        try:
            text = self.stream_text(KEY_A_NEW)
        except StreamBroke as exc:
            say(f"  -> the stream broke: {exc}")
            response = self.chat(KEY_A_NEW, content="ping (no stream)")
            text = response.json()["choices"][0]["message"]["content"]
            say(f"  -> fell back to a non-streaming call: {text!r}")
        else:
            raise RuntimeError(f"the stream did not break: {text!r}")
        self.http.post(admin, json={"break_after": 0, "fail_next": 0})
        say(
            "  -> a stream that breaks before its first byte: the router falls over to the "
            f"next try, and the caller sees none of it: {self.stream_text(KEY_A_NEW)!r}"
        )
        self.http.post(admin, json={"break_after": ""})

        gateway = self.procs["gateway"]
        if gateway.poll() is not None or gateway.pid != self.gateway_pid:
            raise RuntimeError("the gateway restarted")
        counts: dict[int, int] = {}
        for h in self.hits:
            counts[h.status] = counts.get(h.status, 0) + 1
        say(
            f"\nThe gateway (pid {gateway.pid}) was never restarted; background traffic: "
            f"{len(self.hits)} requests, by status {dict(sorted(counts.items()))}."
        )

    def stream_text(self, key: str) -> str:
        body = {"stream": True, "messages": [{"role": "user", "content": "stream me"}]}
        text = ""
        with self.http.stream(
            "POST",
            f"{self.gateway_url}/v1/chat/completions",
            json=body,
            headers={"Authorization": f"Bearer {key}"},
        ) as response:
            for line in response.iter_lines():
                if not line.startswith("data: ") or line == "data: [DONE]":
                    continue
                chunk = json.loads(line.removeprefix("data: "))
                if "error" in chunk:
                    raise StreamBroke(chunk["error"]["message"])
                text += chunk["choices"][0]["delta"].get("content") or ""
        return text


class StreamBroke(Exception):
    """The gateway ended a stream with an error chunk."""


def describe(hit: Hit, since: float | None) -> str:
    """One request, as the demo prints it."""
    if hit.status == 200:
        tries = "1 try" if hit.attempts == "1" else f"{hit.attempts} tries"
        text = f"HTTP 200 from {hit.endpoint} after {tries}, {hit.seconds:.2f} s"
    else:
        text = f"HTTP {hit.status}"
    if since is not None:
        text += f" (answered {hit.started + hit.seconds - since:.2f} s after the change)"
    return text


def indent(text: str) -> str:
    return "\n".join(f"    {line}" for line in text.splitlines())


@contextlib.contextmanager
def workdir(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="configsvc-demo-"))
    try:
        yield path
    finally:
        if not keep:
            shutil.rmtree(path, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep running at the end")
    args = parser.parse_args(argv)
    # Stop the servers on SIGTERM too (SystemExit runs the clean-up below).
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))
    began = time.monotonic()
    with workdir(args.keep) as path:
        demo = Demo(path)
        try:
            demo.start()
            demo.run()
            say(f"Done in {time.monotonic() - began:.1f} s.")
            if args.keep:
                say(
                    f"\nStill running (logs in {demo.logs}); configsvc at {demo.configsvc_url} "
                    f"(token {ADMIN_TOKEN}), gateway at {demo.gateway_url}. Ctrl-C to stop."
                )
                with contextlib.suppress(KeyboardInterrupt):
                    demo.stop_traffic.wait()
            return 0
        except (RuntimeError, AssertionError, httpx.HTTPError) as exc:
            say(f"\nDEMO FAILED: {exc}")
            for log in sorted(demo.logs.glob("*.log")):
                tail = log.read_text(errors="replace").splitlines()[-15:]
                say(f"--- {log.name} (last lines)\n" + "\n".join(tail))
            return 1
        finally:
            demo.stop()


if __name__ == "__main__":
    sys.exit(main())
