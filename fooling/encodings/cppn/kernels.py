"""Compiled loops over a CPPN population laid end to end: structural mutation, and merging it into one graph.

Both walk each genome's connections one by one, which numpy can only express as dozens of
whole-population calls a step (together about 2.5 ms of CPU a MNIST generation of 250 children on
2 cores, where the forward pass is 25 ms; ``scripts/bench_loop_phases.py``); compiled by numba they
take a tenth of that. The semantics are those of the single-genome operators of :mod:`.mutation`
(the tests compare child for child) and of a program the tests rebuild in numpy from node-by-node
depths and reachability (compared array for array).

numba compiles them on a machine's first CPPN run (about 9 s here) and keeps the machine code in its
cache (``__pycache__`` beside this file, or numba's user cache where this folder is read-only); where
it has nowhere to write, every process compiles them again.

Everything here relies on the topological numbering of :mod:`.genome`: every connection runs from
a lower to a higher node number (merged populations keep it: see :func:`merge_population`)."""

from __future__ import annotations

import numpy as np

from ...jit import jit
from .functions import NUM_FUNCTIONS
from .genome import NUM_INPUTS, WEIGHT_RANGE


@jit
def _pick(u: float, count: int) -> int:
    """A uniform index in [0, count) from u in [0, 1) (as ``mutation._pick``)."""
    return min(int(u * count), count - 1)


@jit
def _first_target(source: int) -> int:
    return max(source + 1, NUM_INPUTS)


@jit
def _remove(src, tgt, wgt, e, i):
    """Connection i of the first ``e`` removed (the rest move up one); returns it."""
    s, t, w = src[i], tgt[i], wgt[i]
    for j in range(i, e - 1):
        src[j], tgt[j], wgt[j] = src[j + 1], tgt[j + 1], wgt[j + 1]
    return s, t, w


@jit
def _add_connection(src, tgt, wgt, e, n, first_output, u0, u1, out_degree, taken):
    """``mutation.add_connection`` on the first ``e`` connections; returns the new count.

    The free pairs are ranked as there (source-major, then target): the source holding free rank r is found
    from each source's count of free pairs, then the target among that source's untaken ones
    (``out_degree``, ``taken``: (n,) scratch)."""
    for s in range(first_output):
        out_degree[s] = 0
    for j in range(e):
        out_degree[src[j]] += 1
    free = -e
    for s in range(first_output):
        free += n - _first_target(s)
    if free <= 0:
        return e
    rank = _pick(u0, free)
    source = 0
    while rank >= n - _first_target(source) - out_degree[source]:
        rank -= n - _first_target(source) - out_degree[source]
        source += 1
    for v in range(n):
        taken[v] = False
    for j in range(e):
        if src[j] == source:
            taken[tgt[j]] = True
    target = _first_target(source)
    while True:
        if not taken[target]:
            if rank == 0:
                break
            rank -= 1
        target += 1
    src[e], tgt[e], wgt[e] = source, target, WEIGHT_RANGE * (2.0 * u1 - 1.0)
    return e + 1


@jit
def _rewire_connection(src, tgt, e, n, first_output, u0, u1, u2, taken):
    """``mutation.rewire_connection`` on the first ``e`` connections (``taken``: (n,) scratch)."""
    if e == 0:
        return
    i = _pick(u0, e)
    source, target = src[i], tgt[i]
    for v in range(n):
        taken[v] = False
    if u1 < 0.5:
        low, high = _first_target(source), n
        for j in range(e):
            if src[j] == source:
                taken[tgt[j]] = True
    else:
        low, high = 0, min(target, first_output)
        for j in range(e):
            if tgt[j] == target:
                taken[src[j]] = True
    options = 0
    for v in range(low, high):
        options += not taken[v]
    if options == 0:
        return
    k = _pick(u2, options)
    for v in range(low, high):
        if not taken[v]:
            if k == 0:
                if u1 < 0.5:
                    tgt[i] = v
                else:
                    src[i] = v
                return
            k -= 1


