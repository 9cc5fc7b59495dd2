"""The fan-out: one store watch's document changes, encoded once, to every watch stream.

fanout.py       Fanout: subscribe, open_stream, publish; FanoutOptions
encoding.py     events as SSE bytes (clear and masked), chunk framing
ring.py         recent events in memory, for resumes that need no store read
catchup.py      snapshots and replays for new streams, shared by streams that start together
subscribers.py  one stream's state; the registry of streams by namespace; keep-alives
"""

from configsvc.fanout.fanout import Fanout, FanoutOptions, WatchCapacityError
from configsvc.fanout.subscribers import StreamWriter, Subscriber

__all__ = ["Fanout", "FanoutOptions", "StreamWriter", "Subscriber", "WatchCapacityError"]
