import pytest
import torch

from value.image_transform import ImageTransform


def test_square_images_are_resized_and_normalised():
    t = ImageTransform(size=8, mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    out = t(torch.full((2, 3, 32, 32), 0.75))
    assert out.shape == (2, 3, 8, 8)
    assert torch.allclose(out, torch.ones_like(out))  # (0.75 - 0.5) / 0.25


def test_longest_pads_with_black_and_shortest_crops():
    wide = torch.ones(1, 3, 16, 32)
    padded = ImageTransform(size=16, mean=(0, 0, 0), std=(1, 1, 1), resize_mode="longest")(wide)
    assert padded.shape == (1, 3, 16, 16)
    assert padded[..., :4, :].abs().max() == 0 and padded[..., 4:12, :].min() == pytest.approx(1.0)
    cropped = ImageTransform(size=16, mean=(0, 0, 0), std=(1, 1, 1), resize_mode="shortest")(wide)
    assert cropped.shape == (1, 3, 16, 16) and cropped.min() == pytest.approx(1.0)


def test_gradients_reach_the_pixels():
    x = torch.rand(1, 3, 20, 30, requires_grad=True)
    ImageTransform(size=8, resize_mode="longest")(x).sum().backward()
    assert x.grad.abs().sum() > 0


def test_bad_inputs():
    with pytest.raises(ValueError, match="resize_mode"):
        ImageTransform(size=8, resize_mode="stretch")
    with pytest.raises(ValueError, match="RGB"):
        ImageTransform(size=8)(torch.rand(1, 1, 8, 8))
