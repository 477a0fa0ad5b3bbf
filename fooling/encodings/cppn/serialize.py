"""CPPN genomes as plain numeric arrays (checkpoints) and as JSON (one elite, re-drawable).

Arrays: a batch of N genomes becomes padded tables plus counts, nothing pickled:
``hidden`` (N, Hmax) int8, ``outputs`` (N, O) int8, ``sources`` / ``targets``
(N, Emax) int32 and ``weights`` (N, Emax) float64, padded with -1 (weights 0),
with ``num_hidden`` / ``num_connections`` (N,) int64.

JSON: the network plus everything drawing needs (coords, colour, channels, size),
so ``fool render`` can redraw an elite at any resolution.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ...errors import FoolingError
from ...limits import MAX_CONNECTIONS, MAX_DEPTH, MAX_GENOME_BYTES, MAX_HIDDEN_NODES
from .functions import FUNCTION_NAMES
from .genome import INPUT_NAMES, WEIGHT_RANGE, Genome, check_genome, make_genome
from .style import Style

JSON_FORMAT = "fooling-cppn"
JSON_VERSION = 1
ARRAY_KEYS = ("hidden", "outputs", "sources", "targets", "weights", "num_hidden", "num_connections")


def _padded(rows: Sequence[np.ndarray], width: int, fill: float, dtype: type) -> np.ndarray:
    table = np.full((len(rows), width), fill, dtype=dtype)
    for i, row in enumerate(rows):
        table[i, :len(row)] = row
    return table


def genomes_to_arrays(genomes: Sequence[Genome], num_outputs: int) -> dict[str, np.ndarray]:
    """N genomes -> the padded tables described in the module docstring."""
    num_hidden = np.array([g.num_hidden for g in genomes], dtype=np.int64)
    num_connections = np.array([g.num_connections for g in genomes], dtype=np.int64)
    edges = int(num_connections.max(initial=0))
    return {
        "hidden": _padded([g.hidden for g in genomes], int(num_hidden.max(initial=0)), -1, np.int8),
        "outputs": _padded([g.outputs for g in genomes], num_outputs, -1, np.int8),
        "sources": _padded([g.sources for g in genomes], edges, -1, np.int32),
        "targets": _padded([g.targets for g in genomes], edges, -1, np.int32),
        "weights": _padded([g.weights for g in genomes], edges, 0.0, np.float64),
        "num_hidden": num_hidden,
        "num_connections": num_connections,
    }


def genomes_from_arrays(arrays: dict[str, np.ndarray], num_outputs: int) -> list[Genome]:
    """Inverse of :func:`genomes_to_arrays`; raises ValueError for tables that are not valid CPPNs."""
    missing = [k for k in ARRAY_KEYS if k not in arrays]
    if missing:
        raise ValueError(f"CPPN arrays lack {', '.join(missing)}")
    a = {k: np.asarray(arrays[k]) for k in ARRAY_KEYS}
    n = len(a["num_hidden"])
    if any(a[k].ndim != 2 or len(a[k]) != n for k in ARRAY_KEYS[:5]) or len(a["num_connections"]) != n:
        raise ValueError("CPPN arrays have inconsistent shapes")
    genomes = []
    for i in range(n):
        h, e = int(a["num_hidden"][i]), int(a["num_connections"][i])
        if not (0 <= h <= a["hidden"].shape[1] and 0 <= e <= a["weights"].shape[1]):
            raise ValueError(f"CPPN {i}: counts do not fit the tables")
        genome = make_genome(a["hidden"][i, :h], a["outputs"][i], a["sources"][i, :e], a["targets"][i, :e],
                             a["weights"][i, :e])
        check_genome(genome, num_outputs)
        genomes.append(genome)
    return genomes


def genome_to_json(genome: Genome, style: Style) -> dict[str, Any]:
    """One genome and its drawing style as a JSON-ready dict."""
    return {
        "format": JSON_FORMAT,
        "version": JSON_VERSION,
        "coords": style.coords,
        "colour": style.colour,
        "channels": style.channels,
        "size": list(style.size),
        "weight_range": WEIGHT_RANGE,
        "node_numbering": "inputs 0-3 (x, y, d, bias), then hidden nodes in evaluation order, then outputs",
        "inputs": list(INPUT_NAMES),
        "hidden": [FUNCTION_NAMES[f] for f in genome.hidden],
        "outputs": [FUNCTION_NAMES[f] for f in genome.outputs],
        "connections": [[int(s), int(t), float(w)] for s, t, w in zip(genome.sources, genome.targets, genome.weights)],
    }


def _function_ids(names: Any, what: str) -> list[int]:
    if not isinstance(names, list) or not all(isinstance(n, str) and n in FUNCTION_NAMES for n in names):
        raise ValueError(f"'{what}' must be a list of function names from {', '.join(FUNCTION_NAMES)}")
    return [FUNCTION_NAMES.index(n) for n in names]


def genome_from_json(data: Any) -> tuple[Genome, Style]:
    """Inverse of :func:`genome_to_json`: the genome and how to draw it. Raises ValueError if malformed."""
    if not isinstance(data, dict) or data.get("format") != JSON_FORMAT:
        raise ValueError(f"not a CPPN genome (expected \"format\": \"{JSON_FORMAT}\")")
    if data.get("version") != JSON_VERSION:
        raise ValueError(f"unsupported CPPN genome version {data.get('version')!r} (this reads {JSON_VERSION})")
    missing = [k for k in ("coords", "colour", "channels", "size", "hidden", "outputs", "connections") if k not in data]
    if missing:
        raise ValueError(f"CPPN genome lacks {', '.join(missing)}")
    size = data["size"]
    if not (isinstance(size, list) and len(size) == 2 and all(isinstance(s, int) and s > 0 for s in size)):
        raise ValueError("'size' must be [height, width] in pixels")
    style = Style(data["coords"], data["colour"], (size[0], size[1]))
    if data["channels"] != style.channels:
        raise ValueError(f"{style.colour} CPPNs have {style.channels} channels, not {data['channels']!r}")
    connections = data["connections"]
    check_size(data["hidden"], connections)
    if not isinstance(connections, list) or not all(
        isinstance(c, list) and len(c) == 3 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in c)
        for c in connections
    ):
        raise ValueError("'connections' must be a list of [source, target, weight]")
    if any(not (0 <= c[0] < 2**31 and 0 <= c[1] < 2**31) or c[0] != int(c[0]) or c[1] != int(c[1])
           for c in connections):
        raise ValueError("connection ends must be whole, non-negative node numbers")
    if any(abs(c[2]) > WEIGHT_RANGE for c in connections):  # before float64: a huge integer would overflow it
        raise ValueError(f"CPPN weight outside [-{WEIGHT_RANGE:g}, {WEIGHT_RANGE:g}] (or not finite)")
    table = np.array(connections, dtype=np.float64).reshape(-1, 3)
    genome = make_genome(_function_ids(data["hidden"], "hidden"), _function_ids(data["outputs"], "outputs"),
                         table[:, 0], table[:, 1], table[:, 2])
    check_genome(genome, style.channels)
    check_depth(genome)
    return genome, style


def check_size(hidden: Any, connections: Any) -> None:
    """ValueError if a genome has more than :data:`MAX_HIDDEN_NODES` hidden nodes or :data:`MAX_CONNECTIONS`
    connections (checked on the JSON lists, before they are converted)."""
    if isinstance(hidden, list) and len(hidden) > MAX_HIDDEN_NODES:
        raise ValueError(f"the CPPN has {len(hidden):,} hidden nodes, more than the {MAX_HIDDEN_NODES:,} this reads")
    if isinstance(connections, list) and len(connections) > MAX_CONNECTIONS:
        raise ValueError(f"the CPPN has {len(connections):,} connections, more than the {MAX_CONNECTIONS:,} "
                         "this reads")


def depth(genome: Genome) -> int:
    """The longest path (in connections) from an input to any node of a well-formed ``genome``."""
    from .kernels import depths  # numba loads on first use

    return max(depths(genome.num_nodes, genome.sources.astype(np.int64), genome.targets.astype(np.int64)))


def check_depth(genome: Genome) -> None:
    """ValueError if ``genome`` is deeper than :data:`MAX_DEPTH` (each depth is one drawing step)."""
    d = depth(genome)
    if d > MAX_DEPTH:
        raise ValueError(f"the CPPN is {d:,} nodes deep, more than the {MAX_DEPTH:,} this draws")


def load_genome(path: str | Path) -> tuple[Genome, Style]:
    """The genome and style stored in a CPPN .json file; FoolingError (one line) if missing or malformed."""
    path = Path(path)
    try:
        if path.is_file() and path.stat().st_size > MAX_GENOME_BYTES:
            raise FoolingError(f"{path}: {path.stat().st_size:,} bytes, more than the {MAX_GENOME_BYTES:,} a "
                               "CPPN genome file may have")
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise FoolingError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise FoolingError(f"{path} is a folder, not a genome file") from None
    except UnicodeDecodeError:  # an image, say: a direct-encoded run's elites are their PNGs, with no genome
        raise FoolingError(f"{path}: not a CPPN genome (not text); `fool render` redraws the .json that "
                           "`fool evolve --encoding cppn` writes beside each elite's PNG") from None
    except OSError as err:
        raise FoolingError(f"{path}: cannot read it ({err})") from None
    except json.JSONDecodeError as err:
        raise FoolingError(f"{path}: not valid JSON ({err.msg}, line {err.lineno})") from None
    except RecursionError:
        raise FoolingError(f"{path}: not a CPPN genome (JSON nested too deeply)") from None
    try:
        return genome_from_json(data)
    except ValueError as err:
        raise FoolingError(f"{path}: {err}") from None
