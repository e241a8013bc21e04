"""The run lifecycle: a request checked, the preflight, detaching, one of three
runtimes (this process, supervised service processes, a Docker stack) driving the
pipeline, the operator's commands and the run's duties, and the outcome recorded.
`engine.run.lifecycle` is the engine's API for starting, resuming, stopping and
reading runs."""
