#!/usr/bin/env python3
"""The container's health check: `GET /healthz` on its own port; exit 0 on a 200.

Speaks HTTPS when the service does (`CONFIGSVC_TLS_CERT` is set). The certificate is not
checked: it names the service's public host, and this request never leaves the container.
"""

from __future__ import annotations

import os
import ssl
import sys
import urllib.error
import urllib.request

TIMEOUT_SECONDS = 2.0


def main() -> int:
    port = os.environ.get("CONFIGSVC_PORT", "8080")
    tls = bool(os.environ.get("CONFIGSVC_TLS_CERT"))
    url = f"{'https' if tls else 'http'}://127.0.0.1:{port}/healthz"
    context = None
    if tls:
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE  # loopback liveness only
    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS, context=context) as answer:  # noqa: S310 - a fixed loopback URL
            return 0 if answer.status == 200 else 1
    except (OSError, urllib.error.URLError) as exc:
        print(f"configsvc health check: {url}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
