"""Named streams with consumer groups: one contract, an in-process and a Redis implementation."""

from engine.bus.base import DEAD_LETTERS, Bus, Delivery, Pending
from engine.bus.inprocess import InProcessBus

__all__ = ["DEAD_LETTERS", "Bus", "Delivery", "InProcessBus", "Pending"]
