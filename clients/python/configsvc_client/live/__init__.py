"""Live helpers: objects that re-read a live config document on every use, so that a
change pushed by configsvc takes effect on the next call, with no restart.

```python
models = client.bind("prod/chat-models", ModelEndpoints)
http = LiveHTTPClient(models)                     # timeouts, retries, fallbacks, api_key
limiter = LiveRateLimiter(client.bind("prod/limits", RateLimits), "chat")
keyring = LiveKeyring(client.bind("prod/keys", AuthKeys))
```
Each takes anything with a `.value` (a `LiveValue`, such as the SDK's `Binding`) or a
fixed document.
"""

from configsvc_client.live._errors import LiveError, NotConfigured, StreamInterrupted
from configsvc_client.live._http import (
    ATTEMPTS_EXTENSION,
    ENDPOINT_EXTENSION,
    LiveHTTPClient,
    Target,
)
from configsvc_client.live._keyring import KeyInfo, LiveKeyring, hash_key
from configsvc_client.live._ratelimit import LiveRateLimiter
from configsvc_client.live._types import Fixed, LiveValue

__all__ = [
    "ATTEMPTS_EXTENSION",
    "ENDPOINT_EXTENSION",
    "Fixed",
    "KeyInfo",
    "LiveError",
    "LiveHTTPClient",
    "LiveKeyring",
    "LiveRateLimiter",
    "LiveValue",
    "NotConfigured",
    "StreamInterrupted",
    "Target",
    "hash_key",
]
