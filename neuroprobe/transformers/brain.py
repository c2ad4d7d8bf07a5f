"""BrainMasker: brain images (NIfTI, CIFTI-2, GIFTI, MGH) to (n_samples, n_voxels) and back."""

from __future__ import annotations

import json
import os
import warnings
from numbers import Integral

import numpy as np
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.utils import check_array
from sklearn.utils.validation import check_is_fitted, check_memory

from neuroprobe._utils import atomic_path
from neuroprobe._validation import HasMethods, StrOptions, fit_context
from neuroprobe.io import images as nio

__all__ = ["BrainMasker"]

_SUMMARIES = ("mean", "max", "std")
_LUT_SUFFIXES = (".txt", ".lut", ".ctab")


# --------------------------------------------------------------------------- input units
class _Unit:
    """One input: a single image, or a GIFTI hemisphere pair ``(lh, rh)``."""

    def __init__(self, source):
        self.source = source
        self.name = nio.image_name(source)
        if isinstance(source, tuple):
            self.images = tuple(nio.load_image(s) for s in source)
            fmts = {nio.image_format(i) for i in self.images}
            if fmts != {"gifti"}:
                raise ValueError(
                    f"a pair {self.name} must be two GIFTI files (left, right hemisphere); "
                    f"got formats {sorted(fmts)}"
                )
            self.format = "gifti_pair"
        else:
            self.images = (nio.load_image(source),)
            self.format = nio.image_format(self.images[0])

    @property
    def family(self):
        return "volume" if self.format in ("nifti", "mgh") else self.format

    def n_samples(self):
        counts = [nio.n_samples(i) for i in self.images]
        if len(set(counts)) != 1:
            raise ValueError(f"{self.name}: the hemispheres have different sample counts {counts}")
        return counts[0]

    def iter_rows(self, columns, n_first=None):
        if self.format != "gifti_pair":
            yield from nio.iter_rows(self.images[0], columns)
            return
        left = columns[columns < n_first]
        right = columns[columns >= n_first] - n_first
        # GIFTI is parsed whole anyway; stack each hemisphere so their data-array layouts may differ
        lh = np.vstack(list(nio.iter_rows(self.images[0], left)))
        rh = np.vstack(list(nio.iter_rows(self.images[1], right)))
        yield np.hstack([lh, rh])


def _is_pair(x):
    return isinstance(x, tuple) and len(x) == 2 and all(
        isinstance(i, (str, os.PathLike)) or hasattr(i, "darrays") for i in x
    ) and all(str(nio.image_name(i)).lower().endswith(".gii") or hasattr(i, "darrays") for i in x)


def _as_sources(X):
    """Split the user input into a list of sources and whether it was a single image."""
    if isinstance(X, (str, os.PathLike)) or hasattr(X, "dataobj") or hasattr(X, "darrays"):
        return [X], True
    if _is_pair(X):
        return [X], True
    if isinstance(X, np.ndarray) and X.dtype.kind in "fiub":
        raise TypeError(
            "BrainMasker takes brain images (paths or nibabel images), not a numeric array; "
            "use it before the estimators of a Pipeline"
        )
    try:
        sources = list(X)
    except TypeError:
        raise TypeError(
            f"BrainMasker expected a path, a nibabel image or a list of them, "
            f"got {type(X).__name__}"
        ) from None
    if not sources:
        raise ValueError("BrainMasker got an empty list of images")
    return [tuple(s) if isinstance(s, list) and len(s) == 2 else s for s in sources], False


