"""RecBole 1.2.1 SASRec defaults on Amazon Beauty: the parity check of our SASRec.

    python -m corrkd_jax.train --config configs/recbole_sasrec.py --workdir runs/beauty/sasrec-recbole

RecBole's `SASRec.yaml` + `overall.yaml` (1.2.1): d 64, 2 layers, 2 heads, inner 256, hidden and
attention dropout 0.5, exact GELU, post-LN with eps 1e-12, N(0, 0.02) weights, CE over the
catalogue, max length 50, every prefix a training case, batch 2048, Adam 1e-3, no weight decay,
validation MRR@10 with patience 10 (RecBole's `stopping_step`), 300 epochs at most. It is the
`sasrec,id_only` run of configs/beauty.py (same split, same full-ranking evaluation) with these
hyper-parameters. Known differences from RecBole: batches are grouped by history length
(`data.length_buckets`; RecBole shuffles freely), RecBole's CE also has a logit for the padding
item, and RecBole draws its own random numbers.
"""

from __future__ import annotations

import ml_collections

from corrkd_jax.trainer.config_files import sibling_config


def get_config() -> ml_collections.ConfigDict:
    config = sibling_config(__file__, "beauty.py", "sasrec,id_only")
    config.num_epochs = 300  # RecBole epochs
    config.batch_size = 2048  # RecBole train_batch_size
    config.log_every_steps = 25  # ~75 steps per epoch
    config.data.train_on = "prefixes"  # RecBole trains on every prefix
    config.model.dim = 64  # hidden_size
    config.model.dropout = 0.5  # hidden_dropout_prob = attn_dropout_prob
    config.model.sasrec.num_blocks = 2  # n_layers
    config.model.sasrec.num_heads = 2  # n_heads
    config.model.sasrec.ffn_ratio = 4  # inner_size 256 = 4 x 64
    config.model.sasrec.activation = "gelu"  # hidden_act gelu (erf)
    config.model.sasrec.norm = "post"  # RecBole's TransformerLayer: LayerNorm(x + sublayer(x))
    config.model.sasrec.layer_norm_eps = 1e-12  # layer_norm_eps
    config.model.sasrec.init_std = 0.02  # initializer_range
    config.model.sasrec.broadcast_attention_dropout = False  # torch dropout: a mask per entry
    config.model.sasrec.positions = "from_start"  # RecBole: position 0 = first item of the window
    config.optim.lr = 1e-3  # learning_rate
    config.optim.lr_decay_epochs = 0  # RecBole: constant learning rate
    config.eval.metric = "MRR@10"  # valid_metric
    config.eval.patience = 10  # stopping_step
    return config
