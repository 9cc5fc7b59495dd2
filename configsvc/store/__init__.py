"""The config store on etcd (aetcd over gRPC).

gRPC core's fork handlers are turned off before gRPC is first imported (this package is the
only importer). The service spawns etcd (fork + exec, with a pre-exec hook) while its gRPC
threads are busy; with the handlers on, the child sometimes aborts before it execs
("epoll_wait error: Bad file descriptor", exit status -6), so a supervised etcd restart
could fail. Nothing in the service needs gRPC in a forked child. An explicit
`GRPC_ENABLE_FORK_SUPPORT` in the environment wins.
"""

import os

os.environ.setdefault("GRPC_ENABLE_FORK_SUPPORT", "false")