# --------------------------------------------------------------------------- spaces
def _space_of(unit):
    """A picklable description of the space of a loaded unit."""
    import nibabel as nib

    img = unit.images[0]
    if unit.family == "volume":
        shape = tuple(int(s) for s in img.shape[:3])
        template = (type(img), img.header.copy(), np.asarray(img.affine))
        if not (unit.format == "mgh" or isinstance(img, (nib.Nifti1Image, nib.Nifti2Image))):
            template = (nib.Nifti1Image, None, np.asarray(img.affine))
        return {"family": "volume", "format": unit.format, "shape": shape,
                "affine": np.asarray(img.affine, dtype=float), "template": template,
                "size": int(np.prod(shape))}
    if unit.format == "cifti":
        axes = _cifti_axes(img, unit.name)
        return {"family": "cifti", "format": "cifti", "brain_models": axes[1],
                "row_axis": axes[0], "size": len(axes[1])}
    sizes, templates = [], []
    for i in unit.images:
        sizes.append(nio.space_size(i))
        intents = [d.intent for d in i.darrays]
        templates.append(nib.gifti.GiftiImage(
            meta=nib.gifti.GiftiMetaData(dict(i.meta)),
            darrays=[nib.gifti.GiftiDataArray(np.zeros(1, np.float32), intent=intents[0],
                                              datatype="NIFTI_TYPE_FLOAT32")]))
    return {"family": unit.format, "format": unit.format, "sizes": sizes,
            "templates": templates, "size": int(sum(sizes))}


def _cifti_axes(img, name):
    import nibabel as nib

    axes_mod = nib.cifti2.cifti2_axes
    axes = [img.header.get_axis(i) for i in range(img.ndim)]
    if len(axes) != 2 or not isinstance(axes[1], axes_mod.BrainModelAxis):
        kinds = [type(a).__name__ for a in axes]
        raise ValueError(
            f"{name}: CIFTI axes are {kinds}; BrainMasker needs a dense file whose second axis is "
            "a brain-model axis (grayordinates), e.g. .dscalar.nii, .dtseries.nii or .dlabel.nii"
        )
    if not isinstance(axes[0], (axes_mod.ScalarAxis, axes_mod.SeriesAxis, axes_mod.LabelAxis)):
        raise ValueError(
            f"{name}: CIFTI first axis is a {type(axes[0]).__name__}; expected a scalar, series or "
            "label axis (samples)"
        )
    return axes


def _check_space(space, unit, what, ref_name):
    """Raise if ``unit`` is not in ``space`` (shape / affine / brain models / vertex counts)."""
    family = unit.family
    if family != space["family"]:
        raise ValueError(
            f"{what} {unit.name} is a {unit.format} image but {ref_name} is "
            f"{space['format']}; they must be in the same format and space"
        )
    img = unit.images[0]
    if family == "volume":
        shape = tuple(int(s) for s in img.shape[:3])
        if shape != space["shape"]:
            raise ValueError(
                f"shape mismatch: {what} {unit.name} has grid {shape} but {ref_name} has "
                f"{space['shape']}; resample one onto the other first"
            )
        if not np.allclose(img.affine, space["affine"], atol=1e-3):
            def fmt(a):
                return np.array2string(np.round(np.asarray(a)[:3], 4), separator=",",
                                       max_line_width=10**6).replace("\n", "")

            raise ValueError(
                f"affine mismatch: {what} {unit.name} has affine {fmt(img.affine)} but "
                f"{ref_name} has {fmt(space['affine'])}; resample one onto the other first"
            )
    elif family == "cifti":
        axes = _cifti_axes(img, unit.name)
        if axes[1] != space["brain_models"]:
            raise ValueError(
                f"brain-model mismatch: the grayordinates of {what} {unit.name} "
                f"({len(axes[1])}) differ from those of {ref_name} ({len(space['brain_models'])})"
            )
    else:
        sizes = [nio.space_size(i) for i in unit.images]
        if sizes != space["sizes"]:
            raise ValueError(
                f"vertex count mismatch: {what} {unit.name} has {sizes} vertices but "
                f"{ref_name} has {space['sizes']}"
            )


# --------------------------------------------------------------------------- masks and labels
def _mask_values(mask_unit, space, lut):
    """Flat atlas values over the space, the label table, and CIFTI structure names."""
    table = dict(lut or {})
    if space["family"] == "volume":
        img = mask_unit.images[0]
        data = np.asarray(img.dataobj)
        if data.ndim > 3:
            if int(np.prod(data.shape[3:])) != 1:
                raise ValueError(f"mask_img {mask_unit.name} is not 3-D (shape {data.shape})")
            data = data.reshape(data.shape[:3])
        return [data.ravel(order="C")], [table]
    if space["family"] == "cifti":
        img = mask_unit.images[0]
        axes = _cifti_axes(img, mask_unit.name)
        if hasattr(axes[0], "label"):
            table.update({int(k): v[0] for k, v in axes[0].label[0].items()})
        return [np.asarray(img.dataobj[0:1, :]).ravel()], [table]
    values, tables = [], []
    for img in mask_unit.images:
        block = nio._gifti_blocks(img)[0]
        values.append(block[0])
        tables.append({**table, **{int(lb.key): lb.label for lb in img.labeltable.labels}})
    return values, tables


