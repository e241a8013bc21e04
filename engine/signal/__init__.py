"""Strategies turn market events into signals (side, confidence, reason)."""
