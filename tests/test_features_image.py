"""Image encoders of stage 1: tiny CLIP vision / ViT / ResNet on PNG/JPEG files written here."""

from __future__ import annotations

import os

import numpy as np
import pytest
from PIL import Image

from corrkd_jax.data import ItemTable
from corrkd_jax.features.config import base_config, image_view
from corrkd_jax.features.encoders import load_encoder
from corrkd_jax.features.image import find_image_files, index_image_dir, read_image
from corrkd_jax.features.stage import compute_view
from support.tiny_encoders import IMAGE_FAMILIES, save_tiny_image_encoder

# Item 1 by id (PNG), item 2 by ASIN (JPEG), item 3 corrupt, item 4 absent, item 5 upper-case
# extension, item 6 a palette PNG (converted to RGB).
ASINS = ["", "A001", "B0002", "C0003", "D0004", "E0005", "F0006"]


@pytest.fixture(scope="module")
def image_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)

    def noise(h, w):
        return Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8))

    noise(40, 50).save(folder / "1.png")
    noise(64, 30).save(folder / "B0002.jpg", quality=90)
    (folder / "3.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a real png")
    noise(33, 33).save(folder / "5.JPEG", format="JPEG")
    noise(20, 20).convert("P").save(folder / "F0006.png")
    (folder / "notes.txt").write_text("not an image")
    return str(folder)


@pytest.fixture(scope="module")
def items():
    n = len(ASINS) - 1
    return ItemTable(
        external_ids=np.asarray(ASINS, object),
        fields={"title": np.asarray([""] + ["x"] * n, object)},
        num_items=n,
    )


def test_find_image_files_by_id_then_asin(image_dir, items):
    paths = find_image_files(image_dir, range(1, 7), list(items.external_ids[1:]))
    names = [os.path.basename(p) if p else None for p in paths]
    assert names == ["1.png", "B0002.jpg", "3.png", None, "5.JPEG", "F0006.png"]
    assert "notes" not in index_image_dir(image_dir)
    assert read_image(paths[5]).mode == "RGB"


@pytest.mark.parametrize("family", IMAGE_FAMILIES)
def test_image_family_encodes_files_and_reports_failures(tmp_path, image_dir, items, family):
    folder = save_tiny_image_encoder(family, str(tmp_path / family))
    config = base_config("t", "unused", {"img": image_view(image_dir, encoder=folder)})
    config.batch_size = 2
    config.reduce.method = "pca"
    config.reduce.dim = 2
    encoder = load_encoder(folder, "image")
    result = compute_view(config, "img", items, encoder=encoder, progress=False)
    raw = result.raw
    assert raw.shape[0] == 7 and raw.dtype == np.float32
    good = [1, 2, 5, 6]
    assert np.all(raw[[0, 3, 4]] == 0) and np.all(result.reduced[[0, 3, 4]] == 0)
    assert np.all(np.abs(raw[good]).sum(1) > 0)
    missing = {m["item_id"]: m for m in result.entry["missing"]}
    assert sorted(missing) == [3, 4] and result.entry["num_missing"] == 2
    assert missing[3]["reason"].startswith("unreadable") and missing[3]["external_id"] == "C0003"
    assert missing[4]["reason"] == "missing"
    # Row 2 equals a direct forward pass of the processor's pixels (the JPEG found by ASIN).
    pixels = encoder.preprocessor(
        images=[read_image(os.path.join(image_dir, "B0002.jpg"))], return_tensors="np"
    )["pixel_values"]
    assert pixels.shape[1] == 3  # NCHW
    pooled = np.asarray(encoder.model(pixel_values=pixels, params=encoder.params).pooler_output)
    np.testing.assert_allclose(raw[2], pooled.reshape(-1), rtol=1e-4, atol=1e-5)


def test_missing_image_folder_is_a_clear_error(tmp_path, items):
    config = base_config(
        "t", "unused", {"img": image_view(str(tmp_path / "nope"), encoder="unused")}
    )
    with pytest.raises(ValueError, match="image folder .*nope"):
        compute_view(config, "img", items, progress=False)
