"""`fool models`: list every classifier the registry knows."""

from __future__ import annotations

import click


@click.command("models")
def command() -> None:
    """List every model: name, input, classes, whether it is ready to use now, and its held-out
    accuracy where the project trained it (recorded in the metadata beside its weights). Model files
    (TorchScript .pt, ONNX .onnx), timm:NAME and python:package.module:function work wherever a model
    name does, without being listed."""
    from ..classifiers import list_models
    from ..classifiers.mnist import BUILTIN_LENETS, builtin_source, held_out_accuracy, stale_recipe, trained_on

    specs = list_models()
    width = max(len(s.name) for s in specs)
    click.echo(f"{'name'.ljust(width)}  {'input':<14} {'classes':>7}  ready  {'held-out':>8}  description")
    for s in specs:
        problem = s.problem()  # broken files: listed, marked, with how to fix them
        stale = stale_recipe(s.name) if s.name in BUILTIN_LENETS and not problem else None
        if s.name in BUILTIN_LENETS and builtin_source(s.name)[0] == "shipped":
            stale = None  # the shipped weights are used instead of the outdated cached copy
        source = None if problem or stale else trained_on(s.name)
        ready = "no" if problem else "yes" if s.ready() else "no"
        acc = None if problem or stale else held_out_accuracy(s.name)
        acc_text = f"{acc:.2%}" if acc is not None else "-"
        if problem:
            note = f" [BROKEN: {problem}]"
        elif stale:
            note = f" [retrains on first use: cached copy trained with {stale}]"
        else:
            note = f" [{s.note}]" if s.note and ready == "no" else ""
        if source:
            note += f" [{source}]"
        click.echo(f"{s.name.ljust(width)}  {s.input:<14} {s.num_classes or '?':>7}  {ready:<5}  {acc_text:>8}  "
                   f"{s.description}{note}")
    click.echo("Also usable as a model: a TorchScript file (net.pt; TorchScript is code: load only files you trust), "
               "an ONNX file (net.onnx), timm:NAME, python:package.module:function; with --input, --mean, --std, "
               "--labels or a sidecar net.json (README: \"Fooling your own model\").")
