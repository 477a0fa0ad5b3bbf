"""`fool runs`: a table of the run directories under a folder."""

from __future__ import annotations

import json

import click


@click.command("runs")
@click.argument("folder", default="runs", type=click.Path())
@click.option("--json", "as_json", is_flag=True, help="Print a JSON list (one object per run) instead of a table.")
def command(folder, as_json) -> None:
    """List the runs in FOLDER (default runs/, searched recursively): model,
    encoding, strategy (preset), seed, generation/budget, evaluations, classes
    at >= 99.99%, and state: running (a process holds its lock), finished,
    interrupted (resume it with `fool evolve --resume`) or error.

    \b
    Examples:
      fool runs
      fool runs runs/mnist --json
    """
    from ..errors import FoolingError
    from ..plots.runs import format_table, list_runs

    if not str(folder).strip():  # '' would list the working directory, which the user did not name
        raise FoolingError("fool runs needs a folder, got an empty path")
    records = list_runs(folder)
    if as_json:
        click.echo(json.dumps(records, indent=2))
    elif not records:
        click.echo(f"no runs in {folder}")
    else:
        click.echo(format_table(records))
