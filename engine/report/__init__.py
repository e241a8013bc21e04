"""Reports and exports: SQL over the run's tables, shaped for people and tools."""
