"""Small helpers shared by the commands."""

from __future__ import annotations

from typing import Optional

import click


def split_names(value: Optional[str]) -> Optional[list[str]]:
    """'a,b , c' -> ['a', 'b', 'c']; None stays None."""
    if value is None:
        return None
    names = [v.strip() for v in value.split(",") if v.strip()]
    if not names:
        raise click.BadParameter("give at least one name")
    return names
