"""Mean-image subtraction: the training set's per-pixel mean becomes zero, nothing is
scaled, and held-out splits lose the training mean, not their own."""

import torch

from optimlab.data import Split, Splits
from optimlab.data.preprocess import apply_to_splits, create, from_state_dict
from optimlab.run import RunConfig


def images(n, seed, scale=1.0):
    gen = torch.Generator().manual_seed(seed)
    # A different mean at every pixel and channel, so a per-channel mean would not do.
    base = torch.arange(3 * 4 * 5, dtype=torch.float64).reshape(3, 4, 5)
    return base + scale * torch.randn(n, 3, 4, 5, generator=gen, dtype=torch.float64)


def splits(train, test):
    def split(x):
        return Split(x, torch.zeros(x.shape[0], dtype=torch.int64))

    return Splits(name="toy", train=split(train), val=split(train[:0]), test=split(test),
                  task="classification", input_shape=(3, 4, 5), num_classes=2)  # fmt: skip


def test_training_mean_image_becomes_zero_and_nothing_is_scaled():
    train, test = images(50, 0, scale=7.0), images(20, 1)
    out, t = apply_to_splits(splits(train, test), "mean_image")
    torch.testing.assert_close(out.train.x.mean(0), torch.zeros(3, 4, 5, dtype=torch.float64),
                               rtol=0, atol=1e-12)  # fmt: skip
    # A pure shift: differences between examples are unchanged (no division by a std).
    torch.testing.assert_close(out.train.x[1] - out.train.x[0], train[1] - train[0],
                               rtol=0, atol=1e-12)  # fmt: skip
    # The test split loses the training mean, not its own.
    torch.testing.assert_close(out.test.x, test - train.mean(0), rtol=0, atol=1e-12)
    assert not torch.allclose(out.test.x.mean(0), torch.zeros(3, 4, 5, dtype=torch.float64))
    again = from_state_dict(t.state_dict())
    assert torch.equal(again(test), t(test))


def test_float32_inputs_keep_their_dtype():
    x = images(10, 2).float()
    assert create("mean_image").fit(x)(x).dtype == torch.float32


def test_a_run_accepts_mean_image():
    config = RunConfig(problem="digits_mlp", optimizer="sgd", preprocess="mean_image")
    assert config.preprocess == "mean_image"
