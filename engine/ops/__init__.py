"""Operating a run: checks before it starts, and access to its database."""
