"""Staged rollouts: a candidate version for a growing, hash-chosen share of the fleet.

choice.py       which SDK instances a rollout chooses (stable hash of rollout and instance)
transitions.py  what each transition makes of a rollout's record (steps follow time)
signals.py      when the fleet's reports abort a rollout (rejections, error rate)
scheduler.py    RolloutScheduler: every service instance takes due steps and aborts
variants.py     what a snapshot or a listing says to one instance during rollouts
replay.py       snapshots for watch streams, with their rollouts
checks.py       validating a candidate against its kind when it is promoted

The records and their storage live in `configsvc.store.rollout_record` and
`configsvc.store.rollouts`; the push of variants in `configsvc.fanout.variants`.
"""
