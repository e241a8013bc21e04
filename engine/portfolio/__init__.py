"""Positions, PnL, equity, exposure and drawdown."""
