"""Position sizing, limits and the trading state (ACTIVE, REDUCING, HALTED)."""
