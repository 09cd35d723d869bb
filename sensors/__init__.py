"""Sensors: base classes, the built-in timers and the beat scheduler."""