def _is_binary(values):
    return all(np.isin(np.unique(v), (0, 1)).all() for v in values)


def _resolve_labels(labels, values, tables, structures, mask_name):
    """Return a list of (roi name, flat bool mask) for the requested labels."""
    # values / tables: one per hemisphere (or one); structures: CIFTI names per grayordinate
    ints = []
    for v in values:
        if v is not None and v.size and not np.all(np.isfinite(v) & (np.rint(v) == v)):
            raise ValueError(
                f"mask_img {mask_name} has non-integer values; expected a binary mask or an "
                "integer label atlas"
            )
        ints.append(None if v is None else np.rint(v).astype(np.int64))
    present = sorted({int(x) for v in ints if v is not None for x in np.unique(v)})

    def full(parts):
        return np.concatenate(parts)

    if isinstance(labels, str) and labels == "all":
        labels = [x for x in present if x != 0]
    elif isinstance(labels, (str, Integral)):
        labels = [labels]
    rois = []
    short = None
    if structures is not None:
        short = {s.replace("CIFTI_STRUCTURE_", ""): s for s in np.unique(structures)}
    for label in labels:
        masks = None
        if isinstance(label, str):
            parts = [np.isin(v, [k for k, n in t.items() if n == label]) if v is not None
                     else None for v, t in zip(ints, tables)]
            if any(p is not None and p.any() for p in parts):
                masks = parts
            elif structures is not None:
                key = label.upper().replace("CIFTI_STRUCTURE_", "")
                if key in short:
                    rois.append((key, structures == short[key]))
                    continue
        if masks is None and (isinstance(label, Integral) or str(label).lstrip("-").isdigit()):
            value = int(label)
            if value in present:
                masks = [v == value if v is not None else None for v in ints]
                names = [t[value] for t in tables if value in t]
                label = names[0] if names else str(value)
        if masks is None:
            names = sorted({n for t in tables for k, n in t.items() if k in present})
            names += [str(x) for x in present if not any(x in t for t in tables)]
            if short:
                names += sorted(short)
            close = nio.closest_names(label, names)
            hint = f"; closest: {close}" if close else ""
            raise ValueError(
                f"label {label!r} is not in mask_img {mask_name}; available: {names}{hint}"
            )
        rois.append((str(label), full(masks)))
    return rois


# --------------------------------------------------------------------------- cached read
def _read_array(units, columns, n_first):
    total = sum(u.n_samples() for u in units)
    out = np.empty((total, len(columns)), dtype=np.float32)
    row = 0
    for unit in units:
        for block in unit.iter_rows(columns, n_first):
            out[row : row + len(block)] = block
            row += len(block)
    return out


def _read_paths(keys, columns, n_first):
    """Cacheable read: ``keys`` holds (path(s), mtime, size) so edits invalidate the cache."""
    units = [_Unit(k[0]) for k in keys]
    return _read_array(units, columns, n_first)


def _file_key(source):
    paths = source if isinstance(source, tuple) else (source,)
    stats = [os.stat(p) for p in paths]
    key = tuple(str(os.fspath(p)) for p in paths)
    return (key if isinstance(source, tuple) else key[0],
            tuple(s.st_mtime_ns for s in stats), tuple(s.st_size for s in stats))


# --------------------------------------------------------------------------- descriptions
def _descrip(text):
    """``text`` as a NIfTI ``descrip`` (80 bytes, ASCII)."""
    return str(text).encode("ascii", "replace")[:80]


def _describe_gifti(img, text):
    if text is not None:
        img.meta["Description"] = str(text)
        for darray in img.darrays:
            darray.meta["Description"] = str(text)
    return img


