"""Generated methods text: one paragraph per analysis, from the parameters actually used.

Like fMRIPrep's boilerplate, the text is written from what ran, never from defaults guessed
afterwards: the CLI records every parsed parameter (:mod:`neuroprobe.report.provenance`), the
files carry their own metadata (an ``.act.h5`` names its network, weights, layers and pooling; an
``.rdm.h5`` its metric) and a fitted Python object carries its ``get_params()``. Each paragraph
comes with the references to cite (:data:`REFERENCES`).

Three entry points read the same sentence builders:

* :func:`describe_command` -- a provenance record of one CLI command (+ its output's metadata);
* :func:`describe_estimator` -- an estimator, a Pipeline or a GridSearchCV of the Python API;
* :func:`methods_paragraph` -- the keyword parameters of one analysis kind.

Examples
--------
>>> from neuroprobe.estimators import VoxelwiseEncoder
>>> m = describe_estimator(VoxelwiseEncoder(alphas=[1.0, 10.0], cv=3))
>>> "3-fold" in m.text and "1, 10" in m.text
True
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = [
    "Methods",
    "REFERENCES",
    "methods_paragraph",
    "describe_command",
    "describe_estimator",
    "versions_paragraph",
    "references_list",
]

#: Citation keys -> the reference as it should appear in a paper.
REFERENCES = {
    "dnnbrain": "Chen X, Zhou M, Gong Z, et al. (2020). DNNBrain: A unifying toolbox for mapping "
                "deep neural networks and brains. Front Comput Neurosci 14:580632.",
    "sklearn": "Pedregosa F, et al. (2011). Scikit-learn: Machine learning in Python. J Mach Learn "
               "Res 12:2825-2830.",
    "pytorch": "Paszke A, et al. (2019). PyTorch: An imperative style, high-performance deep "
               "learning library. NeurIPS 32.",
    "encoding": "Naselaris T, Kay KN, Nishimoto S, Gallant JL (2011). Encoding and decoding in "
                "fMRI. NeuroImage 56:400-410.",
    "ridge": "Hoerl AE, Kennard RW (1970). Ridge regression: biased estimation for nonorthogonal "
             "problems. Technometrics 12:55-67.",
    "lasso": "Tibshirani R (1996). Regression shrinkage and selection via the lasso. J R Stat Soc "
             "B 58:267-288.",
    "pls": "Wold S, Sjostrom M, Eriksson L (2001). PLS-regression: a basic tool of chemometrics. "
           "Chemom Intell Lab Syst 58:109-130.",
    "rsa": "Kriegeskorte N, Mur M, Bandettini P (2008). Representational similarity analysis - "
           "connecting the branches of systems neuroscience. Front Syst Neurosci 2:4.",
    "noise_ceiling": "Nili H, Wingfield C, Walther A, Su L, Marslen-Wilson W, Kriegeskorte N "
                     "(2014). A toolbox for representational similarity analysis. PLoS Comput "
                     "Biol 10:e1003553.",
    "maxstat": "Nichols TE, Holmes AP (2002). Nonparametric permutation tests for functional "
               "neuroimaging: a primer with examples. Hum Brain Mapp 15:1-25.",
    "hrf": "Friston KJ, Fletcher P, Josephs O, Holmes A, Rugg MD, Turner R (1998). Event-related "
           "fMRI: characterizing differential responses. NeuroImage 7:30-40.",
    "glover": "Glover GH (1999). Deconvolution of impulse response in event-related BOLD fMRI. "
              "NeuroImage 9:416-429.",
    "probe": "Alain G, Bengio Y (2016). Understanding intermediate layers using linear classifier "
             "probes. arXiv:1610.01644.",
    "pca": "Jolliffe IT, Cadima J (2016). Principal component analysis: a review and recent "
           "developments. Phil Trans R Soc A 374:20150202.",
}


@dataclass
class Methods:
    """A methods paragraph and the citation keys it relies on (:data:`REFERENCES`)."""

    text: str
    references: list = field(default_factory=list)

    def __add__(self, other):
        refs = list(dict.fromkeys([*self.references, *other.references]))
        text = " ".join(t for t in (self.text, other.text) if t)
        return Methods(text, refs)


# ------------------------------------------------------------------------------ formatting
def _num(value):
    """A number as a reader writes it: 10 not 10.0, 1e-02 for small ones."""
    v = float(value)
    if v == int(v) and abs(v) < 1e6:
        return str(int(v))
    return f"{v:.3g}"


def _grid(alphas):
    a = [float(x) for x in np.atleast_1d(np.asarray(alphas, dtype=float))]
    if len(a) > 6:
        return (f"{len(a)} values from {_num(min(a))} to {_num(max(a))} "
                f"({'log-spaced' if _log_spaced(a) else 'as given'})")
    return ", ".join(_num(x) for x in a)


def _log_spaced(a):
    a = np.asarray(sorted(a))
    if np.any(a <= 0):
        return False
    d = np.diff(np.log10(a))
    return bool(np.allclose(d, d[0], rtol=1e-3))


def _list(items):
    items = [str(i) for i in items]
    if len(items) <= 2:
        return " and ".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]


def _cv(cv, what="cross-validation"):
    """``5`` -> "5-fold cross-validation"; a splitter's repr is shown as written."""
    if cv is None:
        return f"leave-one-out {what}"
    if isinstance(cv, (int, np.integer)) or (isinstance(cv, str) and cv.isdigit()):
        return f"{int(cv)}-fold {what}"
    return f"{what} ({cv})"


