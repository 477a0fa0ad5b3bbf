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
        problem = s.problem()  # broken files: listed, marked, with how to fix them
        ready = "no" if problem else "yes" if s.ready() else "no"
        note = f" [BROKEN: {problem}]" if problem else f" [{s.note}]" if s.note and ready == "no" else ""
        click.echo(f"{s.name.ljust(width)}  {s.input:<14} {s.num_classes or '?':>7}  {ready:<5}  "
                   f"{s.description}{note}")
