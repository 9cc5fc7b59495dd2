"""configsvc_client: live, typed configuration from configsvc.

```python
from configsvc_client import ConfigClient
from configsvc_client.kinds import ModelEndpoints

client = ConfigClient("http://127.0.0.1:8080", namespaces=["prod"], cache_dir=".configsvc-cache")
models = client.bind("prod/chat-models", ModelEndpoints)
client.start()                   # or: async with ConfigClient(...) as client:
models.value                     # always the latest good value
```
"""

from configsvc_client._binding import Binding
from configsvc_client._client import ConfigClient
from configsvc_client._errors import ConfigError, ConfigUnavailable
from configsvc_client._options import ClientOptions, ReportOptions
from configsvc_client._status import ClientStatus, Mode
from configsvc_client._types import (
    CallUsage,
    Change,
    Document,
    Revision,
    Snapshot,
    SourceErrorInfo,
    SourceState,
    Synchronizer,
    Update,
)

__all__ = [
    "Binding",
    "CallUsage",
    "Change",
    "ClientOptions",
    "ClientStatus",
    "ConfigClient",
    "ConfigError",
    "ConfigUnavailable",
    "Document",
    "Mode",
    "ReportOptions",
    "Revision",
    "Snapshot",
    "SourceErrorInfo",
    "SourceState",
    "Synchronizer",
    "Update",
]
