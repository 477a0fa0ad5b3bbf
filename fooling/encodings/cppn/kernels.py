"""Compiled loops over a CPPN population laid end to end: structural mutation, and depth and reachability.

Both walk each genome's few dozen connections one by one, which numpy can only express as dozens
of whole-population calls a step (about 4 ms of a MNIST generation of 250 children on 2 CPU cores,
where the forward pass is 25 ms); numba compiles the loops once per machine (``cache=True`` keeps
the machine code beside this file) and runs them in about 0.1 ms. The semantics are those of the
single-genome operators of :mod:`.mutation` and of the node-by-node definitions in the tests, which
the tests hold these to, child for child.

Everything here relies on the topological numbering of :mod:`.genome`: every connection runs from
a lower to a higher node number (merged populations keep it: see :mod:`.compile`).
"""

from __future__ import annotations

import numba
import numpy as np

from .functions import NUM_FUNCTIONS
from .genome import NUM_INPUTS, WEIGHT_RANGE

_jit = numba.njit(cache=True, nogil=True)


@_jit
def _pick(u: float, count: int) -> int:
    """A uniform index in [0, count) from u in [0, 1) (as ``mutation._pick``)."""
    return min(int(u * count), count - 1)


@_jit
def _first_target(source: int) -> int:
    return max(source + 1, NUM_INPUTS)


@_jit
def _remove(src, tgt, wgt, e, i):
    """Connection i of the first ``e`` removed (the rest move up one); returns it."""
    s, t, w = src[i], tgt[i], wgt[i]
    for j in range(i, e - 1):
        src[j], tgt[j], wgt[j] = src[j + 1], tgt[j + 1], wgt[j + 1]
    return s, t, w


@_jit
def _add_connection(src, tgt, wgt, e, n, first_output, u0, u1, starts, ranks):
    """``mutation.add_connection`` on the first ``e`` connections; returns the new count."""
    starts[0] = 0
    for s in range(first_output):
        starts[s + 1] = starts[s] + n - _first_target(s)
    free = starts[first_output] - e
    if free <= 0:
        return e
    rank = _pick(u0, free)
    for j in range(e):
        ranks[j] = starts[src[j]] + tgt[j] - _first_target(src[j])
    taken = np.sort(ranks[:e])
    for j in range(e):
        if taken[j] > rank:
            break
        rank += 1
    source = np.searchsorted(starts[:first_output + 1], rank, side="right") - 1
    src[e], tgt[e], wgt[e] = source, _first_target(source) + rank - starts[source], WEIGHT_RANGE * (2.0 * u1 - 1.0)
    return e + 1


@_jit
def _rewire_connection(src, tgt, e, n, first_output, u0, u1, u2, taken):
    """``mutation.rewire_connection`` on the first ``e`` connections (``taken``: (n,) scratch)."""
    if e == 0:
        return
    i = _pick(u0, e)
    source, target = src[i], tgt[i]
    taken[:n] = False
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


@_jit
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


@_jit
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


@_jit
def mutate_structure_packed(hidden, outputs, functions, sources, targets, weights, edges, changes, uniforms,
                            max_hidden):
    """Every genome's structural changes (``mutation.mutate_structure``), the population laid end to end.

    hidden, edges: (N,) int64 hidden node and connection counts; outputs: O, the outputs a genome;
    functions: (Σ H + O,) int8; sources, targets: (E,) int64; weights: (E,) float64; changes: (N, 5) bool;
    uniforms: (N, 5, 3) float64. Returns new (hidden, functions, sources, targets, weights, edges),
    the inputs untouched.
    """
    n = hidden.size
    out_hidden, out_edges = hidden.copy(), edges.copy()
    out_functions = np.empty(functions.size + n, np.int8)  # each genome gains at most one node...
    out_sources = np.empty(sources.size + 2 * n, np.int64)  # ...and two connections
    out_targets = np.empty(sources.size + 2 * n, np.int64)
    out_weights = np.empty(sources.size + 2 * n, np.float64)
    most_edges = edges.max() + 2 if n else 2
    most_nodes = (hidden.max() if n else 0) + NUM_INPUTS + outputs + 1
    src = np.empty(most_edges, np.int64)
    tgt = np.empty(most_edges, np.int64)
    wgt = np.empty(most_edges, np.float64)
    ranks = np.empty(most_edges, np.int64)
    starts = np.empty(most_nodes + 1, np.int64)
    taken = np.empty(most_nodes, np.bool_)
    e_in = f_in = e_out = f_out = 0
    for g in range(n):
        e, h = edges[g], hidden[g]
        fun = out_functions[f_out:f_out + h + outputs + 1]  # written in place: room for one more node
        fun[:h + outputs] = functions[f_in:f_in + h + outputs]
        src[:e], tgt[:e], wgt[:e] = sources[e_in:e_in + e], targets[e_in:e_in + e], weights[e_in:e_in + e]
        e_in += e
        f_in += h + outputs
        c, u = changes[g], uniforms[g]
        if c[0]:
            e = _add_connection(src, tgt, wgt, e, NUM_INPUTS + h + outputs, NUM_INPUTS + h, u[0, 0], u[0, 1],
                                starts, ranks)
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
        out_sources[e_out:e_out + e], out_targets[e_out:e_out + e] = src[:e], tgt[:e]
        out_weights[e_out:e_out + e] = wgt[:e]
        out_hidden[g], out_edges[g] = h, e
        e_out += e
        f_out += h + outputs
    return (out_hidden, out_functions[:f_out], out_sources[:e_out], out_targets[:e_out], out_weights[:e_out],
            out_edges)