@jit
def _add_node(src, tgt, wgt, e, fun, h, u0, u1, u2):
    """``mutation.add_node`` (the cap checked by the caller); returns the new connection count."""
    source, target, weight = _remove(src, tgt, wgt, e, _pick(u0, e))
    e -= 1
    lowest, highest = _first_target(source), min(target, NUM_INPUTS + h)
    node = lowest + _pick(u1, highest - lowest + 1)
    for j in range(e):
        src[j] += src[j] >= node
        tgt[j] += tgt[j] >= node
    for j in range(len(fun) - 1, node - NUM_INPUTS, -1):  # the functions from the new node on move back one
        fun[j] = fun[j - 1]
    fun[node - NUM_INPUTS] = _pick(u2, NUM_FUNCTIONS)
    src[e], tgt[e], wgt[e] = source, node, 1.0
    src[e + 1], tgt[e + 1], wgt[e + 1] = node, target + 1, weight
    return e + 2


@jit
def _delete_node(src, tgt, wgt, e, fun, h, u0):
    """``mutation.delete_node`` (a hidden node exists); returns the new connection count."""
    node = NUM_INPUTS + _pick(u0, h)
    kept = 0
    for j in range(e):
        s, t = src[j], tgt[j]
        if s != node and t != node:
            src[kept], tgt[kept], wgt[kept] = s - (s > node), t - (t > node), wgt[j]
            kept += 1
    for j in range(node - NUM_INPUTS, len(fun) - 1):
        fun[j] = fun[j + 1]
    return kept


@jit
def mutate_structure_packed(hidden, outputs, functions, sources, targets, weights, edges, changes, uniforms,
                            max_hidden):
    """Every genome's structural changes (``mutation.mutate_structure``), the population laid end to end.

    hidden, edges: (N,) int64 hidden node and connection counts; outputs: O, the outputs a genome;
    functions: (Σ H + O,) int8; sources, targets: (E,) int64; weights: (E,) float64; changes: (N, 5) bool;
    uniforms: (N, 5, 3) float64. Returns new (hidden, functions, sources, targets, weights, edges),
    the inputs untouched.
    """
    n = hidden.size
    out_hidden, out_edges = np.empty(n, np.int64), np.empty(n, np.int64)
    out_functions = np.empty(functions.size + n, np.int8)  # each genome gains at most one node...
    out_sources = np.empty(sources.size + 2 * n, np.int64)  # ...and two connections
    out_targets = np.empty(sources.size + 2 * n, np.int64)
    out_weights = np.empty(sources.size + 2 * n, np.float64)
    most_edges, most_nodes = 2, NUM_INPUTS + outputs + 1  # scratch for the largest genome, grown by one change
    for g in range(n):
        most_edges = max(most_edges, edges[g] + 2)
        most_nodes = max(most_nodes, NUM_INPUTS + hidden[g] + outputs + 1)
    src = np.empty(most_edges, np.int64)
    tgt = np.empty(most_edges, np.int64)
    wgt = np.empty(most_edges, np.float64)
    out_degree = np.empty(most_nodes, np.int64)
    taken = np.empty(most_nodes, np.bool_)
    e_in = f_in = e_out = f_out = 0
    for g in range(n):
        e, h = edges[g], hidden[g]
        fun = out_functions[f_out:f_out + h + outputs + 1]  # written in place: room for one more node
        for j in range(h + outputs):
            fun[j] = functions[f_in + j]
        for j in range(e):
            src[j], tgt[j], wgt[j] = sources[e_in + j], targets[e_in + j], weights[e_in + j]
        e_in += e
        f_in += h + outputs
        c, u = changes[g], uniforms[g]
        if c[0]:
            e = _add_connection(src, tgt, wgt, e, NUM_INPUTS + h + outputs, NUM_INPUTS + h, u[0, 0], u[0, 1],
                                out_degree, taken)
        if c[1] and e:
            _remove(src, tgt, wgt, e, _pick(u[1, 0], e))
            e -= 1
        if c[2]:
            _rewire_connection(src, tgt, e, NUM_INPUTS + h + outputs, NUM_INPUTS + h, u[2, 0], u[2, 1], u[2, 2],
                               taken)
        if c[3] and h < max_hidden and e:
            e = _add_node(src, tgt, wgt, e, fun, h, u[3, 0], u[3, 1], u[3, 2])
            h += 1
        if c[4] and h:
            e = _delete_node(src, tgt, wgt, e, fun[:h + outputs], h, u[4, 0])
            h -= 1
        for j in range(e):
            out_sources[e_out + j], out_targets[e_out + j], out_weights[e_out + j] = src[j], tgt[j], wgt[j]
        out_hidden[g], out_edges[g] = h, e
        e_out += e
        f_out += h + outputs
    return (out_hidden, out_functions[:f_out], out_sources[:e_out], out_targets[:e_out], out_weights[:e_out],
            out_edges)