# ------------------------------------------------------------------------------ sentences
def _weights_text(weights):
    if weights in (None, "none", "random") or str(weights).startswith("random"):
        return "randomly initialised weights" + (f", {weights}" if weights else "")
    if str(weights).upper() == "DEFAULT":
        return "the library's default pretrained weights"
    return f"weights {weights}"


def _which(layers):
    layers = list(layers or [])
    return (f"{'layer' if len(layers) == 1 else 'layers'} {_list(layers)}" if layers
            else "every layer")


def _extraction(model=None, weights=None, layers=(), pooling=None, n_stimuli=None,
                preprocess=None, batch_size=None, **_):
    weights_text = _weights_text(weights)
    stim = f"{n_stimuli} stimuli" if n_stimuli else "the stimuli"
    which = _which(layers)
    text = (f"Activations of {which} of the network {model} ({weights_text}) to {stim} were "
            "recorded with forward hooks in one forward pass per stimulus batch (neuroprobe "
            "DNNFeatureExtractor)")
    if pooling and pooling != "none":
        text += f" and pooled ({pooling})"
    text += "."
    if preprocess:
        text += f" Preprocessing: {preprocess}."
    return Methods(text, ["dnnbrain", "pytorch"])


def _words(model=None, weights=None, layers=(), n_stimuli=None, context=None,
           word_pooling=None, subword=None, max_tokens=None, **_):
    pooling = word_pooling or subword or "last"
    words = f"{n_stimuli} words" if n_stimuli else "the words"
    if context in (None, "run"):
        seen = "the whole of its run up to it"
    else:
        seen = f"the {int(context)} preceding words of its run"
    token = ("its last subword token" if pooling == "last"
             else "the mean of its subword tokens")
    text = (f"Word-by-word features of {_which(layers)} of the language model {model} "
            f"({_weights_text(weights)}) were computed for {words} of the transcript, each word "
            f"seen with {seen} and represented by {token} (neuroprobe WordFeatureExtractor)")
    text += (f"; windows were capped at {int(max_tokens)} tokens, dropping the earliest"
             if max_tokens else "; contexts longer than the model's maximum length lost their "
             "earliest tokens") + "."
    return Methods(text, ["pytorch"])


def _captions(model=None, weights=None, layers=(), n_stimuli=None, text_column=None,
              normalize=False, pooling=None, **_):
    stim = f"{n_stimuli} stimuli" if n_stimuli else "the stimuli"
    image = [str(la)[6:] for la in layers or [] if str(la).startswith("image:")]
    text_layers = [str(la)[5:] for la in layers or [] if str(la).startswith("text:")]
    text = (f"Image and caption embeddings of {stim} came from the two towers of the CLIP model "
            f"{model} ({_weights_text(weights)}): the image tower's {_which(image)} on each "
            f"image and the text tower's {_which(text_layers)} on its caption (column "
            f"{text_column}), in one file with rows aligned by stimulus (neuroprobe "
            "CLIPEmbedder)")
    if pooling and pooling != "none":
        text += f"; image layers pooled ({pooling})"
    if normalize:
        text += "; embeddings L2-normalised"
    return Methods(text + ".", ["pytorch"])


