"""The fleet: which SDK instance applied which version, and which rejected one.

report.py    a report as the service takes it: shape, bounds, scope
view.py      FleetView: the whole fleet as one instance knows it, fed by the store watch
service.py   FleetService: takes reports, writes records and what it heard, sweeps the silent
writer.py    record changes made close together share etcd transactions
heard.py     what this instance heard and has not yet written, in writes of bounded size
streams.py   the open watch streams that stand for their instances' reports, by deadline
tokens.py    token records held briefly for the report route
answers.py   the API's answers: a namespace's instances, one document's spread, lag
masking.py   secret values out of what instances report (a rejection may quote one)
gauges.py    Prometheus gauges of the fleet
"""