@jit
def _counting_sort(keys, size):
    """(starts (size + 1,), order (len(keys),)) for int keys in [0, size): ``order`` is
    ``np.argsort(keys, kind="stable")``, and key k's positions are ``order[starts[k]:starts[k + 1]]``."""
    starts = np.zeros(size + 1, np.int64)
    for k in keys:
        starts[k + 1] += 1
    for k in range(size):
        starts[k + 1] += starts[k]
    fill = np.empty(size, np.int64)
    for k in range(size):
        fill[k] = starts[k]
    order = np.empty(keys.size, np.int64)
    for j in range(keys.size):
        order[fill[keys[j]]] = j
        fill[keys[j]] += 1
    return starts, order


@jit
def depths(num_nodes, sources, targets):
    """(num_nodes,) int64 longest-path depth of every node (inputs 0, other nodes at least 1); sources < targets."""
    depth = np.ones(num_nodes, np.int64)
    for v in range(NUM_INPUTS):
        depth[v] = 0
    first, order = _counting_sort(targets, num_nodes)  # each node's incoming connections
    for v in range(NUM_INPUTS, num_nodes):  # every source of v comes before it, and is final
        for k in range(first[v], first[v + 1]):
            depth[v] = max(depth[v], depth[sources[order[k]]] + 1)
    return depth


@jit
def reaching(num_nodes, sources, targets, ends):
    """(num_nodes,) bool: the nodes with a path to one of ``ends`` (ends included); sources < targets."""
    reach = np.zeros(num_nodes, np.bool_)
    for v in ends:
        reach[v] = True
    first, order = _counting_sort(targets, num_nodes)  # each node's incoming connections
    for v in range(num_nodes - 1, -1, -1):  # every target of v comes after it, and is final
        if reach[v]:
            for k in range(first[v], first[v + 1]):
                reach[sources[order[k]]] = True
    return reach


_HASH_MASK = (1 << 40) - 1


@jit
def _same_node(u, v, functions, sources, weight_bits, first, order, canon):
    """Whether nodes u and v have the same function and incoming connections (canonical sources, weight bits)."""
    if functions[u - NUM_INPUTS] != functions[v - NUM_INPUTS] or first[u + 1] - first[u] != first[v + 1] - first[v]:
        return False
    for k in range(first[v + 1] - first[v]):
        i, j = order[first[u] + k], order[first[v] + k]
        if canon[sources[i]] != canon[sources[j]] or weight_bits[i] != weight_bits[j]:
            return False
    return True


