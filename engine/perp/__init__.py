"""Perpetual futures: contract terms, isolated margin, funding and liquidation."""
