"""`fool models`: list every classifier the registry knows."""

from __future__ import annotations

import click


@click.command("models")
def command() -> None:
    """List every model: name, input, classes, and whether it is ready to use now."""
    from ..classifiers import list_models

    specs = list_models()
    width = max(len(s.name) for s in specs)
    click.echo(f"{'name'.ljust(width)}  {'input':<14} {'classes':>7}  ready  description")
    for s in specs:
        ready = "yes" if s.ready() else "no"
        note = f" [{s.note}]" if s.note and ready == "no" else ""
        click.echo(f"{s.name.ljust(width)}  {s.input:<14} {s.num_classes:>7}  {ready:<5}  {s.description}{note}")
