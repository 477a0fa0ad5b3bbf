"""Import Ray, start a local instance or join a cluster, and shut down only what was started here."""

from __future__ import annotations

import contextlib
import os
from types import ModuleType
from typing import Iterator, Optional

from ..errors import FoolingError, first_line

RAY_EXTRA = 'pip install "fooling[ray]"'


def ray_available() -> bool:
    """Whether Ray can be imported (without importing it)."""
    import importlib.util

    return importlib.util.find_spec("ray") is not None


def require_ray(option: str) -> ModuleType:
    """The ``ray`` module, or a one-line FoolingError naming ``option`` (e.g. "--workers") and the extra."""
    try:
        import ray
    except ImportError:
        raise FoolingError(f"{option} needs Ray, which is not installed: {RAY_EXTRA}") from None
    return ray


def local_object_store(share: float = 0.3, low: int = 80 << 20, high: int = 4 << 30) -> Optional[int]:
    """Bytes for a local instance's object store: ``share`` of /dev/shm's free space within [low, high]
    (None where /dev/shm cannot be read: Ray's own default)."""
    try:
        stat = os.statvfs("/dev/shm")
    except (OSError, AttributeError):
        return None
    return int(min(high, max(low, share * stat.f_bavail * stat.f_frsize)))


@contextlib.contextmanager
def connected(option: str, address: Optional[str] = None, num_cpus: Optional[int] = None,
              num_gpus: Optional[int] = None, object_store_memory: Optional[int] = None) -> Iterator[ModuleType]:
    """Ray, initialised for the ``with`` block: already running in this process -> used as is; ``address``
    given -> that cluster joined ("auto" or "HOST:PORT"); else a local instance on the loopback interface with
    ``num_cpus`` / ``num_gpus`` (None: what the machine has) and ``object_store_memory`` bytes of shared memory
    (None: :func:`local_object_store` of /dev/shm, so small containers do not warn). Whatever was started here is shut down at the end,
    so no Ray process outlives the block."""
    ray = require_ray(option)
    if ray.is_initialized():
        yield ray
        return
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    kwargs = dict(include_dashboard=False, log_to_driver=False, configure_logging=True, logging_level="ERROR")
    try:
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(num_cpus=num_cpus, num_gpus=num_gpus, _node_ip_address="127.0.0.1",
                     object_store_memory=object_store_memory or local_object_store(), **kwargs)
    except (ConnectionError, RuntimeError, ValueError) as err:
        where = f"the Ray cluster at {address}" if address else "a local Ray instance"
        raise FoolingError(f"could not connect to {where}: {first_line(err)}") from None
    try:
        yield ray
    finally:
        ray.shutdown()
