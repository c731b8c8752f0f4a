"""Tiny end-to-end training set-ups (tests, demos): a small S3-Rec folder and a shrunk config.

`write_tiny_dataset` cuts the first users of the built-in synthetic shop into an S3-Rec
folder (`sequences.txt` + `items.tsv` with `asin`, `title`, `attributes`); `tiny_config`
shrinks configs/default.py to that folder, tiny dimensions, one length bucket and a tiny
random BERT for stage 1 (so the whole real pipeline runs in seconds).
"""

from __future__ import annotations

import os

import ml_collections
import numpy as np

from corrkd_jax.paths import repo_root
from corrkd_jax.trainer.config_files import load_config_file


def write_tiny_dataset(
    folder: str,
    *,
    num_users: int = 150,
    max_items_per_user: int = 12,
    seed_source: str = "builtin:synthetic",
) -> str:
    """Writes the first `num_users` users of the synthetic shop as an S3-Rec folder.

    Items are renumbered 1..M in order of first appearance; every user keeps at most
    `max_items_per_user` items (the last ones). Returns `folder`.
    """
    from corrkd_jax.data import load_dataset  # the synthetic shop, from the data cache

    data = load_dataset(seed_source)
    sequences = [np.asarray(s[-max_items_per_user:]) for s in data.sequences[:num_users]]
    old_ids = list(dict.fromkeys(int(i) for s in sequences for i in s))
    new_id = {old: new for new, old in enumerate(old_ids, start=1)}
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "sequences.txt"), "w", encoding="utf-8") as f:
        for user, sequence in enumerate(sequences, start=1):
            f.write(" ".join([str(user)] + [str(new_id[int(i)]) for i in sequence]) + "\n")
    fields = data.items.fields
    with open(os.path.join(folder, "items.tsv"), "w", encoding="utf-8") as f:
        f.write("item_id\tasin\ttitle\tattributes\n")
        for old in old_ids:
            f.write(
                f"{new_id[old]}\t{data.items.external_ids[old]}\t{fields['title'][old]}\t"
                f"{fields['attributes'][old]}\n"
            )
    return folder


def write_recbole_dataset(
    s3rec_folder: str, folder: str, *, name: str = "tiny", title_field: str = "title"
) -> str:
    """The S3-Rec folder of `write_tiny_dataset` as RecBole atomic files: `<name>.inter`
    (user_id, item_id, timestamp) and `<name>.item` with one text field `title_field`.
    Ids become tokens (`u<user>`, `i<item>`). Returns `folder`."""
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(s3rec_folder, "sequences.txt"), encoding="utf-8") as f:
        rows = [line.split() for line in f if line.strip()]
    with open(os.path.join(folder, f"{name}.inter"), "w", encoding="utf-8") as f:
        f.write("user_id:token\titem_id:token\ttimestamp:float\n")
        for user, *items in rows:
            for t, item in enumerate(items):
                f.write(f"u{user}\ti{item}\t{1000 + t}\n")
    with open(os.path.join(s3rec_folder, "items.tsv"), encoding="utf-8") as f:
        table = [line.rstrip("\n").split("\t") for line in f][1:]
    with open(os.path.join(folder, f"{name}.item"), "w", encoding="utf-8") as f:
        f.write(f"item_id:token\t{title_field}:token_seq\n")
        for item_id, _, title, _ in table:
            f.write(f"i{item_id}\t{title}\n")
    return folder


def shrink(
    config: ml_collections.ConfigDict, encoder_dir: str, cache_dir: str
) -> ml_collections.ConfigDict:
    """Any training config (e.g. configs/default.py:sasrec,kdsr) shrunk like `tiny_config`,
    its dataset fields left alone (tests of the own-data path)."""
    config.batch_size = config.eval_batch_size = 32
    config.num_epochs = 1
    config.log_every_steps = 5
    config.progress = False
    config.data.max_len = 8
    config.data.length_buckets = (8,)
    config.data.cache_dir = os.path.join(cache_dir, "data")
    config.data.num_threads = config.data.prefetch = 0
    config.model.dim = 16
    config.model.gru4rec.hidden = 16
    config.model.sasrec.max_positions = 8
    config.kd.num_codes = 4
    config.kd.num_chunks = 4
    config.kd.num_pairs = 500
    config.kd.kmeans_iters = 3
    features = config.features
    features.cache_dir = os.path.join(cache_dir, "features")
    features.progress = False
    features.batch_size = 32
    features.length_buckets = (32,)
    features.reduce.method = "pca"
    features.reduce.dim = 16
    for view in features.views.values():
        view.encoder = encoder_dir
        view.max_length = 32
    return config


def tiny_config(data_root: str, encoder_dir: str, cache_dir: str) -> ml_collections.ConfigDict:
    """configs/default.py shrunk to seconds: dim 16, batch 32, one bucket, tiny encoder.

    Args:
        data_root: an S3-Rec folder (e.g. from `write_tiny_dataset`).
        encoder_dir: a tiny text encoder folder (`support.tiny_encoders`).
        cache_dir: processed-data and features cache root (keeps tests out of ~/.cache).
    """
    config = load_config_file(os.path.join(repo_root(), "configs", "default.py"))
    config.batch_size = 32
    config.eval_batch_size = 32
    config.num_epochs = 2
    config.log_every_steps = 5
    config.progress = False
    config.data.root = data_root
    config.data.format = "s3rec"
    config.data.max_len = 8
    config.data.length_buckets = (8,)
    config.data.cache_dir = os.path.join(cache_dir, "data")
    config.data.num_threads = 0
    config.data.prefetch = 0
    config.model.dim = 16
    config.model.gru4rec.hidden = 16
    config.kd.num_codes = 8
    config.kd.num_chunks = 4
    config.kd.num_pairs = 2_000
    config.kd.kmeans_iters = 10
    features = config.features
    features.data.root = data_root
    features.data.format = "s3rec"
    features.cache_dir = os.path.join(cache_dir, "features")
    features.progress = False
    features.batch_size = 32
    features.length_buckets = (32,)
    features.reduce.method = "pca"
    for view in features.views.values():
        view.encoder = encoder_dir
        view.max_length = 32
    return config
