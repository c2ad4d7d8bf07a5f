"""Token pooling with an attention mask equals a hand-written loop over each row's real tokens."""

import numpy as np
import pytest
import torch

from neuroprobe.exceptions import ModelError
from neuroprobe.models.tokens import pool_tokens


@pytest.mark.parametrize("side", ["right", "left"])
def test_masked_pooling_equals_loop(side):
    gen = torch.Generator().manual_seed(0)
    tokens = torch.randn(5, 7, 3, generator=gen, dtype=torch.float64)
    lengths = [7, 1, 4, 2, 5]
    mask = torch.zeros(5, 7, dtype=torch.long)
    for r, n in enumerate(lengths):
        if side == "right":
            mask[r, :n] = 1
        else:
            mask[r, 7 - n :] = 1
    tokens[mask == 0] = float("nan")  # padding may hold anything, NaN included
    for r, n in enumerate(lengths):
        real = tokens[r, :n] if side == "right" else tokens[r, 7 - n :]
        np.testing.assert_allclose(pool_tokens(tokens, "mean", 1, mask)[r], real.mean(0))
        np.testing.assert_array_equal(pool_tokens(tokens, "cls", 1, mask)[r], real[0])
        np.testing.assert_array_equal(pool_tokens(tokens, "last", 1, mask)[r], real[-1])
        full = pool_tokens(tokens, "none", 1, mask)[r]  # (C, T), padding zeroed
        assert full.shape == (3, 7)
        keep = mask[r].bool()
        np.testing.assert_array_equal(full[:, keep], real.T)
        assert (full[:, ~keep] == 0).all()


def test_unmasked_pooling_and_errors():
    tokens = torch.arange(24, dtype=torch.float32).reshape(2, 4, 3)
    np.testing.assert_array_equal(pool_tokens(tokens, "mean", 1), tokens[:, 1:].mean(1))
    np.testing.assert_array_equal(pool_tokens(tokens, "mean", 0), tokens.mean(1))
    with pytest.raises(ModelError, match="needs a class token"):
        pool_tokens(tokens, "cls", 0)
    with pytest.raises(ModelError, match="does not match tokens"):
        pool_tokens(tokens, "mean", 1, torch.ones(2, 3))
    with pytest.raises(ModelError, match="token_pooling must be one of"):
        pool_tokens(tokens, "max", 1, torch.ones(2, 4))


def test_tap_cuts_none_to_the_given_length():
    """A tap given ``length`` (OpenCLIP's text tower run on its full context for a batch cut to
    its set's longest text) keeps the first ``length`` tokens of "none", padding zeroed; the
    pooled values ignore ``length``."""
    from neuroprobe.models.tokens import TokenPool

    gen = torch.Generator().manual_seed(1)
    tokens = torch.randn(3, 8, 2, generator=gen)
    mask = torch.zeros(3, 8, dtype=torch.bool)
    for r, n in enumerate([5, 2, 3]):
        mask[r, :n] = True
    for how in ("none", "mean", "last"):
        tap = TokenPool(how)
        tap.set_mask(mask, length=5)
        got = tap(tokens)
        tap.set_mask(mask)
        full = tap(tokens)
        if how == "none":
            assert got.shape == (3, 2, 5)
            np.testing.assert_array_equal(got, full[..., :5])
            assert (full[..., 5:] == 0).all()
        else:
            np.testing.assert_array_equal(got, full)