@jit
def _canonical(num_nodes, live, functions, sources, weight_bits, first, order):
    """(num_nodes,) int64: each live node's first live node (in id order) with the same function and the same
    incoming connections in the same order (sources' canonical nodes, weights bit for bit), itself where none
    came before; inputs are their own. Such nodes hold the same values at every pixel. first, order: each node's
    incoming connections (:func:`_counting_sort` of the targets); sources < targets."""
    canon = np.arange(num_nodes)
    size = 16
    while size < 2 * num_nodes:
        size *= 2
    table = np.full(size, -1, np.int64)  # open addressing: the first node of each distinct kind, by hash
    for v in range(NUM_INPUTS, num_nodes):
        if not live[v]:
            continue
        # multiply and xor, kept to 40 bits: no step overflows int64 (nor warns, run as Python)
        h = np.int64(functions[v - NUM_INPUTS]) * 1000003 + first[v + 1] - first[v]
        for k in range(first[v], first[v + 1]):
            j = order[k]
            bits = weight_bits[j]
            h = ((h * 1000003) ^ canon[sources[j]]) & _HASH_MASK
            h = ((h * 1000003) ^ bits ^ (bits >> 24)) & _HASH_MASK
        slot = h & (size - 1)
        while table[slot] >= 0 and not _same_node(table[slot], v, functions, sources, weight_bits, first, order,
                                                  canon):
            slot = (slot + 1) & (size - 1)
        if table[slot] >= 0:
            canon[v] = table[slot]
        else:
            table[slot] = v
    return canon


