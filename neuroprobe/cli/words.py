"""``neuroprobe words``: per-word language-model features of a transcript into an ``.act.h5``."""

from __future__ import annotations

import sys
import warnings

from neuroprobe.cli.main import add_command, weights_argument
from neuroprobe.exceptions import CLIError

EPILOG = """\
example:
  # features of two GPT-2 blocks for every word, each seen with the 50 words before it
  neuroprobe words story.csv --model hf:models/gpt2 --layers block6 block11 --context 50 \\
      --subword last --out words.act.h5
  # bring them to the scans (lanczos resampling at the word onsets, runs kept apart) and fit
  # a leave-one-run-out ridge map: the onsets and runs are stored in words.act.h5
  neuroprobe encode words.act.h5 --layer block6 --resample lanczos \\
      --times words.act.h5:onset --runs words.act.h5:run --tr 2 --n-scans 300 290 \\
      --delays 1 2 3 4 --targets bold.npy --out block6_r.npy

TRANSCRIPT is a CSV (or .tsv) with one row per word: columns word and onset (seconds from its
run's first scan), optional offset and run (words of different runs never share context).
--context N: each word is seen with the N preceding words of its run; --context run (default):
with the whole run so far. Contexts longer than the model takes lose their earliest tokens (one
warning line says how many words were cut). --subword: a word's last subword token, or the mean
of its tokens. The rows of OUT are the words in order (IDs w0, w1, ...), with the columns word,
onset, offset and run beside them ('neuroprobe info OUT' lists them). An interrupted run resumes
when rerun with the same arguments (and an unchanged transcript).
"""


def _context(value):
    """``--context``: ``run`` (the whole run so far) or a number of preceding words >= 0."""
    if str(value).lower() in ("run", "all", "none"):
        return None
    try:
        number = int(value)
    except ValueError:
        number = -1
    if number < 0:
        import argparse

        raise argparse.ArgumentTypeError(
            f"expected a number of preceding words >= 0 or 'run', got {value!r}")
    return number


def register(subparsers):
    """Add the ``words`` subcommand."""
    p = add_command(
        subparsers, "words", run_words, {},
        help="per-word language-model features of a transcript into an .act.h5 file",
        description="Run a language model over a transcript (word, onset, offset, run) and "
        "store one feature vector per word and layer, with the word timings beside them "
        "(WordFeatureExtractor; resumable).",
        epilog=EPILOG,
    )
    p.add_argument("transcript", help="transcript CSV/TSV: word, onset[, offset, run]")
    p.add_argument("--model", required=True,
                   help="a language model: hf:<folder or repo id> (GPT-2, BERT, Llama-style)")
    p.add_argument("--weights", default="DEFAULT",
                   help="DEFAULT (the folder's / repo's weights), a checkpoint, or none "
                   "(random, seeded by --seed)")
    p.add_argument("--layers", nargs="+", default=None,
                   help="layers with token outputs (block0 block5 norm; default: the last block)")
    p.add_argument("--context", type=_context, default=None, metavar="N|run",
                   help="preceding words of the same run each word is seen with, or 'run' for "
                   "the whole run so far (default: run)")
    p.add_argument("--max-tokens", type=int, default=None,
                   help="most tokens in a word's window (default: the model's maximum length)")
    p.add_argument("--subword", choices=["last", "mean"], default="last",
                   help="a word's last subword token or the mean of its tokens (default: last)")
    p.add_argument("--batch-size", type=int, default=16, help="windows per forward pass")
    p.add_argument("--no-resume", action="store_true",
                   help="start over even if a partial file exists")


def run_words(args):
    from neuroprobe.exceptions import StimulusError, TruncationWarning
    from neuroprobe.io.transcript import read_transcript
    from neuroprobe.transformers.words import WordFeatureExtractor

    if args.batch_size < 1:
        raise CLIError(f"--batch-size must be >= 1, got {args.batch_size}")
    if args.max_tokens is not None and args.max_tokens < 1:
        raise CLIError(f"--max-tokens must be >= 1, got {args.max_tokens}")
    try:
        transcript = read_transcript(args.transcript)
    except StimulusError as exc:
        raise CLIError(f"TRANSCRIPT {exc}") from None
    extractor = WordFeatureExtractor(
        args.model, weights=weights_argument(args.weights), layers=args.layers,
        context=args.context, max_tokens=args.max_tokens, word_pooling=args.subword,
        batch_size=args.batch_size, device=args.device, random_state=args.seed)
    caught = []
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", TruncationWarning)
            path = extractor.extract_to_file(transcript, args.out, resume=not args.no_resume)
    finally:  # the truncation on one line; every other warning as it came
        for w in caught:
            if issubclass(w.category, TruncationWarning):
                print(f"neuroprobe words: warning: {w.message}", file=sys.stderr)
            else:
                warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if not args.quiet:
        runs = len(transcript.run_slices())
        print(f"wrote {path} ({len(transcript)} words in {runs} run(s), layers "
              f"{', '.join(extractor.layers_)}, context "
              f"{'run' if args.context is None else args.context}, subword {args.subword})")
    return 0
