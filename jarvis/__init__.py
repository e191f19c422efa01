"""Jarvis: an always-on, offline-first desktop voice assistant."""
__version__ = "0.1.0"