@jit
def merge_population(hidden, outputs, functions, sources, targets, weights, edges, input_scale, shared=False,
                     fold=False):
    """A population laid end to end merged into one graph, its dead nodes dropped, rows in drawing order.

    Node ids: 0..3 the shared inputs, then every genome's nodes 4.. shifted past the previous genomes'.
    Live nodes (with a path to an output) become rows 4.., sorted by depth (longest path from an input),
    then function id, then genome order; connections into live nodes are kept, sorted by their target's
    row (connection order kept within one target). Inputs as :func:`mutate_structure_packed`'s, and
    input_scale (F,) float64 each function's factor folded into the weights (``functions.INPUT_SCALE``).

    shared: nodes that compute the same values (:func:`_canonical`: the same function and inputs, as siblings'
    unmutated nodes are) share one row, which every genome that has one reads; only for drawing (a shared row's
    connections are one genome's, so the program is not differentiable per genome).

    fold: the constant nodes (fed by the bias and other constant nodes alone, or by nothing: the same value at
    every pixel) come first, rows 4 .. 4 + C - 1 sorted by depth, then the others sorted by their depth counted
    from the inputs and the constant nodes (a constant source is depth 0 to them), past the constants' deepest
    depth: the constants' layers can be drawn at a few pixels and broadcast (:func:`~.execute.run_program`).

    Returns rows (count, inputs included); per connection (E',): source rows, target rows, weights times
    their target's scale, the connection's position in the packed arrays, that scale; per row past the
    inputs (R,): depth (ascending, in the order of the layers) and function; the output rows (N·O,), genome by
    genome; and C, the number of constant rows (0 without ``fold``).
    """
    n, num_functions = hidden.size, input_scale.size
    first_node = np.empty(n, np.int64)  # each genome's node 4 in the merged numbering, minus 4
    num_nodes, e = NUM_INPUTS, 0
    merged_sources = np.empty(sources.size, np.int64)
    merged_targets = np.empty(sources.size, np.int64)
    for g in range(n):
        first_node[g] = num_nodes - NUM_INPUTS
        for j in range(e, e + edges[g]):
            s = sources[j]
            merged_sources[j] = s + first_node[g] if s >= NUM_INPUTS else s
            merged_targets[j] = targets[j] + first_node[g]
        e += edges[g]
        num_nodes += hidden[g] + outputs
    output_ids = np.empty(n * outputs, np.int64)
    for g in range(n):
        for o in range(outputs):
            output_ids[g * outputs + o] = NUM_INPUTS + first_node[g] + hidden[g] + o
    live = reaching(num_nodes, merged_sources, merged_targets, output_ids)
    depth = depths(num_nodes, merged_sources, merged_targets)  # a live node's sources are live: its depth is exact
    if shared or fold:
        first, order = _counting_sort(merged_targets, num_nodes)  # each node's incoming connections
    else:
        first, order = np.empty(0, np.int64), np.empty(0, np.int64)
    if shared:
        canon = _canonical(num_nodes, live, functions, merged_sources, weights.view(np.int64), first, order)
    else:
        canon = np.arange(num_nodes)
    constant = np.zeros(num_nodes, np.bool_)
    level = depth.copy()  # each row's depth in the order of the layers
    deepest_constant = 0
    if fold:
        constant[NUM_INPUTS - 1] = True  # the bias
        for v in range(NUM_INPUTS, num_nodes):  # every source of v comes before it, and is final
            if live[v]:
                c = True
                for k in range(first[v], first[v + 1]):
                    c = c and constant[merged_sources[order[k]]]
                constant[v] = c
                if c:
                    deepest_constant = max(deepest_constant, depth[v])
        for v in range(NUM_INPUTS, num_nodes):  # the others: depth from the inputs and the constants, past theirs
            if live[v] and not constant[v]:
                d = 1
                for k in range(first[v], first[v + 1]):
                    s = merged_sources[order[k]]
                    if s >= NUM_INPUTS and not constant[s]:
                        d = max(d, level[s] - deepest_constant + 1)
                level[v] = d + deepest_constant
    drawn = live.copy()  # the live nodes that get a row of their own
    for v in range(NUM_INPUTS, num_nodes):
        drawn[v] = live[v] and canon[v] == v

    count, constants = 0, 0
    for v in range(NUM_INPUTS, num_nodes):
        count += drawn[v]
        constants += drawn[v] and constant[v]
    nodes = np.empty(count, np.int64)  # the drawn nodes past the inputs, in id order
    keys = np.empty(count, np.int64)
    most = 0
    i = 0
    for v in range(NUM_INPUTS, num_nodes):
        if drawn[v]:
            nodes[i], keys[i] = v, level[v] * num_functions + functions[v - NUM_INPUTS]
            most = max(most, keys[i])
            i += 1
    order = _counting_sort(keys, most + 1)[1]
    row = np.empty(num_nodes, np.int64)  # each node's row: inputs keep rows 0..3
    for v in range(NUM_INPUTS):
        row[v] = v
    row_depth = np.empty(count, np.int64)
    row_function = np.empty(count, np.int64)
    for r in range(count):
        v = nodes[order[r]]
        row[v] = NUM_INPUTS + r
        row_depth[r], row_function[r] = level[v], functions[v - NUM_INPUTS]
    for v in range(NUM_INPUTS, num_nodes):  # a shared node reads its first's row (an earlier node: set above)
        if live[v] and not drawn[v]:
            row[v] = row[canon[v]]

    m = 0
    for j in range(merged_targets.size):
        m += drawn[merged_targets[j]]
    used = np.empty(m, np.int64)  # the connections into drawn nodes (from live nodes), in packed order
    target_rows = np.empty(m, np.int64)  # (minus 4)
    i = 0
    for j in range(merged_targets.size):
        if drawn[merged_targets[j]]:
            used[i], target_rows[i] = j, row[merged_targets[j]] - NUM_INPUTS
            i += 1
    by_target = _counting_sort(target_rows, count)[1]
    out_sources, out_targets = np.empty(m, np.int64), np.empty(m, np.int64)
    out_weights, out_edges, out_scales = np.empty(m, np.float64), np.empty(m, np.int64), np.empty(m, np.float64)
    for i in range(m):
        j = used[by_target[i]]
        scale = input_scale[functions[merged_targets[j] - NUM_INPUTS]]
        out_sources[i], out_targets[i] = row[merged_sources[j]], NUM_INPUTS + target_rows[by_target[i]]
        out_weights[i], out_edges[i], out_scales[i] = weights[j] * scale, j, scale
    output_rows = np.empty(output_ids.size, np.int64)
    for k in range(output_ids.size):
        output_rows[k] = row[output_ids[k]]
    return (NUM_INPUTS + count, out_sources, out_targets, out_weights, out_edges, out_scales, row_depth,
            row_function, output_rows, constants)
