"""An ordinary openai-SDK script, made live in three lines.

    CONFIGSVC_URL=... CONFIGSVC_TOKEN=... python examples/openai_live.py [--namespace prod]

Before, the script built its client with a hard-coded base URL, key, model and timeout:

    llm = openai.OpenAI(base_url="http://127.0.0.1:1234/v1", api_key="sk-...")

Now three lines bind the `ModelEndpoints` document `<ns>/chat-models`, give the SDK a
client routed by it (`openai_client`, an `openai.OpenAI`) and start following it: every
call goes to the document's current default endpoint (or group), with its key, model,
timeouts, retries, breaker and fallbacks, and follows each change pushed to configsvc with
no restart. Nothing else in the script changes.
"""

from __future__ import annotations

import argparse
import sys
import time

from configsvc_client import ConfigClient
from configsvc_client.kinds import ModelEndpoints
from configsvc_client.live import openai_client


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--namespace", default="prod")
    parser.add_argument("--prompts", nargs="*", default=["hello", "what changed?"])
    parser.add_argument("--pause", type=float, default=0.0, help="seconds between prompts")
    args = parser.parse_args(argv)

    config = ConfigClient(namespaces=[args.namespace])  # 1. the service (CONFIGSVC_URL, _TOKEN)
    llm = openai_client(config.bind(f"{args.namespace}/chat-models", ModelEndpoints))  # 2.
    config.start()  # 3. wait for the document; from here on it follows every change

    # The script as it was: the `model` it names is replaced by the endpoint's own.
    for prompt in args.prompts:
        answer = llm.chat.completions.create(
            model="whatever-the-document-says",
            messages=[{"role": "user", "content": prompt}],
        )
        print(f"{answer.model}: {answer.choices[0].message.content}", flush=True)
        stream = llm.chat.completions.create(
            model="whatever-the-document-says",
            messages=[{"role": "user", "content": prompt}],
            stream=True,
        )
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        print(f"  streamed: {text}", flush=True)
        time.sleep(args.pause)
    llm.close()
    config.stop()


if __name__ == "__main__":
    main(sys.argv[1:])
