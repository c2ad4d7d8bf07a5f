"""Every error and warning class neuroprobe raises, in one module (as ``sklearn.exceptions``).

All errors derive from :class:`NeuroprobeError` and from the built-in type a caller would
expect (``ValueError`` for bad input, ``KeyError`` for an unknown name, ``RuntimeError`` for a
state of the machine), so ``except ValueError`` keeps working and ``except NeuroprobeError``
catches everything the package raises on purpose. This module imports nothing from the package:
every other module may import it.
"""

from __future__ import annotations

__all__ = [
    "NeuroprobeError",
    "StimulusError",
    "ModelError",
    "LayerError",
    "UnitError",
    "TraceError",
    "WeightsUnavailableError",
    "RepeatedCallError",
    "DeviceError",
    "WriteError",
    "ExtractionBusyError",
    "IncompleteActivationsError",
    "ConstantPatternError",
    "BandError",
    "CLIError",
    "ReportError",
    "BrainMapError",
    "ZeroVarianceWarning",
    "ConstantPatternWarning",
    "NeuroprobeWarning",
    "ExchangeabilityWarning",
    "BootstrapWarning",
    "TruncationWarning",
]


class NeuroprobeError(Exception):
    """Base class of every error neuroprobe raises on purpose."""


class NeuroprobeWarning(UserWarning):
    """Base class of neuroprobe's own warnings that are not numerical (``RuntimeWarning``) ones."""


# --- input -----------------------------------------------------------------------------------


class StimulusError(NeuroprobeError, ValueError):
    """Bad stimulus input: missing/corrupt file, malformed CSV, mixed modalities, empty set.

    The message names the offending file, column or stimulus.
    """


class ConstantPatternError(NeuroprobeError, ValueError):
    """Fewer than two patterns have a defined correlation (cosine) distance: no RDM to compute.

    ``rows`` holds their row indices (conditions after averaging), ``name`` the input's name.
    """

    def __init__(self, message, rows=(), name="X"):
        super().__init__(message)
        self.rows, self.name = list(rows), name


# --- networks --------------------------------------------------------------------------------


class ModelError(NeuroprobeError, ValueError):
    """Unknown model name or model that cannot be built."""


class LayerError(NeuroprobeError, KeyError):
    """Unknown layer name; the message lists the valid names and the closest match.

    Raised for every unknown layer, wherever it is named (extraction, activation files,
    probing, inspection), so one ``except LayerError`` covers them all.
    """

    def __str__(self):  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class UnitError(NeuroprobeError, ValueError):
    """A DNN unit (channel or position) that does not exist in its layer (the message gives the
    layer's shape). An unknown *layer* raises :class:`LayerError`."""


class TraceError(ModelError):
    """A network that ``torch.fx`` cannot trace, asked for ``"fx:<node>"`` layers (the message says
    why and suggests module names, which need no trace)."""


class WeightsUnavailableError(NeuroprobeError, RuntimeError):
    """Pretrained weights are not in the local cache and cannot be downloaded."""


class RepeatedCallError(NeuroprobeError, RuntimeError):
    """A captured module ran more than once in a forward pass (its output is ambiguous)."""


class DeviceError(NeuroprobeError, ValueError, RuntimeError):
    """A device that this machine does not have (``device="cuda"`` without CUDA) or a device
    string torch does not understand. Subclasses both ``ValueError`` and ``RuntimeError``, the
    two types raised for it before this class existed."""


# --- files -----------------------------------------------------------------------------------


class WriteError(NeuroprobeError, OSError):
    """A file could not be written (disk full, file-size limit, ...); the message names the
    user's path and the cause on one line.

    ``hdf5_failed`` is true when the HDF5 library failed in the middle of a write: HDF5 cannot
    close such a file cleanly, so the command line ends the process without HDF5's exit handler
    (which would crash).
    """

    hdf5_failed = False

    def __init__(self, message, errno=None):
        super().__init__(message)
        self.errno = errno


class ExtractionBusyError(NeuroprobeError, RuntimeError):
    """Another process is writing the same activation file."""


class IncompleteActivationsError(NeuroprobeError, ValueError):
    """The activation file is incomplete (an interrupted extraction)."""


class BrainMapError(NeuroprobeError, ValueError):
    """A brain map that cannot be drawn as given: its shape matches no masker or mesh, or its
    p-value map is of another shape (the message names the file or argument and what was
    expected)."""


class BandError(NeuroprobeError, ValueError):
    """Bad feature bands (banded models, variance partitioning, comparisons of feature sets): a
    band naming no feature, overlapping bands, features in no band, or bands that do not fit
    ``X``. The message names the band and what was expected."""


class CLIError(NeuroprobeError):
    """An error to report to the user as one line (no traceback)."""


class ReportError(NeuroprobeError, ValueError):
    """A results folder or report input that cannot be reported (names the file)."""


# --- warnings --------------------------------------------------------------------------------


class ZeroVarianceWarning(RuntimeWarning):
    """Targets or predictions with zero variance: NaN (undefined) or 0 (constant prediction) scores.

    ``kind`` is ``"targets"`` (the true values are constant: their score is NaN) or
    ``"predictions"`` (the predictions are constant, e.g. at a very large alpha: correlation 0);
    ``where`` says which samples (``"fitted"``, ``"scored"``, ``"training"``, ``"held-out"``);
    ``mask`` is a bool array over the targets; ``alphas`` the alphas of the constant predictions
    (when known). Filter it with ``warnings.simplefilter("ignore", ZeroVarianceWarning)``.
    """

    def __init__(self, message, kind="targets", where="scored", mask=None, alphas=None):
        super().__init__(message)
        self.kind, self.where, self.mask, self.alphas = kind, where, mask, alphas


class ConstantPatternWarning(RuntimeWarning):
    """Some patterns are constant: their correlation (or cosine) distances are undefined (NaN).

    ``rows`` holds their row indices (conditions after averaging), ``name`` the input's name.
    """

    def __init__(self, message, rows=(), name="X"):
        super().__init__(message)
        self.rows, self.name = list(rows), name


class ExchangeabilityWarning(NeuroprobeWarning):
    """A permutation scheme that assumes exchangeable samples is used where the samples are
    probably a time series: an iid shuffle (within runs) with grouped cross-validation.

    Time series (fMRI scans of a movie or a story) are autocorrelated, so a shuffle of their rows
    destroys that autocorrelation and gives an anti-conservative null; use
    ``PermutationTest(scheme="circular")`` or ``scheme="block"``. Samples that are exchangeable
    (one beta per stimulus, grouped by run) may pass ``scheme="shuffle"`` explicitly, which does
    not warn.
    """


class BootstrapWarning(NeuroprobeWarning):
    """Bootstrap samples left out of an inference (too few distinct stimuli or subjects, or an
    RDM constant on the sampled pairs): the estimates rest on ``n_valid`` of ``n_bootstrap``.
    """
class TruncationWarning(NeuroprobeWarning):
    """Texts or word contexts longer than a model accepts were cut to its maximum length.

    The message names the stimuli (or words) and their lengths; ``items`` holds
    ``(name, n_tokens)`` pairs and ``max_length`` the model's limit.
    """

    def __init__(self, message, items=(), max_length=None):
        super().__init__(message)
        self.items, self.max_length = list(items), max_length
