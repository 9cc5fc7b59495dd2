"""An example LLM gateway whose keys, rate limits and model endpoints live in configsvc.

Run it with `python examples/llm_gateway --port 8000` (see `__main__.py` and
examples/README.md).
"""

from llm_gateway.app import GatewaySettings, create_app

__all__ = ["GatewaySettings", "create_app"]
