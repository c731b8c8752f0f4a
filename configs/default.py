"""Embedded-default KDSR run: the README's first command.

Trains the session-graph KDSR student on the built-in synthetic catalogue with text features from
the packaged all-MiniLM-L6-v2 encoder (stage 1 runs first when its feature files are missing).
Every field can be overridden on the command line, e.g. `--config.num_epochs=3`.
"""

from __future__ import annotations

import ml_collections


def get_config() -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.seed = 0  # seeds parameter init, dropout, shuffling and codebook fitting
    config.batch_size = 256  # training sequences per step (global, over all devices)
    config.eval_batch_size = 512  # cases per evaluation step (full ranking)
    config.num_epochs = 30  # upper bound; early stopping usually ends the run first

    config.data = ml_collections.ConfigDict()
    config.data.root = "builtin:synthetic"  # dataset folder, or "builtin:synthetic"
    config.data.format = "auto"  # auto | s3rec | recbole | amazon_raw | synthetic
    config.data.protocol = "leave_one_out"  # leave_one_out | ratio
    config.data.max_len = 50  # histories keep their last max_len items
    config.data.min_core = 0  # iterative k-core on users and items (0 = keep as given)
    config.data.length_buckets = (10, 20, 30, 50)  # padded lengths; batches are grouped by length
    config.data.cache_dir = ""  # processed-data cache ("" = $XDG_CACHE_HOME/corrkd_jax)

    config.model = ml_collections.ConfigDict()
    config.model.backbone = "session_graph"  # session_graph | sasrec | gru4rec
    config.model.variant = "kdsr"  # see corrkd_jax/variants.py
    config.model.views = ("title", "attr")  # feature views used (names of stage-1 views)
    config.model.dim = 128  # embedding width d (reduced features must have this width)
    config.model.dropout = 0.2  # dropout rate in fusion and backbone

    config.kd = ml_collections.ConfigDict()
    config.kd.corr_kind = "cos"  # cos | dot | euc | man, teacher and student alike
    config.kd.tau = 1.5  # temperature of the holistic loss
    config.kd.num_codes = 50  # K, codebook size
    config.kd.num_chunks = 8  # D, chunks per feature vector (dim % D == 0)
    config.kd.lambda_hol = 4.0  # weight of the holistic loss, every view
    config.kd.lambda_code = 0.5  # weight of the code loss, every view

    config.optim = ml_collections.ConfigDict()
    config.optim.lr = 1e-3  # Adam learning rate of the main group
    config.optim.async_schedule = "constant"  # constant | step | freeze_then_train

    config.eval = ml_collections.ConfigDict()
    config.eval.metric = "NDCG@10"  # validation metric for model selection
    config.eval.patience = 5  # epochs without improvement before stopping

    config.features = ml_collections.ConfigDict()  # stage-1 settings, see configs/features/
    return config
