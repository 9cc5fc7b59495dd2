"""Exceptions the client raises.

```
ConfigError                  base of every error this package raises
└── ConfigUnavailable        start() found neither the service nor a cache in time
```
Problems after start (a dropped stream, a rejected document, a revoked token) are not
raised: the last good value stays and `ConfigClient.status.error` says what happened.
"""

from __future__ import annotations


class ConfigError(Exception):
    """Base of every error raised by `configsvc_client`."""


class ConfigUnavailable(ConfigError):
    """No value could be obtained within `start_timeout`: no service answered and no
    cache was found. The message holds the last error seen."""
