"""Image views: find item images in a folder, preprocess with the model's image processor,
run a frozen Flax vision encoder (CLIP vision, ViT, ResNet, ...), pool."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from corrkd_jax.features.encoders import Encoder, ensure_encoder
from corrkd_jax.features.pooling import IMAGE_POOLINGS, l2_normalize
from corrkd_jax.features.sharding import (
    ShardedForward,
    global_batch_size,
    local_mesh,
    pad_rows,
    run_batches,
)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
MISSING = "missing"  # failure reason of an item without an image file


def index_image_dir(image_dir: str) -> dict[str, str]:
    """Map file stem -> path for the image files directly inside `image_dir`.

    When one stem has several extensions the first in IMAGE_EXTENSIONS order wins.
    """
    if not os.path.isdir(image_dir):
        raise ValueError(f"image folder {image_dir!r} does not exist or is not a folder")
    rank = {ext: i for i, ext in enumerate(IMAGE_EXTENSIONS)}
    best: dict[str, tuple[int, str]] = {}
    for entry in os.scandir(image_dir):
        stem, ext = os.path.splitext(entry.name)
        ext = ext.lower()
        if ext in rank and entry.is_file() and (stem not in best or rank[ext] < best[stem][0]):
            best[stem] = (rank[ext], entry.path)
    return {stem: path for stem, (_, path) in best.items()}


def find_image_files(
    image_dir: str, item_ids: Sequence[int], external_ids: Sequence[str]
) -> list[str | None]:
    """Per item: the file named by its item id, else by its external id (ASIN), else None."""
    index = index_image_dir(image_dir)
    found = []
    for item_id, external_id in zip(item_ids, external_ids, strict=True):
        path = index.get(str(item_id))
        if path is None and external_id:
            path = index.get(str(external_id))
        found.append(path)
    return found


def read_image(path: str) -> Image.Image:
    """Decode an image file fully into RGB; raises OSError/ValueError when unreadable."""
    with Image.open(path) as image:
        return image.convert("RGB")  # convert() forces the full decode inside the try


def _image_batches(
    paths: Sequence[str | None], processor, batch_size: int, failures: dict[int, str]
) -> Iterator[tuple[np.ndarray, tuple[np.ndarray]]]:
    """Yield (rows int [b], (pixel_values float32 [B, 3, H, W],)) over the readable images.

    Missing and unreadable images are recorded in `failures` (index -> reason), not yielded.
    """
    rows: list[int] = []
    images: list[Image.Image] = []

    def flush() -> tuple[np.ndarray, tuple[np.ndarray]]:
        pixels = processor(images=images, return_tensors="np")["pixel_values"]
        batch = (
            np.asarray(rows, dtype=np.int64),
            (pad_rows(np.asarray(pixels, dtype=np.float32), batch_size),),
        )
        rows.clear()
        images.clear()
        return batch

    for i, path in enumerate(paths):
        if path is None:
            failures[i] = MISSING
            continue
        try:
            images.append(read_image(path))
        except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as err:
            failures[i] = f"unreadable: {type(err).__name__}: {err}"
            continue
        rows.append(i)
        if len(rows) == batch_size:
            yield flush()
    if rows:
        yield flush()


def pool_image(outputs, pooling: str) -> jax.Array:
    """Model outputs -> float32 [B, d]. "pooler": the model's pooled output (CLIP: post-LN CLS,
    ViT: dense+tanh on CLS, ResNet: global average pool); "cls": first token; "mean": mean of
    the patch tokens (ViT/CLIP, CLS excluded) or of the spatial map (ResNet, NCHW)."""
    hidden = outputs.last_hidden_state
    if pooling == "pooler":
        pooled = outputs.pooler_output
        return pooled.reshape(pooled.shape[0], -1).astype(jnp.float32)
    if hidden.ndim == 4:  # convolutional: [B, C, H, W]
        if pooling == "mean":
            return jnp.mean(hidden.astype(jnp.float32), axis=(2, 3))
        raise ValueError(
            f"pooling {pooling!r} needs a token sequence; this model outputs a "
            "spatial map: use 'pooler' or 'mean'"
        )
    if pooling == "cls":
        return hidden[:, 0].astype(jnp.float32)
    if pooling == "mean":
        return jnp.mean(hidden[:, 1:].astype(jnp.float32), axis=1)
    raise ValueError(f"image pooling must be one of {IMAGE_POOLINGS}, got {pooling!r}")


def _image_forward(encoder: Encoder, pooling: str, normalize: bool):
    model = encoder.model

    def forward(params, pixel_values: jax.Array) -> jax.Array:
        pixel_values = pixel_values.astype(jnp.dtype(encoder.dtype))
        pooled = pool_image(model(pixel_values=pixel_values, params=params), pooling)
        return l2_normalize(pooled) if normalize else pooled

    return forward


def encode_images(
    paths: Sequence[str | None],
    encoder: str | Encoder,
    *,
    pooling: str = "pooler",
    normalize: bool = False,
    batch_size: int = 32,
    dtype: str = "float32",
    mesh: jax.sharding.Mesh | None = None,
    progress: bool = True,
    desc: str = "image",
) -> tuple[np.ndarray, dict[int, str]]:
    """Embed image files [n] (None = no file) -> (float32 [n, d], failures {index: reason}).

    Images are resized, centre-cropped and normalised by the encoder's own image processor
    (NCHW). Missing or unreadable images give zero rows and a failure entry, never an
    exception; only "no readable image at all" raises ValueError. Batches of `batch_size`
    (rounded up to the device count) are sharded over `mesh` (default: all local devices).
    dtype: forward-pass dtype, used when `encoder` is a spec (a loaded Encoder keeps its own).
    """
    if pooling not in IMAGE_POOLINGS:
        raise ValueError(f"image pooling must be one of {IMAGE_POOLINGS}, got {pooling!r}")
    encoder = ensure_encoder(encoder, "image", dtype)
    mesh = mesh or local_mesh()
    batch = global_batch_size(batch_size, mesh)
    failures: dict[int, str] = {}
    readable = sum(p is not None for p in paths)
    if readable == 0:
        raise ValueError(f"none of the {len(paths)} items has an image file")
    key = ("image", pooling, bool(normalize), mesh)
    if key not in encoder.forwards:
        encoder.forwards[key] = ShardedForward(
            _image_forward(encoder, pooling, normalize), encoder.params, mesh
        )
    forward = encoder.forwards[key]
    batches = _image_batches(paths, encoder.preprocessor, batch, failures)
    try:
        out = run_batches(
            forward, batches, len(paths), progress=progress, desc=desc, total=readable
        )
    except ValueError as err:
        if len(failures) == len(paths):
            raise ValueError(
                f"no readable image among {len(paths)} items; first failures: "
                f"{dict(list(failures.items())[:5])}"
            ) from err
        raise
    return out, failures  # rows of failed images were never written: zeros
