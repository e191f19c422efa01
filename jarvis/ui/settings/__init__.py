"""The settings dialog (``dialog.SettingsDialog``) and its tabs: voices, backends, brain, audio, models."""
