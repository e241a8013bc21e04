"""Market data sources: replay of recorded files and live exchange feeds."""
