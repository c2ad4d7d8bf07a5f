"""Stimulus inputs of the feature extractor, seen through one interface.

:class:`StimulusSource` wraps what :class:`~neuroprobe.transformers.DNNFeatureExtractor` accepts
(a StimulusSet, file paths, uint8 images, preprocessed float tensors) and gives their count, IDs,
identity keys (file path + size + mtime, or a hash of each array row: the activation caches' keys),
decoded items and subsets.
"""

from __future__ import annotations

import hashlib
import os

import numpy as np

__all__ = ["StimulusSource"]


def _sha1(*parts):
    digest = hashlib.sha1()
    for part in parts:
        digest.update(part if isinstance(part, bytes) else str(part).encode())
        digest.update(b"\0")
    return digest.hexdigest()


class StimulusSource:
    """Uniform view of every accepted stimulus input: ``len``, ``ids``, ``keys()``, ``load(i)``,
    ``subset``, ``batch_tensor``.

    Parameters
    ----------
    X : StimulusSet, list of paths, uint8 image array (n, H, W[, C]) or float tensor/array
        The stimuli as given to :class:`~neuroprobe.transformers.DNNFeatureExtractor`.
    """

    def __init__(self, X):
        import torch

        self.X = X
        if hasattr(X, "load") and hasattr(X, "ids"):  # StimulusSet
            self.kind = "stimset"
        elif isinstance(X, torch.Tensor):
            self.kind = "tensor"
            if not X.is_floating_point():
                raise ValueError(
                    f"a tensor X must be float (already preprocessed), got dtype {X.dtype}"
                )
        elif isinstance(X, np.ndarray) and X.dtype.kind in "fc" and X.ndim >= 2:
            self.kind = "tensor"
        elif isinstance(X, np.ndarray) and X.dtype == np.uint8:
            if not (X.ndim == 3 or (X.ndim == 4 and X.shape[-1] in (1, 3, 4))):
                raise ValueError(
                    "a uint8 X must hold images of shape (n, H, W, 3), (n, H, W, 4) or (n, H, W); "
                    f"got {X.shape}"
                )
            self.kind = "uint8"
        elif isinstance(X, (list, tuple, np.ndarray)) and all(
            isinstance(p, (str, os.PathLike))
            for p in (X.ravel() if isinstance(X, np.ndarray) else X)
        ):
            paths = [os.fspath(p) for p in (np.ravel(X) if isinstance(X, np.ndarray) else X)]
            try:
                from neuroprobe.stimuli import StimulusSet
            except ImportError:  # pragma: no cover - stimuli module missing
                self.kind = "paths"
                self.X = [os.path.abspath(p) for p in paths]
            else:
                self.kind = "stimset"
                self.X = StimulusSet.from_paths(paths) if paths else paths
        else:
            raise TypeError(
                "X must be a StimulusSet, a list of file paths, a uint8 image array (n, H, W, 3) "
                "or a float tensor/array (n, C, ...) that is already preprocessed; got "
                f"{type(X).__name__}" + (f" of dtype {X.dtype}" if hasattr(X, "dtype") else "")
            )
        if len(self) == 0:
            raise ValueError("empty stimulus set: X holds 0 stimuli")

    def __len__(self):
        return len(self.X)

    @property
    def ids(self):
        if self.kind == "stimset":
            return np.asarray(self.X.ids).astype(str)
        if self.kind == "paths":
            return np.asarray([os.path.splitext(os.path.basename(p))[0] for p in self.X])
        return np.arange(len(self)).astype(str)

    def subset(self, indices):
        indices = np.asarray(indices, dtype=np.int64)
        new = object.__new__(StimulusSource)
        new.kind = self.kind
        if self.kind == "paths":
            new.X = [self.X[i] for i in indices]
        else:
            new.X = self.X[indices]
        return new

    def _array(self):
        if self.kind == "stimset":
            return getattr(self.X, "data", None)
        if self.kind in ("tensor", "uint8"):
            return self.X
        return None

    def keys(self):
        """Identity of each stimulus: file path + size + mtime, or a hash of the array row."""
        array = self._array()
        if array is not None:
            out = []
            for i in range(len(self)):
                row = array[i]
                row = row.detach().cpu().numpy() if hasattr(row, "detach") else np.asarray(row)
                row = np.ascontiguousarray(row)
                out.append(_sha1("array", row.dtype.str, row.shape, row.tobytes()))
            return out
        paths = self.X.paths if self.kind == "stimset" else self.X
        out = []
        for path in paths:
            try:
                st = os.stat(path)
            except OSError as exc:
                raise FileNotFoundError(f"stimulus file not found or unreadable: {path}") from exc
            out.append(_sha1("file", os.path.abspath(path), st.st_size, st.st_mtime_ns))
        return out

    def load(self, i):
        """Decoded stimulus ``i`` (PIL image, audio/video tuple, or float tensor row)."""
        import torch

        if self.kind == "stimset":
            return self.X.load(int(i))
        if self.kind == "tensor":  # a copy, as batch_tensor's
            row = self.X[i]
            if isinstance(row, torch.Tensor):
                return row.to(torch.float32, copy=True)
            return torch.from_numpy(np.array(row, dtype=np.float32))
        if self.kind == "uint8":
            from PIL import Image

            row = self.X[i]
            if row.ndim == 3 and row.shape[-1] == 1:
                row = row[..., 0]
            return Image.fromarray(row).convert("RGB")
        from PIL import Image

        path = self.X[i]
        try:
            with Image.open(path) as img:
                return img.convert("RGB")
        except (OSError, ValueError) as exc:
            raise ValueError(f"cannot read stimulus file {path}: {exc}") from exc

    def batch_tensor(self, indices):
        """Fast path for preprocessed float inputs: the rows as one float32 tensor."""
        import torch

        indices = np.asarray(indices, dtype=np.int64)
        if (
            len(indices)
            and indices[-1] - indices[0] + 1 == len(indices)
            and (np.all(np.diff(indices) == 1))
        ):  # a contiguous run: one copy of the batch (never a view of the caller's stimuli,
            # which a module could change in place, nor of a read-only memmap torch may not share)
            rows = self.X[int(indices[0]) : int(indices[-1]) + 1]
            if isinstance(rows, np.ndarray):
                return torch.from_numpy(np.array(rows, dtype=np.float32))
            return rows.to(torch.float32, copy=True)
        if isinstance(self.X, np.ndarray):
            return torch.from_numpy(np.ascontiguousarray(self.X[indices])).float()
        return self.X[torch.from_numpy(indices)].float()
