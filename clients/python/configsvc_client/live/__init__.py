"""Live helpers: objects that re-read a live config document on every use, so that a
change pushed by configsvc takes effect on the next call, with no restart.

```python
models = client.bind("prod/chat-models", ModelEndpoints)
http = LiveHTTPClient(models)                     # timeouts, retries, fallbacks, api_key
llm = openai_async_client(models)                 # the openai SDK, routed the same way
limiter = LiveRateLimiter(client.bind("prod/limits", RateLimits), "chat")
keyring = LiveKeyring(client.bind("prod/keys", AuthKeys))
```
Each takes anything with a `.value` (a `LiveValue`, such as the SDK's `Binding`) or a
fixed document; the routing helpers also take a `LiveRouter`, to share breakers and
statistics between clients.
"""

from configsvc_client.live._breaker import BreakerState
from configsvc_client.live._core import ATTEMPTS_EXTENSION, ENDPOINT_EXTENSION
from configsvc_client.live._errors import (
    CircuitOpen,
    LiveError,
    LiveTimeout,
    NotConfigured,
    StreamInterrupted,
)
from configsvc_client.live._http import LiveHTTPClient
from configsvc_client.live._keyring import KeyInfo, LiveKeyring, hash_key
from configsvc_client.live._metrics import LiveMetrics
from configsvc_client.live._openai import openai_async_client, openai_client
from configsvc_client.live._ratelimit import LiveRateLimiter
from configsvc_client.live._router import LiveRouter, Target
from configsvc_client.live._status import EndpointStatus, LatencySummary, RouterStatus
from configsvc_client.live._sync import LiveSyncTransport
from configsvc_client.live._transport import LiveTransport
from configsvc_client.live._types import Fixed, LiveValue

__all__ = [
    "ATTEMPTS_EXTENSION",
    "ENDPOINT_EXTENSION",
    "BreakerState",
    "CircuitOpen",
    "EndpointStatus",
    "Fixed",
    "KeyInfo",
    "LatencySummary",
    "LiveError",
    "LiveHTTPClient",
    "LiveKeyring",
    "LiveMetrics",
    "LiveRateLimiter",
    "LiveRouter",
    "LiveSyncTransport",
    "LiveTimeout",
    "LiveTransport",
    "LiveValue",
    "NotConfigured",
    "RouterStatus",
    "StreamInterrupted",
    "Target",
    "hash_key",
    "openai_async_client",
    "openai_client",
]
