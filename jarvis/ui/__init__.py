"""The Qt (PySide6) tray app: the only package allowed to import Qt. Built in its own issue."""
