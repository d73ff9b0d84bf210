"""Presence: debounced motion and occupancy with context-adaptive sensitivity (see :mod:`uspd.presence.tracker`)."""
from uspd.presence.tracker import Decision, Event, PresenceConfig, PresenceTracker

__all__ = ["Decision", "Event", "PresenceConfig", "PresenceTracker"]