def _pca(n_components=None, per_layer=False, standardize=False, whiten=None, **_):
    text = (f"Activations were reduced to {n_components} principal components"
            + (" per layer" if per_layer else "")
            + (" after standardising each unit" if standardize else "")
            + (", whitened" if whiten else "") + " (PCAReducer).")
    return Methods(text, ["pca"])


def _encoding(penalty="l2", alphas=None, inner_cv=5, cv=5, scoring="correlation",
              n_permutations=0, groups=None, layer=None, n_components=None, model=None,
              n_targets=None, evaluated=True, **_):
    if model == "pls":
        text = (f"Each target was predicted from {layer or 'the features'} by partial least "
                f"squares regression with {n_components} components (PLSEncoder)")
        refs = ["encoding", "pls", "sklearn"]
    elif penalty in (None, "none", "ols"):
        text = (f"Each target was predicted from {layer or 'the features'} by ordinary least "
                "squares (VoxelwiseEncoder(penalty=None))")
        refs = ["encoding", "sklearn"]
    else:
        from neuroprobe.solvers.ridge import DEFAULT_ALPHAS

        name = "lasso" if penalty == "l1" else "ridge regression"
        grid = _grid(DEFAULT_ALPHAS if alphas is None else _parse_alphas(alphas))
        text = (f"Each target{'' if not n_targets else f' ({n_targets} in all)'} was predicted "
                f"from {layer or 'the features'} by {name} (VoxelwiseEncoder(penalty="
                f"{penalty!r})) with a regularisation strength chosen per target among {grid} by "
                f"{_cv(inner_cv, 'cross-validation inside each training set')}")
        refs = ["encoding", "lasso" if penalty == "l1" else "ridge", "sklearn"]
    if not evaluated:  # an estimator on its own: how it is evaluated is said by its caller
        return Methods(text + ".", refs)
    text += (f"; accuracy ({scoring} between predicted and measured responses) was estimated by "
             f"{_cv(cv)}" + (" with folds respecting the groups given" if groups else "") + ".")
    if n_permutations:
        text += (f" Significance: {n_permutations} stimulus permutations refitting the whole "
                 "model; family-wise error over targets controlled by the maximum statistic.")
        refs.append("maxstat")
    return Methods(text, refs)


def _parse_alphas(alphas):
    if isinstance(alphas, str):
        return [float(a) for a in alphas.replace(" ", "").split(",") if a]
    return alphas


def _probe(cv=5, scoring=None, layer=None, estimator=None, **_):
    est = estimator or "standardised features and multinomial logistic regression"
    text = (f"Information about the labels in {layer or 'each layer'} was measured with a linear "
            f"probe ({est}) scored by {scoring or 'accuracy'} in {_cv(cv)}.")
    return Methods(text, ["probe", "sklearn"])


def _decode(cv=5, scoring=None, mask=None, **_):
    where = f"the voxels of {mask}" if mask else "the brain responses"
    text = (f"The labels were decoded from {where} with standardised features and multinomial "
            f"logistic regression, scored by {scoring or 'accuracy'} in {_cv(cv)}.")
    return Methods(text, ["sklearn"])


_METRICS = {"correlation": "1 minus the Pearson correlation", "euclidean": "Euclidean distance",
            "cosine": "cosine distance", "sqeuclidean": "squared Euclidean distance",
            "crossnobis": "cross-validated Mahalanobis distance (crossnobis)"}


def _rdm(metric="correlation", zscore=False, n_stimuli=None, layer=None, **_):
    what = f" of {_list(layer)}" if layer else ""
    stim = f"{n_stimuli} stimuli" if n_stimuli else "the stimuli"
    text = (f"Representational dissimilarity matrices{what} were computed between the response "
            f"patterns of {stim} as {_METRICS.get(metric, metric)}"
            + (" after z-scoring each feature" if zscore else "") + ".")
    return Methods(text, ["rsa"])


