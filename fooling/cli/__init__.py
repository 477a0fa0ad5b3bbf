"""The ``fool`` command line: one flat group, one module per command.

User mistakes raise :class:`~fooling.errors.FoolingError` and are printed as a
single ``Error: ...`` line with exit status 1, never a traceback. So is running out of memory (host or
device), which is no bug either: the line says what to change (a run's log.txt keeps the traceback), and so is
the file system refusing a write (disk full, no permission, a file where a folder should be).
"""

from __future__ import annotations

import errno
import importlib
import sys

import click

from ..errors import FoolingError, first_line

COMMAND_KEY = "fooling.command"  # ctx.meta: the name of the command being run
RESUMABLE = ("evolve", "sweep", "ascend", "retrain")  # the commands whose runs continue with --resume
COMMANDS = ["evolve", "sweep", "ascend", "attack", "render", "transfer", "gallery", "plot", "runs", "retrain", "train", "models"]


class FoolGroup(click.Group):
    """A group whose commands live in ``fooling.cli.<name>`` (each exposing ``command``)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        # Imported on demand so that `fool --help` does not load torch-heavy modules.
        return importlib.import_module(f"fooling.cli.{name}").command if name in COMMANDS else None

    def resolve_command(self, ctx: click.Context, args: list[str]):
        name, command, rest = super().resolve_command(ctx, args)
        ctx.meta[COMMAND_KEY] = name  # for the advice of a file-system error
        return name, command, rest

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except FoolingError as err:
            raise click.ClickException(str(err)) from None
        except OSError as err:
            if err.errno not in FILE_SYSTEM_ERRORS:
                raise
            what = err.strerror or first_line(err)  # 'No space left on device', without '[Errno 28]'
            if err.filename:
                what = f"{what}: {err.filename}"
            if err.errno == errno.EEXIST and err.filename:  # mkdir(exist_ok=True) on a path that is there but is no folder
                what = f"{err.filename} is in the way: a folder should be there, and it is a file"
            elif err.errno == errno.EISDIR and err.filename:
                what = f"{err.filename} is a folder, where a file should be"
            if ctx.meta.get(COMMAND_KEY) in RESUMABLE:
                raise click.ClickException(f"{what}. A run stopped by this keeps its last checkpoint: make room "
                                           "or fix the path, then continue it with --resume") from None
            raise click.ClickException(f"{what}. Make room or fix the path, then run the command again") from None
        except Exception as err:
            if not _out_of_memory(err):
                raise
            if ctx.meta.get(COMMAND_KEY) in RESUMABLE:
                raise click.ClickException(
                    f"out of memory ({first_line(err)[:160]}). A run stopped by this keeps its last checkpoint: free "
                    "memory, or lower --population, or use --precision bf16, then continue it with --resume") from None
            raise click.ClickException(f"out of memory ({first_line(err)[:160]}). Free memory, or give the command "
                                       "fewer images at once, then run it again") from None


# What the file system may answer to a write (not bugs): full, quota, read-only, no permission, a file where a
# folder should be (or the reverse), too many open files, a name too long, a failing disk.
FILE_SYSTEM_ERRORS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EEXIST,
                                errno.ENOTDIR, errno.EISDIR, errno.EMFILE, errno.ENFILE, errno.ENAMETOOLONG, errno.EIO})


def _out_of_memory(err: BaseException) -> bool:
    """Host (MemoryError, or PyTorch's CPU allocator refusing a tensor: a RuntimeError) or PyTorch device memory
    (torch.OutOfMemoryError, by name: no torch import here)."""
    return isinstance(err, MemoryError) or any(t.__name__ == "OutOfMemoryError" for t in type(err).__mro__) \
        or (isinstance(err, RuntimeError) and "DefaultCPUAllocator: can't allocate memory" in str(err))


@click.group(cls=FoolGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="fooling")
def main() -> None:
    """Find images that deep classifiers label with near certainty but people see as noise.

    Reproduces Nguyen, Yosinski & Clune (CVPR 2015), "Deep Neural Networks are
    Easily Fooled". Start with `fool evolve`; `fool models` lists the networks.
    """
    from ..allocator import keep_freed_memory

    keep_freed_memory()  # big tensors come and go every generation: reuse their pages (see fooling.allocator)


def run() -> None:  # pragma: no cover - console entry for `python -m fooling`
    main(prog_name="fool")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(run())
