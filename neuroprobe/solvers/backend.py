"""Array backends: the same solver code runs on numpy or on torch (CPU or CUDA).

A solver asks for a backend with :func:`get_backend` and writes its arithmetic with the
backend's few functions (``asarray``, ``to_numpy``, ``eigh``, ``zeros`` ...) plus the ``@``
operator, which both numpy arrays and torch tensors support. Results go back to the caller as
numpy arrays.

Extension point: a new backend is one more class with these methods, returned by
:func:`get_backend`.
"""

from __future__ import annotations

import numpy as np


class NumpyBackend:
    """numpy arrays on the CPU."""

    name = "numpy"
    device = "cpu"

    def asarray(self, x, dtype=None):
        return np.asarray(x, dtype=dtype)

    def to_numpy(self, x):
        return np.asarray(x)

    def zeros(self, shape, dtype=np.float32):
        return np.zeros(shape, dtype=dtype)

    def eigh(self, a):
        return np.linalg.eigh(a)

    def svd(self, a):
        return np.linalg.svd(a, full_matrices=False)

    def free_memory(self):
        from neuroprobe._utils import memory_budget

        return memory_budget()

    def __repr__(self):
        return "NumpyBackend()"


class TorchBackend:
    """torch tensors on ``device``.

    ``"cpu"``, ``"cuda"``, ``"cuda:1"``; ``"auto"`` picks CUDA when present.
    """

    name = "torch"

    def __init__(self, device="cpu"):
        import torch

        from neuroprobe._utils import resolve_device

        self.torch = torch
        self.device = resolve_device(device)

    _DTYPES = {
        np.dtype("float32"): "float32",
        np.dtype("float64"): "float64",
        np.dtype("int64"): "int64",
        np.dtype("int32"): "int32",
        np.dtype("bool"): "bool",
    }

    def _dtype(self, dtype):
        if dtype is None:
            return None
        if isinstance(dtype, self.torch.dtype):
            return dtype
        return getattr(self.torch, self._DTYPES[np.dtype(dtype)])

    def asarray(self, x, dtype=None):
        torch = self.torch
        if isinstance(x, torch.Tensor):
            return x.to(device=self.device, dtype=self._dtype(dtype))
        x = np.asarray(x)
        if dtype is not None:
            x = x.astype(dtype, copy=False)
        if not x.flags.writeable:
            # a read-only input (joblib memmap, dask buffer, user's setflags): torch would share
            # memory it may not write; copy (callers pass X or one target batch, never all of Y)
            x = np.array(x)
        return torch.as_tensor(x, device=self.device)

    def to_numpy(self, x):
        if isinstance(x, self.torch.Tensor):
            return x.detach().cpu().numpy()
        return np.asarray(x)

    def zeros(self, shape, dtype=np.float32):
        return self.torch.zeros(shape, dtype=self._dtype(dtype), device=self.device)

    def eigh(self, a):
        return self.torch.linalg.eigh(a)

    def svd(self, a):
        return self.torch.linalg.svd(a, full_matrices=False)

    def free_memory(self):
        """Free bytes on the device (CUDA), or the host memory budget (CPU)."""
        if self.device.type == "cuda":
            free, _ = self.torch.cuda.mem_get_info(self.device)
            return int(free * 0.8)
        from neuroprobe._utils import memory_budget

        return memory_budget()

    def __repr__(self):
        return f"TorchBackend(device={str(self.device)!r})"


def get_backend(backend="numpy", device="cpu"):
    """Return the backend object for ``backend`` (``"numpy"`` or ``"torch"``) and ``device``."""
    if backend == "numpy":
        if device not in (None, "cpu", "auto"):
            raise ValueError(
                f"backend='numpy' runs on the CPU only; got device={device!r}. "
                "Use backend='torch' for a GPU."
            )
        return NumpyBackend()
    if backend == "torch":
        return TorchBackend(device)
    raise ValueError(f"backend must be 'numpy' or 'torch'; got {backend!r}")