_COMPARISONS = {"spearman": "Spearman rank correlation", "pearson": "Pearson correlation",
                "kendall": "Kendall's tau-a", "cosine": "cosine similarity",
                "corr_cov": "whitened Pearson correlation", "cosine_cov": "whitened cosine"}


def _rsa(method="spearman", n_permutations=0, noise_ceiling=None, n_bootstrap=0, **_):
    text = (f"Model and brain RDMs were compared by the {_COMPARISONS.get(method, method)} of "
            "their upper triangles")
    refs = ["rsa"]
    if n_permutations:
        text += (f"; p-values from {n_permutations} permutations of the stimulus labels, "
                 "family-wise error over models controlled by the maximum statistic")
        refs.append("maxstat")
    text += "."
    if noise_ceiling:
        text += (" The noise ceiling (lower: each subject vs the mean of the others; upper: vs "
                 "the mean of all) bounds the attainable score"
                 + (f", with {n_bootstrap} bootstrap samples of subjects" if n_bootstrap else "")
                 + ".")
        refs.append("noise_ceiling")
    return Methods(text, refs)


def _hrf(hrf_model="spm", tr=None, n_scans=None, oversampling=50, **_):
    text = (f"Stimulus-wise features were convolved with the {hrf_model.upper()} haemodynamic "
            f"response function (oversampling {oversampling}) and sampled at TR = {tr} s over "
            f"{n_scans} scans (HRFConvolver).")
    return Methods(text, ["glover" if hrf_model == "glover" else "hrf"])


def _roi(mask=None, summary=None, **_):
    text = (f"Responses were read within the mask {mask}"
            + (f" and summarised by their {summary} per region" if summary else "")
            + " (BrainMasker).")
    return Methods(text, [])


_PARAGRAPHS = {"extract": _extraction, "words": _words, "captions": _captions, "reduce": _pca,
               "encode": _encoding, "probe": _probe, "decode": _decode, "rdm": _rdm, "rsa": _rsa,
               "hrf": _hrf, "roi": _roi}


def methods_paragraph(kind, **params):
    """The methods paragraph of one analysis ``kind`` from its parameters.

    Parameters
    ----------
    kind : {"extract", "words", "captions", "reduce", "encode", "probe", "decode", "rdm", "rsa",
            "hrf", "roi"}
    **params
        The parameters used (the CLI's argument names; unknown ones are ignored).

    Returns
    -------
    Methods
    """
    try:
        builder = _PARAGRAPHS[kind]
    except KeyError:
        raise ValueError(
            f"no methods text for analysis {kind!r}; known: {sorted(_PARAGRAPHS)}") from None
    return builder(**params)


def describe_command(record, metadata=None):
    """The methods paragraph of one CLI run from its provenance record.

    Parameters
    ----------
    record : dict
        A record of :func:`neuroprobe.report.provenance.read_provenance` (``command`` and
        ``parameters``).
    metadata : dict, optional
        What the output file says about itself (an ``.act.h5``'s model, weights, layers; an
        encode sidecar's splitters); it wins over the parameters where both give a value.

    Returns
    -------
    Methods or None
        None for commands without a methods paragraph (``info``, ``layers``, ...).
    """
    kind = record.get("command")
    if kind not in _PARAGRAPHS:
        return None
    params = dict(record.get("parameters") or {})
    params.update({k: v for k, v in (metadata or {}).items() if v is not None})
    return methods_paragraph(kind, **params)


