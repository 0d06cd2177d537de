"""The Qt shell: tray, dialogs and windows. Widgets only talk to the engine."""
