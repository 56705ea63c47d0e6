"""The USSD menus: a pure state machine (no I/O, no web or database imports)."""

from menus.engine import EngineConfig, Resume, run
from menus.types import DataView, Profile, Screen

__all__ = ["DataView", "EngineConfig", "Profile", "Screen", "run"]
