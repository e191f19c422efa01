"""The settings dialog (``dialog.SettingsDialog``) and its tabs: voices, backends, audio, models."""