def describe_estimator(estimator):
    """The methods text of a neuroprobe / scikit-learn object from its parameters.

    Walks Pipelines (step by step), GridSearchCV (the best parameters when fitted, else the
    grid) and PermutationTest (its inner estimator); unknown steps are named by their class.

    Returns
    -------
    Methods
    """
    from sklearn.model_selection import GridSearchCV
    from sklearn.pipeline import Pipeline

    if isinstance(estimator, GridSearchCV):
        est = getattr(estimator, "best_estimator_", None)
        if est is None:
            out = describe_estimator(estimator.estimator)
            return out + Methods(f"Grid search over {estimator.param_grid} by "
                                 f"{_cv(estimator.cv)}.", ["sklearn"])
        return describe_estimator(est) + Methods(
            f"Parameters selected by grid search ({_cv(estimator.cv)}): "
            f"{estimator.best_params_}.", ["sklearn"])
    if isinstance(estimator, Pipeline):
        out = Methods("")
        for _, step in estimator.steps:
            if step is not None and step != "passthrough":
                out = out + describe_estimator(step)
        return out
    name = type(estimator).__name__
    p = estimator.get_params(deep=False)
    if name == "DNNFeatureExtractor":
        return _extraction(model=p.get("model"), weights=p.get("weights"),
                           layers=np.atleast_1d(p.get("layers") or []).tolist(),
                           pooling=p.get("pooling"))
    if name == "WordFeatureExtractor":
        return _words(model=p.get("model"), weights=p.get("weights"),
                      layers=np.atleast_1d(p.get("layers") or []).tolist(),
                      context=p.get("context"), word_pooling=p.get("word_pooling"),
                      max_tokens=p.get("max_tokens"))
    if name == "PCAReducer":
        return _pca(n_components=p.get("n_components"), whiten=p.get("whiten"))
    if name == "VoxelwiseEncoder":
        return _encoding(penalty=p.get("penalty", "l2"), alphas=p.get("alphas"),
                         inner_cv=p.get("cv"), scoring=p.get("scoring"), evaluated=False)
    if name == "PLSEncoder":
        return _encoding(model="pls", n_components=p.get("n_components"), evaluated=False)
    if name == "RSAScorer":
        return _rdm(metric=p.get("metric", "correlation")) + _rsa(method=p.get("comparison"))
    if name == "PermutationTest":
        inner = describe_estimator(p["estimator"])
        how = ("the statistic of the estimator's own cross-validation" if p.get("cv") is None
               else f"the held-out score of {_cv(p.get('cv'))}")
        return inner + Methods(
            f"Significance: {p.get('n_permutations')} permutations of the stimuli, {how} "
            "recomputed on each; family-wise error over all scores tested together (targets or "
            "layers) controlled by the maximum statistic.", ["maxstat"])
    return _generic(estimator, name, p)


_SKLEARN_TEXT = {"StandardScaler": "Features were standardised (StandardScaler).",
                 "LogisticRegression": "Classifier: logistic regression",
                 "Ridge": "Regression: ridge", "RidgeCV": "Regression: ridge with CV",
                 "LinearSVC": "Classifier: linear support vector machine"}


def _generic(estimator, name, params):
    """Any other step: its class and the parameters that differ from the class defaults."""
    try:
        defaults = type(estimator)().get_params(deep=False)
    except TypeError:  # required constructor arguments
        defaults = {}
    changed = {k: v for k, v in sorted(params.items())
               if not hasattr(v, "get_params") and (k not in defaults or
                                                    repr(defaults[k]) != repr(v))}
    args = ", ".join(f"{k}={v!r}" for k, v in changed.items())
    head = _SKLEARN_TEXT.get(name)
    if head is None:
        return Methods(f"{name}({args}).", ["sklearn"])
    if head.endswith("."):
        return Methods(head if not args else head[:-2] + f", {args}).", ["sklearn"])
    return Methods(f"{head} ({name}{'(' + args + ')' if args else ''}).", ["sklearn"])


def versions_paragraph(versions):
    """"Software: neuroprobe X (Python Y; numpy ..., torch ...)." from ``{name: version}``."""
    versions = dict(versions)
    head = f"neuroprobe {versions.pop('neuroprobe', '?')}"
    python = versions.pop("python", None)
    rest = ", ".join(f"{k} {v}" for k, v in sorted(versions.items()))
    return (f"Software: {head} (Python {python}" + (f"; {rest}" if rest else "") + ")."
            if python else f"Software: {head}" + (f" ({rest})" if rest else "") + ".")


def references_list(keys):
    """The references of ``keys`` in first-cited order (unknown keys refused)."""
    out = []
    for key in dict.fromkeys(keys):
        if key not in REFERENCES:
            raise KeyError(f"unknown reference {key!r}; known: {sorted(REFERENCES)}")
        out.append(REFERENCES[key])
    return out
