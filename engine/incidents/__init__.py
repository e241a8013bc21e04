"""Incident response: the runbook's six incident types, each with its bundle, first
action, timeline and report (`claire incident open|list|show|close`).

    kinds.py      the types, incident ids, the alert -> incident mapping (pure)
    timeline.py   the incident's events, kept in a local file and in PostgreSQL
    redact.py     secrets out of every file of a bundle, with a redaction report
    bundle.py     the tar.gz: logs, status, recent rows, streams, processes, config
    figures.py    process and resource figures (psutil)
    playbook.py   the safe first action of each type
    record.py     the incident as kept: record, first action, the alert that opened it
    report.py     the incident report (Markdown and HTML) from the templates
    desk.py       open, list, show, close; the timeline written when the database answers

Nothing here is imported by the package itself: the settings read `kinds` alone.
"""
