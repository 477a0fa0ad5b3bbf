"""fooling.jit: the compiled kernels work where numba has nowhere to cache them, and direct runs never import numba."""

from __future__ import annotations

import os
import subprocess
import sys


def _fresh(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def test_the_kernels_work_where_numba_has_nowhere_to_cache() -> None:
    """A read-only package and no writable user cache: numba refuses cache=True at decoration; the kernels
    compile in memory instead (a fresh process, so this test's own kernels stay as they are)."""
    out = _fresh(
        "import numba.core.caching as caching; "
        "(getattr(caching, 'CacheImpl', None) or caching._CacheImpl)._locator_classes = []; "
        "import numpy as np, torch; from fooling.encodings.cppn import kernels; from fooling import hls_cpu; "
        "print(kernels._counting_sort(np.array([2, 0, 1, 0]), 3)[1].tolist()); "
        "print(hls_cpu.hls_to_rgb_cpu(torch.tensor([0.0, 0.5, 1.0]).view(1, 3, 1, 1)).flatten().tolist())")
    assert out.split("\n")[:2] == ["[1, 3, 2, 0]", "[1.0, 0.0, 0.0]"]


def test_a_grey_direct_run_never_imports_numba() -> None:
    """Kernels load on first use: a grey direct decode (MNIST) needs none of them."""
    out = _fresh("import sys, torch; from fooling.encodings.direct import DirectEncoding; "
                 "e = DirectEncoding((1, 28, 28)); e.decode(torch.rand(2, 784), torch.device('cpu')); "
                 "print('numba' in sys.modules)")
    assert out.strip() == "False"


def test_with_numba_disabled_the_decode_is_pytorchs() -> None:
    """NUMBA_DISABLE_JIT=1 (a debugging switch) would run the HLS loop as Python: PyTorch's passes convert instead."""
    code = ("import torch; from fooling import hls_cpu, imaging; x = torch.rand(2, 3, 8, 8); "
            "print(hls_cpu.COMPILED, hls_cpu.hls_to_rgb_cpu(x), "
            "torch.equal(imaging.hls_to_rgb(x), imaging._hls_to_rgb(x)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "NUMBA_DISABLE_JIT": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["False", "None", "True"]
