"""Jarvis: an always-on, offline-first desktop voice assistant."""
from jarvis.privacy import switch_off_telemetry

switch_off_telemetry()  # before any library that could report home is loaded (jarvis.privacy)

__version__ = "0.1.0"
