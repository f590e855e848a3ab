"""ImageNet tags and image embeddings from one MobileNetV2 pass."""

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torchvision.models import MobileNet_V2_Weights
from torchvision.transforms import v2

from recognition.engine import weights
from recognition.engine.tagger import CATEGORIES, EMBEDDING_SIZE, MODEL_ID, ImageTagger

REPO_ROOT = Path(__file__).resolve().parents[3]
FACES_DIR = Path(
    os.environ.get("SIGHTLINE_FACES_DIR", REPO_ROOT / ".." / "shared" / "data" / "faces")
).resolve()


@pytest.fixture(scope="module")
def tagger():
    return ImageTagger(torch.device("cpu"))


@pytest.fixture(scope="module")
def images():
    """Synthetic images of different sizes and aspect ratios (no photos needed)."""
    rng = np.random.default_rng(7)
    yy, xx = np.mgrid[0:300, 0:500]
    stripes = np.stack([(np.sin(xx / 7.0) * 127 + 128)] * 3, axis=-1).astype(np.uint8)
    return [
        rng.integers(0, 256, (480, 640, 3), dtype=np.uint8),
        np.full((120, 90, 3), (30, 160, 40), np.uint8),  # tall, smaller than the crop
        stripes,
        np.zeros((17, 17, 3), np.uint8),  # tiny
    ]


def test_tags_are_sorted_imagenet_labels_with_probabilities(tagger, images):
    tags = tagger.tag(images, top_k=5)
    assert len(tags) == len(images)
    for image_tags in tags:
        assert len(image_tags) == 5
        labels = [label for label, _ in image_tags]
        probabilities = [p for _, p in image_tags]
        assert all(isinstance(label, str) and label in CATEGORIES for label in labels)
        assert all(isinstance(p, float) and 0.0 <= p <= 1.0 for p in probabilities)
        assert probabilities == sorted(probabilities, reverse=True)
        assert sum(probabilities) <= 1.0 + 1e-6


def test_embeddings_are_unit_vectors(tagger, images):
    embeddings = tagger.embed(images)
    assert embeddings.shape == (len(images), EMBEDDING_SIZE)
    assert embeddings.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, atol=1e-5)


def test_one_pass_gives_both_and_matches_separate_calls(tagger, images):
    tags, embeddings = tagger.tag_and_embed(images, top_k=3)
    for one_pass, separate in zip(tags, tagger.tag(images, top_k=5)):
        assert [label for label, _ in one_pass] == [label for label, _ in separate[:3]]
        np.testing.assert_allclose([p for _, p in one_pass], [p for _, p in separate[:3]], atol=1e-6)
    np.testing.assert_allclose(embeddings, tagger.embed(images), atol=1e-6)


def test_batching_does_not_change_results(tagger, images):
    together = tagger.embed(images)
    alone = np.concatenate([tagger.embed([image]) for image in images])
    np.testing.assert_allclose(together, alone, atol=1e-5)


def test_folded_norms_and_onednn_pointwise_convs_give_torchvision_model_outputs(tagger, images):
    """The tagger's network (norms folded into its convolutions) against torchvision's own
    MobileNetV2 with the same weights, on the same preprocessed pixels."""
    from torchvision.models import mobilenet_v2

    from recognition.engine.tagger import _load_state_dict, _OneDnnPointwiseConv

    reference = mobilenet_v2(weights=None)
    reference.load_state_dict(_load_state_dict())
    reference.eval()
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in tagger.model.modules())
    if torch.backends.mkldnn.is_available():  # every 1×1 convolution runs on oneDNN, whatever the batch
        assert sum(isinstance(m, _OneDnnPointwiseConv) for m in tagger.model.modules()) == 34
    with torch.inference_mode():
        for batch in (images[:1], images):  # one image: the batch PyTorch would not give oneDNN
            x = tagger._preprocess(batch)
            probabilities, embeddings = tagger._forward(x)
            pooled = reference.features(x).mean(dim=(2, 3))
            expected = reference.classifier(pooled).softmax(dim=1)
            torch.testing.assert_close(probabilities, expected, atol=1e-4, rtol=0)
            torch.testing.assert_close(embeddings, torch.nn.functional.normalize(pooled, dim=1), atol=1e-4, rtol=0)


def test_preprocessing_matches_torchvision_transforms(tagger, images):
    """torchvision's v2 transforms exactly (they resize uint8 pixels as uint8), and the weights'
    own v1 preset (which resizes in float) within one level of a pixel."""
    preset = MobileNet_V2_Weights.IMAGENET1K_V1.transforms()
    v2_preset = v2.Compose([
        v2.Resize(preset.resize_size, interpolation=preset.interpolation, antialias=True),
        v2.CenterCrop(preset.crop_size), v2.ToDtype(torch.float32, scale=True),
        v2.Normalize(preset.mean, preset.std),
    ])
    pixels = [torch.from_numpy(im).permute(2, 0, 1) for im in images[:3]]
    ours = tagger._preprocess(images[:3]).contiguous()
    torch.testing.assert_close(ours, torch.stack([v2_preset(x) for x in pixels]), atol=1e-5, rtol=0)
    one_level = 1 / 255 / min(preset.std)
    torch.testing.assert_close(ours, torch.stack([preset(x) for x in pixels]), atol=one_level + 1e-5, rtol=0)


def test_empty_and_bad_input(tagger):
    tags, embeddings = tagger.tag_and_embed([])
    assert tags == [] and embeddings.shape == (0, EMBEDDING_SIZE)
    with pytest.raises(ValueError, match="image 0: expected an HxWx3 uint8 RGB array"):
        tagger.tag([np.zeros((10, 10), np.uint8)])
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        tagger.embed([np.zeros((10, 10, 3), np.float32)])
    with pytest.raises(ValueError, match="top_k"):
        tagger.tag([np.zeros((10, 10, 3), np.uint8)], top_k=0)


def test_categories_and_model_id():
    assert len(CATEGORIES) == 1000 and CATEGORIES[0] == "tench"
    assert weights.WEIGHTS["mobilenet_v2"].sha256[:8] in MODEL_ID


def test_default_device_follows_the_setting(monkeypatch):
    monkeypatch.setenv("SIGHTLINE_DEVICE", "cpu")
    assert ImageTagger().device == torch.device("cpu")


def test_a_portrait_gets_clothing_tags(tagger):
    """Sanity check on a real photo: verified once by hand, stable across runs."""
    from PIL import Image

    path = FACES_DIR / "probes" / "obama-480p.jpg"
    if not path.is_file():
        pytest.skip(f"shared face photos not found at {FACES_DIR} (set SIGHTLINE_FACES_DIR)")
    with Image.open(path) as image:
        pixels = np.asarray(image.convert("RGB"))
    labels = [label for label, _ in tagger.tag([pixels], top_k=3)[0]]
    assert {"suit", "groom", "Windsor tie"} & set(labels), labels
