"""Layer-by-layer RSA of a network against human IT (Kriegeskorte et al. 2008, 92 images).

Usage::

    python examples/kriegeskorte92_rsa.py /path/to/kriegeskorte92 [--model alexnet]
        [--weights auto|DEFAULT|none|PATH] [--n-permutations 1000] [--out kriegeskorte92_rsa]

The data folder holds ``stimuli.csv`` (92 images) and ``rdms.npz`` (``hIT``: the human IT RDM
averaged over subjects; ``hIT_subject_session``: 4 subjects x 2 sessions). For every layer the
script computes the RDM of the layer's activations (1 - Pearson r, as for the brain RDMs) and

* compares it with each subject's IT RDM (Spearman; sessions averaged), against the noise ceiling
  of the subject RDMs (lower: leave one subject out; upper: all subjects);
* tests it against the group IT RDM with a permutation test over the 92 stimulus labels
  (family-wise p-values over layers from the maximum statistic).

``--weights auto`` uses the pretrained weights when torchvision's cache has them and random
weights (seeded) otherwise; random weights are a useful baseline but do not resemble IT.
Writes ``rsa_by_layer.csv`` and ``rsa_by_layer.png`` into ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

import numpy as np

from neuroprobe import DNNFeatureExtractor, PermutationTest, RSAScorer, StimulusSet, noise_ceiling
from neuroprobe.models import build_model

ALEXNET_LAYERS = ["conv1", "conv2", "conv3", "conv4", "conv5", "fc1", "fc2", "fc3"]


def _pretrained_cached(model):
    """Whether torchvision's cache holds the default weights of ``model`` (no download)."""
    import os

    from torchvision.models import get_model_weights

    from neuroprobe.models.registry import weights_file_location

    try:
        name, folder = weights_file_location(get_model_weights(model).DEFAULT)
    except (ValueError, KeyError, AttributeError):
        return False
    return os.path.isfile(os.path.join(folder, name))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("data", help="folder with stimuli.csv and rdms.npz")
    parser.add_argument("--model", default="alexnet")
    parser.add_argument("--weights", default="auto", help="auto, DEFAULT, none or a file")
    parser.add_argument("--layers", nargs="+", default=None,
                        help="layers (default for alexnet: conv1 ... conv5 fc1 fc2 fc3)")
    parser.add_argument("--n-permutations", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="kriegeskorte92_rsa")
    args = parser.parse_args(argv)

    data = Path(args.data)
    for name in ("stimuli.csv", "rdms.npz"):
        if not (data / name).is_file():
            sys.exit(f"kriegeskorte92_rsa: error: {data / name} not found (expected the "
                     "kriegeskorte92 folder with stimuli.csv and rdms.npz)")
    stimuli = StimulusSet.from_csv(data / "stimuli.csv")
    rdms = np.load(data / "rdms.npz")
    group_rdm = rdms["hIT"]  # (92, 92)
    subject_rdms = rdms["hIT_subject_session"].mean(axis=1)  # (4, 92, 92), sessions averaged

    # The network, pretrained when available.
    weights = None if args.weights.lower() == "none" else args.weights
    if args.weights.lower() == "auto":  # pretrained if cached (never download), else random
        weights = "DEFAULT" if _pretrained_cached(args.model) else None
        if weights is None:
            print(f"pretrained {args.model} weights are not in the torch cache: using random "
                  f"weights (seed {args.seed}); expect RSA near zero")
        model = build_model(args.model, weights=weights, random_state=args.seed)
    else:
        model = build_model(args.model, weights=weights, random_state=args.seed)
    layers = args.layers or (ALEXNET_LAYERS if args.model == "alexnet" else None)
    if layers is None:
        sys.exit("kriegeskorte92_rsa: error: give --layers for models other than alexnet "
                 "(see `neuroprobe layers --model NAME`)")

    # One pass of the network over the 92 images for every layer.
    extractor = DNNFeatureExtractor(model, layers=layers, batch_size=16)
    X = extractor.fit_transform(stimuli)
    groups = extractor.feature_slices_  # layer -> its columns of X

    # Subject level: each layer RDM vs each subject RDM, and the noise ceiling.
    per_subject = RSAScorer(metric="correlation", comparison="spearman", feature_groups=groups,
                            target_rdm=subject_rdms).fit(X).score_matrix(X)  # (layers, 4)
    ceiling = noise_ceiling(rdms["hIT_subject_session"], method="spearman")

    # Group level: permutation test of every layer against the group RDM (FWE over layers).
    test = PermutationTest(
        RSAScorer(metric="correlation", comparison="spearman", feature_groups=groups,
                  target_rdm=group_rdm),
        n_permutations=args.n_permutations, random_state=args.seed,
    ).fit(X)
    group_score = np.atleast_1d(test.score_)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    mean, sem = per_subject.mean(axis=1), per_subject.std(axis=1, ddof=1) / np.sqrt(4)
    rows = [
        [layer, f"{mean[i]:.4f}", f"{sem[i]:.4f}", f"{group_score[i]:.4f}",
         f"{np.atleast_1d(test.pvalue_)[i]:.4g}", f"{np.atleast_1d(test.pvalue_fwe_)[i]:.4g}"]
        for i, layer in enumerate(layers)
    ]
    header = ["layer", "spearman_subject_mean", "spearman_subject_sem", "spearman_group",
              "p", "p_fwe"]
    with open(out / "rsa_by_layer.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([header, *rows])

    from neuroprobe.plotting import plot_rsa_profile, save_figure

    save_figure(plot_rsa_profile(layers, mean, ceiling, errors=sem,
                                 pvalues=np.atleast_1d(test.pvalue_fwe_),
                                 title=f"{args.model} ({weights or 'random'}) vs human IT"),
                out / "rsa_by_layer.png")

    print(f"{args.model} ({weights or 'random weights'}) vs human IT, 92 images, "
          f"{args.n_permutations} permutations")
    print(f"noise ceiling (Spearman): lower {ceiling.lower:.3f}, upper {ceiling.upper:.3f}")
    print(f"{'layer':<8} {'subjects':>9} {'sem':>7} {'group':>7} {'p':>8} {'p_FWE':>8}")
    for row in rows:
        print(f"{row[0]:<8} {row[1]:>9} {row[2]:>7} {row[3]:>7} {row[4]:>8} {row[5]:>8}")
    best = layers[int(np.argmax(mean))]
    print(f"best layer: {best}; wrote {out / 'rsa_by_layer.csv'} and {out / 'rsa_by_layer.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
