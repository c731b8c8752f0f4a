"""Embedded-default KDSR run: the README's first command.

    python -m corrkd_jax.train --config configs/default.py --workdir runs/default
    python -m corrkd_jax.train --config configs/default.py:sasrec,kdsr \
        --config.data.root=path/to/your/data --workdir runs/mine

The optional argument is "backbone,variant" (default: session_graph,kdsr). With your own
`data.root` (any supported format, detected), stage 1 follows it and the views are fitted to
the text fields its item table has (corrkd_jax/own_data.py; or `--config.model.views=title`).

Trains the session-graph KDSR student on the built-in synthetic catalogue with `title` and
`attr` text features from the packaged all-MiniLM-L6-v2 encoder (stage 1 runs first when its
feature files are missing; settings from configs/features/synthetic_minilm.py). Sized to
finish stage 1 + training + evaluation in about 10 minutes on 2 CPU cores. Every field can be
overridden on the command line, e.g. `--config.num_epochs=3`. The real-data configs
(configs/beauty.py, ...) start from this file and change the dataset and sizes.
"""

from __future__ import annotations

import ml_collections

from corrkd_jax.optim import TABLE_REGEX
from corrkd_jax.trainer.config_files import (
    backbone_and_variant,
    link_features_to_data,
    sibling_config,
)


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
    config = ml_collections.ConfigDict()
    config.seed = 0  # seeds parameter init, dropout, shuffling and codebook fitting
    config.batch_size = 256  # training sequences per step (global, over all devices)
    config.eval_batch_size = 256  # cases per evaluation step (full ranking over all items)
    config.num_negatives = 0  # 0 = full softmax (the method); S > 0 = sampled softmax, S shared negatives (huge catalogues)
    config.num_epochs = 8  # upper bound; early stopping may end the run first
    config.log_every_steps = 50  # train records (loss terms, lr, steps/s) every this many steps
    config.progress = True  # tqdm progress bars (step/s and loss terms) on stderr

    config.data = ml_collections.ConfigDict()
    config.data.root = "builtin:synthetic"  # dataset folder (relative to the repo root) or builtin:synthetic
    config.data.format = "auto"  # auto (detected; builtin:synthetic by its name) | s3rec | recbole | amazon_raw | synthetic
    config.data.protocol = "leave_one_out"  # leave_one_out | ratio
    config.data.valid_fraction = 0.1  # ratio protocol only: validation share of the training part
    config.data.test_fraction = 0.2  # ratio protocol only: test share of each sequence
    config.data.max_len = 20  # histories keep their last max_len items
    config.data.min_core = 0  # iterative k-core on users and items (0 = keep as given)
    config.data.length_buckets = (5, 10, 20)  # padded lengths; one compile per bucket
    config.data.train_on = "prefixes"  # prefixes (one case per target) | sequences (SASRec/GRU4Rec: every position of a user's sequence in one pass)
    config.data.cache_dir = ""  # processed-data cache ("" = $XDG_CACHE_HOME/corrkd_jax)
    config.data.num_threads = 1  # grain threads building batches ahead of the step
    config.data.prefetch = 4  # batches built ahead (0 = build in the training thread)

    config.model = ml_collections.ConfigDict()
    config.model.backbone = "session_graph"  # session_graph | sasrec | gru4rec
    config.model.variant = "kdsr"  # see corrkd_jax/variants.py
    config.model.views = ("title", "attr")  # feature views used (names of stage-1 views)
    config.model.dim = 64  # embedding width d (= features.reduce.dim)
    config.model.dropout = 0.2  # dropout rate in fusion and backbone
    config.model.session_graph = ml_collections.ConfigDict()
    config.model.session_graph.last_n = 2  # positions summed into the sequence vector
    config.model.session_graph.negative_slope = 0.1  # LeakyReLU slope of the graph attention
    config.model.session_graph.attention_dropout = 0.0  # dropout on the attention weights, after the softmax
    config.model.sasrec = ml_collections.ConfigDict()
    config.model.sasrec.num_blocks = 2  # self-attention blocks
    config.model.sasrec.num_heads = 2  # attention heads (dim % num_heads == 0)
    config.model.sasrec.max_positions = 200  # learned positions (>= the largest bucket)
    config.model.sasrec.norm = "pre"  # pre | post (RecBole, original SASRec) layer-norm placement
    config.model.sasrec.layer_norm_eps = 1e-6  # LayerNorm epsilon (RecBole: 1e-12)
    config.model.sasrec.ffn_ratio = 4  # FFN inner width = ffn_ratio x dim (RecBole: 4; before: 1)
    config.model.sasrec.activation = "gelu"  # gelu (exact, RecBole) | gelu_tanh (before) | relu
    config.model.sasrec.init_std = 0.02  # N(0, init_std) dense kernels as RecBole (0 = Flax lecun_normal, before)
    config.model.sasrec.broadcast_attention_dropout = False  # True = one attention-dropout mask for the whole batch (Flax default, before)
    config.model.sasrec.positions = "from_start"  # from_start (RecBole) | from_end (before): where position 0 is
    config.model.gru4rec = ml_collections.ConfigDict()
    config.model.gru4rec.hidden = 64  # GRU width (projected back to dim when different)
    config.model.gru4rec.output_proj = True  # Dense(hidden -> dim) after the GRU even when hidden == dim (RecBole)

    config.kd = ml_collections.ConfigDict()
    config.kd.corr_kind = "cos"  # cos | dot | euc | man, teacher and student alike
    config.kd.tau = 1.5  # temperature of the holistic loss
    config.kd.num_codes = 50  # K, codebook size
    config.kd.num_chunks = 8  # D, chunks per feature vector (dim % D == 0)
    config.kd.lambda_hol = 4.0  # weight of the holistic loss, every view (or {view: weight})
    config.kd.lambda_code = 0.5  # weight of the code loss, every view (or {view: weight})
    config.kd.num_pairs = 200_000  # item pairs sampled to fit each codebook (k-means points)
    config.kd.kmeans_iters = 50  # Lloyd iterations at most per codebook
    config.kd.pack_pairs = True  # code term over each batch's real node pairs only (same loss, faster)
    config.kd.pair_growth = 2.0  # ratio of the pair-capacity ladder (compiled shapes vs padding)
    config.kd.pair_chunk = 1024  # listed pairs per scan step of the code term (0 = one pass, e.g. GPU)
    config.kd.pair_dtype = "float32"  # code-MLP compute dtype: float32 | bfloat16 (GPU/TPU option, changes results)

    config.optim = ml_collections.ConfigDict()
    config.optim.lr = 1e-3  # Adam learning rate of the main group
    config.optim.weight_decay = 0.0  # coupled L2 (torch Adam weight_decay; released: 0)
    config.optim.lr_decay_epochs = 0  # multiply lr by lr_decay_rate every this many epochs (0 = off)
    config.optim.lr_decay_rate = 0.1  # step-decay factor of the main learning rate
    config.optim.async_schedule = "constant"  # slow view tables: constant | step | freeze_then_train
    config.optim.async_gamma = 2.0  # gamma of the async schedules
    config.optim.async_epochs = (5, 10)  # milestones: constant = lr / gamma^len, step multiplies at each
    config.optim.freeze_epochs = 5  # freeze_then_train: epochs with frozen view tables
    config.optim.table_regex = TABLE_REGEX  # parameter paths of the view tables

    config.eval = ml_collections.ConfigDict()
    config.eval.metric = "NDCG@10"  # validation metric for model selection and early stopping
    config.eval.patience = 3  # epochs without improvement before stopping
    config.eval.ks = (5, 10, 20)  # cut-offs of HR@k, NDCG@k, MRR@k
    config.eval.exclude_history = False  # True: rank targets only among items not in the case's history (many papers; RecBole and the released code rank all items)
    config.eval.item_chunk = 0  # score items this many at a time (0 = all at once; for huge catalogues)
    config.eval.per_epoch = ("agreement",)  # evaluators after each validation (trainer/evaluators.py): agreement (teacher-student, views only) | test (test_epoch/*, never used for selection)

    config.checkpoint = ml_collections.ConfigDict()
    config.checkpoint.every_steps = 0  # also save the resumable state every this many steps (0 = epoch ends)
    config.checkpoint.max_steps_per_run = 0  # stop this process after this many steps (0 = no limit); rerun resumes

    # Stage-1 settings of configs/features/synthetic_minilm.py, reduced to model.dim by PCA:
    # the sigmoid autoencoder collapses these features (pairwise cosine 0.99 +- 0.002, an
    # uninformative teacher), PCA keeps their spread (0.00 +- 0.18) and 93-98% of the variance.
    config.features = sibling_config(__file__, "features/synthetic_minilm.py")
    config.features.reduce.method = "pca"  # autoencoder (released) | pca | none
    config.features.reduce.dim = config.model.get_ref("dim")  # reduced width = model.dim
    link_features_to_data(config)
    if arg:  # "backbone,variant"
        config.model.backbone, config.model.variant = backbone_and_variant(arg)
    return config