@_jit
def _into(num_nodes, targets):
    """Each node's incoming connections as CSR: (first (num_nodes + 1,), order (E,)), connection order kept."""
    first = np.zeros(num_nodes + 1, np.int64)
    for t in targets:
        first[t + 1] += 1
    for v in range(num_nodes):
        first[v + 1] += first[v]
    fill = first[:-1].copy()
    order = np.empty(targets.size, np.int64)
    for j in range(targets.size):
        order[fill[targets[j]]] = j
        fill[targets[j]] += 1
    return first, order


@_jit
def depths(num_nodes, sources, targets):
    """(num_nodes,) int64 longest-path depth of every node (inputs 0, other nodes at least 1); sources < targets."""
    depth = np.ones(num_nodes, np.int64)
    depth[:NUM_INPUTS] = 0
    first, order = _into(num_nodes, targets)
    for v in range(NUM_INPUTS, num_nodes):  # every source of v comes before it, and is final
        for j in order[first[v]:first[v + 1]]:
            depth[v] = max(depth[v], depth[sources[j]] + 1)
    return depth


@_jit
def reaching(num_nodes, sources, targets, ends):
    """(num_nodes,) bool: the nodes with a path to one of ``ends`` (ends included); sources < targets."""
    reach = np.zeros(num_nodes, np.bool_)
    reach[ends] = True
    first, order = _into(num_nodes, targets)
    for v in range(num_nodes - 1, -1, -1):  # every target of v comes after it, and is final
        if reach[v]:
            for j in order[first[v]:first[v + 1]]:
                reach[sources[j]] = True
    return reach


@_jit
def _counting_order(keys, size):
    """(len(keys),) int64, ``np.argsort(keys, kind="stable")`` for keys in [0, size)."""
    first = np.zeros(size + 1, np.int64)
    for k in keys:
        first[k + 1] += 1
    for k in range(size):
        first[k + 1] += first[k]
    order = np.empty(keys.size, np.int64)
    for j in range(keys.size):
        order[first[keys[j]]] = j
        first[keys[j]] += 1
    return order


@_jit
def merge_population(hidden, outputs, functions, sources, targets, weights, edges, input_scale):
    """A population laid end to end merged into one graph, its dead nodes dropped, rows in drawing order.

    Node ids: 0..3 the shared inputs, then every genome's nodes 4.. shifted past the previous genomes'.
    Live nodes (with a path to an output) become rows 4.., sorted by depth (longest path from an input),
    then function id, then genome order; connections into live nodes are kept, sorted by their target's
    row (connection order kept within one target). Inputs as :func:`mutate_structure_packed`'s, and
    input_scale (F,) float64 each function's factor folded into the weights (``functions.INPUT_SCALE``).

    Returns rows (count, inputs included); per connection (E',): source rows, target rows, weights times
    their target's scale, the connection's position in the packed arrays, that scale; per row past the
    inputs (R,): depth and function; and the output rows (N·O,), genome by genome.
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

    nodes = np.flatnonzero(live[NUM_INPUTS:]) + NUM_INPUTS
    keys = np.empty(nodes.size, np.int64)
    for i in range(nodes.size):
        keys[i] = depth[nodes[i]] * num_functions + functions[nodes[i] - NUM_INPUTS]
    order = _counting_order(keys, (depth.max() + 1) * num_functions)
    row = np.arange(num_nodes)  # inputs keep rows 0..3
    row_depth = np.empty(nodes.size, np.int64)
    row_function = np.empty(nodes.size, np.int64)
    for r in range(nodes.size):
        v = nodes[order[r]]
        row[v] = NUM_INPUTS + r
        row_depth[r], row_function[r] = depth[v], functions[v - NUM_INPUTS]

    used = np.flatnonzero(live[merged_targets])
    target_rows = np.empty(used.size, np.int64)
    for i in range(used.size):
        target_rows[i] = row[merged_targets[used[i]]]
    by_target = _counting_order(target_rows - NUM_INPUTS, nodes.size)
    m = used.size
    out_sources, out_targets = np.empty(m, np.int64), np.empty(m, np.int64)
    out_weights, out_edges, out_scales = np.empty(m, np.float64), np.empty(m, np.int64), np.empty(m, np.float64)
    for i in range(m):
        j = used[by_target[i]]
        scale = input_scale[functions[merged_targets[j] - NUM_INPUTS]]
        out_sources[i], out_targets[i] = row[merged_sources[j]], target_rows[by_target[i]]
        out_weights[i], out_edges[i], out_scales[i] = weights[j] * scale, j, scale
    return (NUM_INPUTS + nodes.size, out_sources, out_targets, out_weights, out_edges, out_scales, row_depth,
            row_function, row[output_ids])