# --------------------------------------------------------------------------- estimator
class BrainMasker(TransformerMixin, BaseEstimator):
    """Brain images to a ``(n_samples, n_voxels)`` float32 array, and maps back to images.

    Reads NIfTI (a 4-D image, one volume per stimulus or per TR, or a list of 3-D volumes),
    CIFTI-2 dense files (``.dscalar.nii``, ``.dtseries.nii``, ``.dlabel.nii``), GIFTI
    functional / shape files (one hemisphere, or a tuple ``(lh, rh)`` of two files) and MGH/MGZ,
    given as paths or nibabel images. A list of inputs is concatenated along samples.
    Reads go through nibabel's array proxies a block of volumes at a time over the bounding box of
    the region, so a small region out of a large 4-D file never loads the whole file (GIFTI is XML
    and is parsed whole).

    Parameters
    ----------
    mask_img : path, nibabel image, tuple or None
        The region: a binary mask or an integer label atlas in the space of the data (NIfTI/MGH
        volume, CIFTI ``.dlabel.nii`` or binary ``.dscalar.nii``, GIFTI ``.label.gii``; a tuple
        ``(lh, rh)`` for a GIFTI pair). A volume atlas can come with its lookup table as
        ``(atlas, lut)``, where ``lut`` is a FreeSurfer-style text file (``value name R G B A``)
        or a dict ``{value: name}``. ``None``: every voxel / grayordinate / vertex (of the
        ``labels`` structures for CIFTI).
    labels : list of (int or str), dict, "all" or None
        Atlas labels to keep, by value or by name (CIFTI / GIFTI label tables, the lookup table);
        for CIFTI also brain structures by name (``"CIFTI_STRUCTURE_CORTEX_LEFT"`` or
        ``"CORTEX_LEFT"``). A dict ``{value: name}`` both names and selects labels. ``"all"``:
        every non-zero label. Several labels are united; each is one region of ``summary``.
        Required when ``mask_img`` is not binary.
    summary : {"mean", "max", "std"} or None
        If set, ``transform`` returns one value per region (as DNNBrain's ``brain_roi``) instead
        of one per voxel.
    memory : str, joblib.Memory or None
        Cache of the masked reads (as nilearn's maskers), keyed by path, modification time and
        size of the input files; in-memory images are not cached.

    Attributes
    ----------
    format_ : str
        ``"nifti"``, ``"mgh"``, ``"cifti"``, ``"gifti"`` or ``"gifti_pair"``: the format of
        :meth:`inverse_transform`'s images.
    mask_ : ndarray of bool
        The kept voxels over the space (3-D for volumes, 1-D for CIFTI / GIFTI; left then right
        hemisphere for a pair).
    columns_ : ndarray of int
        Flat (C-order) indices of the kept voxels; the column order of ``transform``.
    n_voxels_ : int
    n_features_out_ : int
        ``n_voxels_``, or the number of regions with ``summary``.
    regions_ : list of str
        Region names (labels, structures, ``"mask"`` or ``"all"``).
    region_indices_ : list of ndarray of int
        The columns of each region.
    label_table_ : dict of int -> str
        The label table of the atlas (empty when there is none).
    n_dropped_nonfinite_ : int
        Voxels dropped at ``fit`` because of NaN / inf values.
    brain_models_ : nibabel BrainModelAxis or None
        The CIFTI grayordinates.

    Notes
    -----
    NaN policy: ``fit`` (given data) drops the voxels that are NaN or infinite in any sample of
    the data and warns with their count. ``transform`` raises a ``ValueError`` if non-finite
    values appear in the kept voxels of new data. ``fit`` without data learns the space from
    ``mask_img`` alone and drops nothing.

    nilearn's ``NiftiMasker``, ``NiftiLabelsMasker`` and ``SurfaceMasker`` are sklearn
    transformers too and are drop-in alternatives in a Pipeline where nilearn is installed.

    Examples
    --------
    >>> masker = BrainMasker("vtc_mask.nii.gz")                      # doctest: +SKIP
    >>> Y = masker.fit_transform("sub-01_betas.nii.gz")              # doctest: +SKIP
    >>> masker.inverse_transform(scores).to_filename("r2.nii.gz")    # doctest: +SKIP
    """

    _parameter_constraints = {
        "mask_img": [str, os.PathLike, tuple, list, HasMethods(["to_filename"]), None],
        "labels": ["array-like", dict, str, Integral, None],
        "summary": [StrOptions(set(_SUMMARIES)), None],
        "memory": [str, HasMethods(["cache"]), None],  # as sklearn.utils.check_memory
    }

    def __init__(self, mask_img=None, labels=None, summary=None, memory=None):
        self.mask_img = mask_img
        self.labels = labels
        self.summary = summary
        self.memory = memory

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.two_d_array = False
        tags.input_tags.string = True
        tags.requires_fit = True
        return tags

    # ------------------------------------------------------------------ fit
    def _split_mask_param(self):
        mask, lut = self.mask_img, None
        if isinstance(mask, tuple) and len(mask) == 2 and (
            isinstance(mask[1], dict)
            or str(mask[1]).lower().endswith(_LUT_SUFFIXES)
        ):
            mask, lut = mask
            if not isinstance(lut, dict):
                lut = nio.read_lut(lut)
            lut = {int(k): str(v) for k, v in lut.items()}
        return mask, lut

    def _fit(self, X, keep):
        mask_src, lut = self._split_mask_param()
        labels = self.labels
        if isinstance(labels, dict):
            lut = {**(lut or {}), **{int(k): str(v) for k, v in labels.items()}}
            labels = [int(k) for k in labels]
        mask_unit = None if mask_src is None else _Unit(mask_src)
        units, space = self._fit_space(X, mask_unit)
        rois, table = self._fit_regions(space, mask_unit, labels, lut)
        candidate = np.zeros(space["size"], bool)
        for name, roi in rois:
            if not roi.any():
                raise ValueError(f"region {name!r} of mask_img has no voxels")
            candidate |= roi
        columns = np.flatnonzero(candidate)
        data, n_dropped = None, 0
        if units:
            columns, data, n_dropped = self._drop_nonfinite(units, columns, space, keep)
        self._set_fitted(space, columns, rois, table, n_dropped)
        return self._reduce(data) if keep and data is not None else None

    def _fit_space(self, X, mask_unit):
        """The input units and the space they (and ``mask_unit``) share."""
        units = None
        if X is not None:
            sources, single = _as_sources(X)
            units = [_Unit(s) for s in sources]
            self._check_volume_3d(units, single)
        if units is None and mask_unit is None:
            raise ValueError("BrainMasker.fit needs data X or a mask_img to learn the space from")
        ref = units[0] if units else mask_unit
        space = _space_of(ref)
        for unit in units or []:
            _check_space(space, unit, "image", f"the first image {ref.name}")
        if mask_unit is not None and units:
            _check_space(space, mask_unit, "mask_img", f"the data {ref.name}")
        if mask_unit is not None and mask_unit.family == "volume" and mask_unit.images[0].ndim > 3:
            if int(np.prod(mask_unit.images[0].shape[3:])) != 1:
                raise ValueError(
                    f"mask_img {mask_unit.name} is 4-D (shape {mask_unit.images[0].shape}); "
                    "expected a 3-D mask or atlas"
                )
        return units, space

    @staticmethod
    def _fit_regions(space, mask_unit, labels, lut):
        """The regions ``[(name, flat bool mask)]`` and the atlas label table."""
        structures = None
        if space["family"] == "cifti":
            structures = np.asarray(space["brain_models"].name)
        if mask_unit is None:
            if labels is None:
                return [("all", np.ones(space["size"], bool))], {}
            if structures is None:
                raise ValueError(
                    "labels were given without a mask_img atlas; labels select atlas labels (or "
                    "CIFTI brain structures when the data are CIFTI)"
                )
            return _resolve_labels(labels, [None], [{}], structures, "(none)"), {}
        values, tables = _mask_values(mask_unit, space, lut)
        table = {k: v for t in tables for k, v in t.items()}
        if labels is not None:
            return _resolve_labels(labels, values, tables, structures, mask_unit.name), table
        if not _is_binary(values):
            present = np.unique(np.concatenate(values))
            shown = [table.get(int(v), v) if float(v).is_integer() else v for v in present[:20]]
            raise ValueError(
                f"mask_img {mask_unit.name} is not binary (values {shown}"
                f"{' ...' if len(present) > 20 else ''}); pass labels= to pick atlas "
                "labels, or a 0/1 mask"
            )
        return [("mask", np.concatenate(values) != 0)], table

    def _drop_nonfinite(self, units, columns, space, keep):
        """Drop (and warn about) the columns with NaN / inf in any sample; read them if ``keep``."""
        n_first = space["sizes"][0] if space["family"] == "gifti_pair" else None
        data = None
        if keep:
            data = self._read(units, columns, n_first, space)
            bad = ~np.isfinite(data).all(axis=0)
        else:  # stream: only the NaN scan, nothing kept
            bad = np.zeros(len(columns), bool)
            for unit in units:
                for block in unit.iter_rows(columns, n_first):
                    bad |= ~np.isfinite(block).all(axis=0)
        n_dropped = int(bad.sum())
        if n_dropped:
            where = units[0].name if len(units) == 1 else f"{len(units)} images"
            warnings.warn(
                f"BrainMasker: dropped {n_dropped} of {len(columns)} voxels that have NaN or "
                f"infinite values in {where}",
                RuntimeWarning,
                stacklevel=5,
            )
            columns = columns[~bad]
            data = None if data is None else data[:, ~bad]
            if not len(columns):
                raise ValueError("BrainMasker: every voxel of the region is NaN or infinite")
        return columns, data, n_dropped

    def _set_fitted(self, space, columns, rois, table, n_dropped):
        self.format_ = space["format"]
        self.space_ = space
        self.columns_ = columns
        mask = np.zeros(space["size"], bool)
        mask[columns] = True
        self.mask_ = mask.reshape(space["shape"]) if space["family"] == "volume" else mask
        self.n_voxels_ = len(columns)
        self.regions_ = [name for name, _ in rois]
        self.region_indices_ = [np.flatnonzero(roi[columns]) for _, roi in rois]
        for name, idx in zip(self.regions_, self.region_indices_):
            if not len(idx):
                raise ValueError(f"region {name!r}: every voxel is NaN or infinite")
        self.n_features_out_ = len(rois) if self.summary else self.n_voxels_
        self.label_table_ = table
        self.n_dropped_nonfinite_ = n_dropped
        self.brain_models_ = space.get("brain_models")

    def _first_size(self):
        """Vertex count of the left hemisphere of a GIFTI pair (None otherwise)."""
        sizes = self.space_.get("sizes")
        return sizes[0] if self.space_["family"] == "gifti_pair" else None

    @staticmethod
    def _check_volume_3d(units, single):
        if single and units[0].family == "volume" and units[0].images[0].ndim == 3:
            raise ValueError(
                f"{units[0].name} is a 3-D image (shape {units[0].images[0].shape}); "
                "BrainMasker needs a 4-D image (one volume per sample) or a list of 3-D volumes "
                "(pass [img] for a single sample)"
            )

    @fit_context(prefer_skip_nested_validation=True)
    def fit(self, X=None, y=None):
        """Learn the space (format, grid / grayordinates / vertices) and the kept voxels.

        Parameters
        ----------
        X : image(s) or None
            Path / nibabel image / list of them, or a GIFTI pair ``(lh, rh)``. ``None``: learn
            the space from ``mask_img``.
        y : ignored

        Returns
        -------
        self
        """
        self._fit(X, keep=False)
        return self

    @fit_context(prefer_skip_nested_validation=True)
    def fit_transform(self, X, y=None):
        """Fit on ``X`` and return its masked data, reading the files once."""
        return self._fit(X, keep=True)

    # ------------------------------------------------------------------ transform
    def _read(self, units, columns, n_first, space):
        memory = check_memory(self.memory)
        plain = all(
            isinstance(s, (str, os.PathLike))
            or (isinstance(s, tuple) and all(isinstance(p, (str, os.PathLike)) for p in s))
            for s in (u.source for u in units)
        )
        if plain and getattr(memory, "location", None) is not None:
            keys = tuple(_file_key(u.source) for u in units)
            return memory.cache(_read_paths)(keys, columns, n_first)
        return _read_array(units, columns, n_first)

    def _reduce(self, data):
        if not self.summary:
            return data
        func = {"mean": np.mean, "max": np.max, "std": np.std}[self.summary]
        out = np.empty((data.shape[0], len(self.region_indices_)), dtype=np.float32)
        for r, idx in enumerate(self.region_indices_):
            out[:, r] = func(data[:, idx], axis=1)
        return out

    def _units(self, X):
        check_is_fitted(self, "mask_")
        sources, single = _as_sources(X)
        units = [_Unit(s) for s in sources]
        self._check_volume_3d(units, single)
        for unit in units:
            _check_space(self.space_, unit, "image", "the fitted space")
        return units

    @staticmethod
    def _check_finite_block(block, name, row):
        if not np.isfinite(block).all():
            bad = ~np.isfinite(block)
            first = np.argwhere(bad)[0]
            raise ValueError(
                f"{name}: {int(bad.sum())} NaN or infinite value(s) in the kept voxels "
                f"(first at sample {row + int(first[0])}, column {int(first[1])}); refit the "
                "masker on data including these images so that those voxels are dropped"
            )

    def transform(self, X):
        """Masked data of ``X``.

        Parameters
        ----------
        X : image(s)
            A 4-D volume, a list of 3-D / 4-D volumes, CIFTI dense file(s), GIFTI file(s) or
            pair(s) ``(lh, rh)``, MGH/MGZ, as paths or nibabel images, in the fitted space.

        Returns
        -------
        ndarray, float32, shape (n_samples, n_features_out_)
        """
        units = self._units(X)
        data = self._read(units, self.columns_, self._first_size(), self.space_)
        self._check_finite_block(data, units[0].name if len(units) == 1 else "X", 0)
        return self._reduce(data)

    def transform_to_h5(self, X, path, dataset="Y", stim_ids=None):
        """Write ``transform(X)`` straight into an HDF5 file, a block of samples at a time.

        The file is written to a temporary name and renamed on success (an existing file at
        ``path`` is replaced). The dataset is float32, chunked for reads of column batches, with
        attrs ``format`` and ``summary``; ``"<dataset>_feature_names"`` holds the column names.

        Parameters
        ----------
        X : image(s)
            As for :meth:`transform`.
        path : str or Path
        dataset : str
        stim_ids : sequence of str, optional
            One stimulus ID per sample (row), stored as the root dataset ``stim_ids``: readers
            that join these targets with activations (``neuroprobe encode`` / ``rdm`` /
            ``decode``, :func:`neuroprobe.io.targets.read_target_ids`) then align rows by ID.

        Returns
        -------
        path : pathlib.Path
        """
        import h5py

        units = self._units(X)
        n_total = sum(u.n_samples() for u in units)
        if stim_ids is not None:
            stim_ids = [str(v) for v in stim_ids]
            if len(stim_ids) != n_total:
                raise ValueError(f"stim_ids: {len(stim_ids)} IDs for the {n_total} samples of X")
            if len(set(stim_ids)) != n_total:
                raise ValueError("stim_ids: the IDs are not unique")
        n_out = self.n_features_out_
        chunks = (max(1, min(n_total, 256)), max(1, min(n_out, 1024)))
        with atomic_path(path, suffix=".h5") as tmp, h5py.File(tmp, "w") as fh:
            dset = fh.create_dataset(dataset, shape=(n_total, n_out), dtype="float32",
                                     chunks=chunks)
            dset.attrs["format"] = self.format_
            dset.attrs["summary"] = self.summary or ""
            dset.attrs["sources"] = json.dumps([u.name for u in units])
            fh.create_dataset(f"{dataset}_feature_names",
                              data=np.asarray(self.get_feature_names_out(), dtype=object),
                              dtype=h5py.string_dtype())
            if stim_ids is not None:
                fh.create_dataset("stim_ids", data=np.asarray(stim_ids, dtype=object),
                                  dtype=h5py.string_dtype())
            row = 0
            for unit in units:
                for block in unit.iter_rows(self.columns_, self._first_size()):
                    self._check_finite_block(block, unit.name, row)
                    dset[row : row + len(block)] = self._reduce(block)
                    row += len(block)
        from pathlib import Path

        return Path(path)

    # ------------------------------------------------------------------ inverse
    def inverse_transform(self, values, *, fill=0.0, description=None):
        """Put values back into an image of the fitted format and space.

        Parameters
        ----------
        values : array, shape (n_features_out_,) or (k, n_features_out_)
            One value per voxel (or per region with ``summary``), e.g. per-voxel accuracies.
        fill : float, default=0.0
            Value of the voxels outside the mask and of the voxels dropped at ``fit`` for NaN or
            infinite data (``mask_`` is False there). Use ``np.nan`` for statistical maps: a
            p-value map that is 0 outside the brain passes any ``p <= 0.05`` threshold there
            (``neuroprobe encode`` writes NaN).
        description : str, optional
            Stored in the image: NIfTI ``descrip`` (80 bytes at most, longer text is cut), CIFTI
            ``descrip`` of its NIfTI header, GIFTI ``Description`` metadata; MGH has no such
            field.

        Returns
        -------
        image
            NIfTI (3-D for a vector, 4-D otherwise), MGH, CIFTI-2 (with the fitted brain models;
            a series or scalar axis), GIFTI, or a tuple ``(lh, rh)`` of GIFTI images.
        """
        check_is_fitted(self, "mask_")
        values = np.asarray(values)
        one = values.ndim == 1
        values = check_array(values.reshape(1, -1) if one else values, dtype=np.float32,
                             ensure_all_finite=False)
        if values.shape[1] != self.n_features_out_:
            raise ValueError(
                f"inverse_transform expected {self.n_features_out_} values per map "
                f"({'regions' if self.summary else 'voxels'}), got array of shape "
                f"{values.shape}"
            )
        k = values.shape[0]
        if self.summary:
            full = np.full((k, self.n_voxels_), fill, np.float32)
            for r, idx in enumerate(self.region_indices_):
                full[:, idx] = values[:, [r]]
        else:
            full = values
        space = self.space_
        flat = np.full((k, space["size"]), fill, np.float32)
        flat[:, self.columns_] = full
        if space["family"] == "volume":
            data = np.moveaxis(flat.reshape((k,) + space["shape"]), 0, -1)
            data = data[..., 0] if one else data
            img = nio.new_volume_like(space["template"], np.ascontiguousarray(data))
            if description is not None and "descrip" in img.header:
                img.header["descrip"] = _descrip(description)
            return img
        if space["family"] == "cifti":
            img = nio.new_cifti_like(space["brain_models"], flat, space["row_axis"])
            if description is not None:
                img.nifti_header["descrip"] = _descrip(description)
            return img
        if space["family"] == "gifti":
            return _describe_gifti(nio.new_gifti_like(space["templates"][0], flat), description)
        n_first = space["sizes"][0]
        return (
            _describe_gifti(nio.new_gifti_like(space["templates"][0], flat[:, :n_first]),
                            description),
            _describe_gifti(nio.new_gifti_like(space["templates"][1], flat[:, n_first:]),
                            description),
        )

    # ------------------------------------------------------------------ names
    def get_feature_names_out(self, input_features=None):
        """Column names: region names with ``summary``; else per voxel.

        ``voxel_i_j_k`` (volumes), ``STRUCTURE:vertex_v`` / ``STRUCTURE:voxel_i_j_k`` (CIFTI),
        ``vertex_v`` (GIFTI), ``lh:vertex_v`` / ``rh:vertex_v`` (GIFTI pair).
        """
        check_is_fitted(self, "mask_")
        if self.summary:
            return np.asarray(self.regions_, dtype=object)
        space, cols = self.space_, self.columns_
        if space["family"] == "volume":
            ijk = np.unravel_index(cols, space["shape"])
            names = [f"voxel_{i}_{j}_{k}" for i, j, k in zip(*ijk)]
        elif space["family"] == "cifti":
            bm = space["brain_models"]
            struct = np.char.replace(np.asarray(bm.name[cols], dtype=str), "CIFTI_STRUCTURE_", "")
            surf = bm.surface_mask[cols]
            vert, vox = bm.vertex[cols], bm.voxel[cols]
            names = [f"{s}:vertex_{v}" if m else f"{s}:voxel_{x[0]}_{x[1]}_{x[2]}"
                     for s, m, v, x in zip(struct, surf, vert, vox)]
        elif space["family"] == "gifti":
            names = [f"vertex_{v}" for v in cols]
        else:
            n_first = space["sizes"][0]
            names = [f"lh:vertex_{v}" if v < n_first else f"rh:vertex_{v - n_first}"
                     for v in cols]
        return np.asarray(names, dtype=object)
