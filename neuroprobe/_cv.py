"""The one cross-validation splitter rule of every front end (:func:`default_cv`).

Kept at the bottom of the package (it imports scikit-learn's splitters only) so that the
estimators (``PermutationTest``) and :mod:`neuroprobe.model_selection` (which re-exports both
functions) share it without an upward import.
"""

from __future__ import annotations

import numbers

import numpy as np
from sklearn.model_selection import GroupKFold, KFold, StratifiedGroupKFold, StratifiedKFold
from sklearn.utils.multiclass import type_of_target

__all__ = ["DEFAULT_CV_SEED", "default_cv", "describe_cv"]

#: Seed of the default splitters when ``random_state=None``: the CLI's ``--seed`` default, so
#: Python and the CLI split the same way with default settings.
DEFAULT_CV_SEED = 0


def default_cv(cv=5, y=None, groups=None, random_state=None, *, classifier=None):
    """The cross-validation splitter of every neuroprobe front end (CLI and Python).

    Stimuli are often stored in category order (the 92 images: animate first), so an unshuffled
    k-fold holds out whole categories. Every neuroprobe function that takes an integer ``cv``
    (``probe_layers``, ``cross_val_score_targets``, ``neuroprobe probe / decode / encode``) turns
    it into a splitter here:

    ============================  =====================================================
    classes (``classifier``)      ``StratifiedKFold(cv, shuffle=True, random_state=seed)``
    continuous targets            ``KFold(cv, shuffle=True, random_state=seed)``
    classes with ``groups``       ``StratifiedGroupKFold(cv, shuffle=True, random_state=seed)``
    continuous with ``groups``    ``GroupKFold(cv)`` (folds never split a group)
    ============================  =====================================================

    Parameters
    ----------
    cv : int, None, splitter or iterable, default=5
        An int (``None``: 5) gives the splitter above; anything else is returned unchanged.
    y : array-like, optional
        Targets; decides ``classifier`` when it is ``None`` (binary / multiclass labels).
    groups : array-like, optional
        Group labels (e.g. fMRI runs): a grouped splitter.
    random_state : int, RandomState or None
        Seed of the shuffling; ``None`` gives :data:`DEFAULT_CV_SEED` (0, the CLI's ``--seed``
        default), so repeated calls and the CLI give the same folds. A RandomState gives one
        int seed (derived without advancing it), so every ``split`` call gives the same folds.
    classifier : bool, optional
        Stratify (class labels). Default: from ``type_of_target(y)``.

    Returns
    -------
    cross-validation splitter (or ``cv`` unchanged)
    """
    if cv is None:
        cv = 5
    if not isinstance(cv, numbers.Integral) or isinstance(cv, bool):
        return cv
    cv = int(cv)
    if classifier is None:
        classifier = y is not None and type_of_target(np.asarray(y)) in ("binary", "multiclass")
    seed = DEFAULT_CV_SEED if random_state is None else random_state
    if isinstance(seed, np.random.RandomState):
        # one int seed drawn from a copy (the caller's RandomState is left as it is): the
        # splitter then gives the same folds on every split() call (every layer, every chunk)
        seed = int(np.random.RandomState(seed.get_state()[1]).randint(2**31 - 1))
    if groups is not None:
        if classifier:
            return StratifiedGroupKFold(cv, shuffle=True, random_state=seed)
        return GroupKFold(cv)
    if classifier:
        return StratifiedKFold(cv, shuffle=True, random_state=seed)
    return KFold(cv, shuffle=True, random_state=seed)


def describe_cv(cv):
    """A one-line description of a splitter for output metadata (``repr`` of sklearn splitters).

    Parameters
    ----------
    cv : splitter or iterable of (train, test)

    Returns
    -------
    str
        E.g. ``"StratifiedKFold(n_splits=5, random_state=0, shuffle=True)"``; explicit split
        lists give ``"explicit splits (k)"``.
    """
    if hasattr(cv, "split"):
        return " ".join(repr(cv).split())
    try:
        return f"explicit splits ({len(cv)})"
    except TypeError:
        return f"explicit splits ({type(cv).__name__})"
