"""Settings: every setting of a run declared once (type, default, help, check, preset membership)."""

from .fields import Settings, parse_assignments, setting

__all__ = ["Settings", "parse_assignments", "setting"]
