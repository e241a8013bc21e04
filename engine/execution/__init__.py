"""Paper execution: the fill model (pure) and the paper exchange service."""
