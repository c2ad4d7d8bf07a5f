"""Brain image files through nibabel: load, lazy masked reads, and writing maps back.

Formats: NIfTI-1/2 (3D or 4D), CIFTI-2 dense files (``.dscalar.nii``, ``.dtseries.nii``,
``.dlabel.nii``), GIFTI functional / shape / label files (``.func.gii``, ``.shape.gii``,
``.label.gii``) and FreeSurfer MGH/MGZ. Other volume formats nibabel reads (Analyze, MINC) are
read like NIfTI.

Reads are lazy wherever the format allows it: volumes and CIFTI files are read through nibabel's
array proxies (``img.dataobj[...]``), a block of samples at a time and only over the bounding box
of the selected voxels, so that a small region out of a large 4D file never loads the whole file.
Gzipped files (``.nii.gz``, ``.mgz``) are opened with ``keep_file_open=True`` so the blocks are
decompressed in one forward pass. GIFTI files are XML and are parsed whole by nibabel.

The sample axis is the last axis of a volume (``x, y, z, t``), the first (row) axis of a CIFTI
matrix, and the data arrays of a GIFTI file (one per sample, or columns of one 2-D array).
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import numpy as np

from neuroprobe._utils import atomic_path

__all__ = [
    "load_image",
    "image_format",
    "image_name",
    "n_samples",
    "space_size",
    "iter_rows",
    "read_lut",
    "save_image",
    "new_volume_like",
    "new_cifti_like",
    "new_gifti_like",
    "closest_names",
]

#: Target size of one block read from disk (full-volume bytes).
BLOCK_BYTES = 64 * 1024**2


def _nib():
    import nibabel

    return nibabel


def image_name(img):
    """A short name for messages: the file path, or the image class for in-memory images."""
    if isinstance(img, (str, os.PathLike)):
        return str(img)
    if isinstance(img, tuple):
        return "(" + ", ".join(image_name(i) for i in img) + ")"
    filename = getattr(img, "get_filename", lambda: None)()
    return filename or f"<in-memory {type(img).__name__}>"


def load_image(img):
    """Return a nibabel image from a path or an image (returned unchanged).

    Gzipped files are opened with ``keep_file_open=True`` so that successive block reads decompress
    forward instead of restarting from the file start.

    Raises
    ------
    FileNotFoundError
        The path does not exist.
    ValueError
        The file is not an image nibabel can read.
    """
    nib = _nib()
    if not isinstance(img, (str, os.PathLike)):
        if not hasattr(img, "dataobj") and not isinstance(img, nib.gifti.GiftiImage):
            raise TypeError(
                f"expected a path or a nibabel image, got {type(img).__name__}"
            )
        return img
    path = Path(img)
    if not path.exists():
        raise FileNotFoundError(f"brain image not found: {path}")
    kwargs = {}
    name = path.name.lower()
    if name.endswith((".gz", ".mgz")):
        kwargs["keep_file_open"] = True
    try:
        if name.endswith(".gii"):
            return nib.load(path)
        return nib.load(path, **kwargs)
    except Exception as exc:  # nibabel raises several types
        raise ValueError(
            f"cannot read {path} as a brain image (NIfTI, CIFTI-2, GIFTI or MGH/MGZ): {exc}"
        ) from exc


def image_format(img):
    """``"cifti"``, ``"gifti"``, ``"mgh"`` or ``"nifti"`` (any other volume) for a loaded image."""
    nib = _nib()
    if isinstance(img, nib.Cifti2Image):
        return "cifti"
    if isinstance(img, nib.gifti.GiftiImage):
        return "gifti"
    if isinstance(img, nib.MGHImage):
        return "mgh"
    if hasattr(img, "affine") and hasattr(img, "dataobj"):
        return "nifti"
    raise TypeError(f"{image_name(img)}: unsupported image type {type(img).__name__}")


def _gifti_blocks(img):
    """GIFTI data arrays as a list of (k, n_vertices) arrays (one per data array)."""
    nib = _nib()
    geometry = {
        nib.nifti1.intent_codes["NIFTI_INTENT_POINTSET"],
        nib.nifti1.intent_codes["NIFTI_INTENT_TRIANGLE"],
    }
    if not img.darrays:
        raise ValueError(f"{image_name(img)}: GIFTI file has no data arrays")
    blocks = []
    for darray in img.darrays:
        if darray.intent in geometry:
            raise ValueError(
                f"{image_name(img)}: GIFTI file holds a surface geometry (pointset/triangle), "
                "not data; pass a functional, shape or label GIFTI file"
            )
        data = np.asarray(darray.data)
        blocks.append(data[None, :] if data.ndim == 1 else data.reshape(data.shape[0], -1).T)
    sizes = {b.shape[1] for b in blocks}
    if len(sizes) != 1:
        raise ValueError(
            f"{image_name(img)}: GIFTI data arrays have different vertex counts {sorted(sizes)}"
        )
    return blocks


def n_samples(img):
    """Number of samples (volumes, CIFTI rows, GIFTI data columns) of a loaded image."""
    fmt = image_format(img)
    if fmt == "gifti":
        return sum(b.shape[0] for b in _gifti_blocks(img))
    if fmt == "cifti":
        return int(img.shape[0])
    shape = img.shape
    return int(shape[3]) if len(shape) > 3 else 1


def space_size(img):
    """Number of voxels / grayordinates / vertices of one sample."""
    fmt = image_format(img)
    if fmt == "gifti":
        return int(_gifti_blocks(img)[0].shape[1])
    if fmt == "cifti":
        return int(img.shape[1])
    return int(np.prod(img.shape[:3]))


def _block_size(bytes_per_sample, max_bytes):
    return max(1, int((max_bytes or BLOCK_BYTES) // max(1, bytes_per_sample)))


def iter_rows(img, columns, *, max_bytes=None):
    """Yield float32 blocks ``(k, len(columns))`` of ``img`` restricted to ``columns``.

    Parameters
    ----------
    img : nibabel image
        A loaded image (see :func:`load_image`).
    columns : array of int
        Flat indices into one sample: C-order voxel indices of the 3-D grid for volumes,
        grayordinate indices for CIFTI, vertex indices for GIFTI; must be sorted.
    max_bytes : int, optional
        Bytes of file data per block (default :data:`BLOCK_BYTES`), counted over whole samples, so
        peak memory stays near this bound whatever the read pattern of nibabel.

    Yields
    ------
    block : ndarray, float32, shape (k, len(columns))
    """
    columns = np.asarray(columns, dtype=np.intp)
    fmt = image_format(img)
    if fmt == "gifti":
        for block in _gifti_blocks(img):
            yield np.asarray(block[:, columns], dtype=np.float32)
        return
    if len(columns) == 0:
        yield np.zeros((n_samples(img), 0), np.float32)
        return
    proxy = img.dataobj
    itemsize = max(4, np.dtype(img.get_data_dtype()).itemsize)
    if fmt == "cifti":
        lo, hi = int(columns[0]), int(columns[-1]) + 1
        step = _block_size(img.shape[1] * itemsize, max_bytes)
        local = columns - lo
        for start in range(0, img.shape[0], step):
            stop = min(img.shape[0], start + step)
            block = np.asarray(proxy[start:stop, lo:hi])
            yield np.ascontiguousarray(block[:, local], dtype=np.float32)
        return
    shape = tuple(int(s) for s in img.shape[:3])
    if len(img.shape) > 4 and any(int(s) != 1 for s in img.shape[4:]):
        raise ValueError(
            f"{image_name(img)}: image has shape {img.shape}; expected 3-D or 4-D (x, y, z[, t])"
        )
    ijk = np.unravel_index(columns, shape)
    box = tuple(slice(int(a.min()), int(a.max()) + 1) for a in ijk)
    local = np.ravel_multi_index(
        tuple(a - s.start for a, s in zip(ijk, box)), tuple(s.stop - s.start for s in box)
    )
    extra = (0,) * (len(img.shape) - 4) if len(img.shape) > 4 else ()
    if len(img.shape) == 3:
        block = np.asarray(proxy[box])
        yield np.asarray(block.reshape(1, -1)[:, local], dtype=np.float32)
        return
    n = int(img.shape[3])
    step = _block_size(int(np.prod(shape)) * itemsize, max_bytes)
    for start in range(0, n, step):
        stop = min(n, start + step)
        block = np.asarray(proxy[box + (slice(start, stop),) + extra])
        block = np.moveaxis(block, 3, 0).reshape(stop - start, -1)
        yield np.ascontiguousarray(block[:, local], dtype=np.float32)


def read_lut(path):
    """Read a FreeSurfer-style lookup table: lines ``value name [R G B A]``, ``#`` comments.

    Returns
    -------
    dict of int -> str
    """
    table = {}
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"lookup table not found: {path}")
    with open(path) as fh:
        for lineno, line in enumerate(fh, 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = line.split()
            try:
                value = int(parts[0])
            except ValueError:
                raise ValueError(
                    f"{path}, line {lineno}: expected 'value name [R G B A]', got {line!r}"
                ) from None
            if len(parts) < 2:
                raise ValueError(f"{path}, line {lineno}: label {value} has no name")
            table[value] = parts[1]
    return table


def closest_names(name, names, n=3):
    """The names closest to ``name`` (for error messages)."""
    return difflib.get_close_matches(str(name), [str(x) for x in names], n=n, cutoff=0.5)


def _suffix(path):
    suffixes = Path(path).suffixes
    known = [".dscalar", ".dtseries", ".dlabel", ".func", ".shape", ".label", ".nii", ".gz",
             ".gii", ".mgz", ".mgh", ".img", ".hdr"]
    keep = []
    for s in reversed(suffixes):
        if s.lower() not in known:
            break
        keep.insert(0, s)
    return "".join(keep) or "".join(suffixes[-1:])


def save_image(img, path):
    """Write ``img`` to ``path`` atomically (temporary file, then rename).

    A GIFTI hemisphere pair ``(lh, rh)`` is written to a pair of paths.
    """
    nib = _nib()
    if isinstance(img, tuple):
        if not isinstance(path, (tuple, list)) or len(path) != len(img):
            raise ValueError(
                f"a pair of GIFTI images needs a pair of output paths, got {path!r}"
            )
        return tuple(save_image(i, p) for i, p in zip(img, path))
    path = Path(path)
    with atomic_path(path, suffix=_suffix(path)) as tmp:
        nib.save(img, tmp)
    return path


def new_volume_like(ref, data):
    """A volume image of the class, affine and header of ``ref`` holding float32 ``data``.

    ``ref`` is a nibabel volume image, or a tuple ``(image class, header, affine)``. NIfTI-1/2 and
    MGH keep their class and header (zooms, units, orientation codes); other volume formats
    become NIfTI-1.
    """
    nib = _nib()
    cls, header, affine = ref if isinstance(ref, tuple) else (type(ref), ref.header, ref.affine)
    data = np.asarray(data, dtype=np.float32)
    if issubclass(cls, nib.MGHImage):
        return nib.MGHImage(data, affine, header.copy())
    if not issubclass(cls, (nib.Nifti1Image, nib.Nifti2Image)):
        cls, header = nib.Nifti1Image, None
    out = cls(data, affine, None if header is None else header.copy())
    out.set_data_dtype(np.float32)
    out.header.set_slope_inter(None, None)
    out.header.set_intent("none")
    return out


def new_cifti_like(brain_models, data, row_axis=None):
    """A CIFTI-2 image with the brain-model axis ``brain_models`` and float32 ``data`` (k, n).

    ``row_axis`` (a Scalar or Series axis of length k) is reused when given; otherwise the rows
    become a scalar axis ``map_0, map_1, ...`` (a ``.dscalar.nii``).
    """
    nib = _nib()
    axes = nib.cifti2.cifti2_axes
    data = np.asarray(data, dtype=np.float32)
    if row_axis is None or len(row_axis) != data.shape[0] or isinstance(row_axis, axes.LabelAxis):
        row_axis = axes.ScalarAxis([f"map_{i}" for i in range(data.shape[0])])
    img = nib.Cifti2Image(data, header=(row_axis, brain_models))
    intent = "ConnDenseSeries" if isinstance(row_axis, axes.SeriesAxis) else "ConnDenseScalar"
    img.nifti_header.set_intent(intent)
    return img


def new_gifti_like(ref, data):
    """A GIFTI image with the metadata of ``ref`` and one float32 data array per row of ``data``."""
    nib = _nib()
    data = np.asarray(data, dtype=np.float32)
    codes = nib.nifti1.intent_codes
    intent = "NIFTI_INTENT_TIME_SERIES" if data.shape[0] > 1 else "NIFTI_INTENT_SHAPE"
    meta = None
    if ref is not None:
        meta = nib.gifti.GiftiMetaData(dict(ref.meta))
        usable = [d.intent for d in ref.darrays if d.intent != codes["NIFTI_INTENT_LABEL"]]
        if usable:
            intent = codes.niistring[usable[0]]
    darrays = [
        nib.gifti.GiftiDataArray(row, intent=intent, datatype="NIFTI_TYPE_FLOAT32") for row in data
    ]
    return nib.gifti.GiftiImage(meta=meta, darrays=darrays)
