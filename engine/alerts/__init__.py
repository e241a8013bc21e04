"""Alert rules over snapshots, health and lag, their episodes, and notifications.

rules.py     the runbook's alarm table as pure functions: readings from figures
episodes.py  fire once per episode, resolve when clear, `for:` and clear durations
service.py   the alerts service on the pipeline bus (event time: deterministic)
health.py    wall-clock rules (memory, service health) in a thread of their own
notify.py    apprise channels with a minimum severity, a queue and a worker thread
"""
