"""Saved configs of older runs in today's form: the one place that knows the config's history.

Every config the code reads has every field (configs derive from configs/default.py, the one
source of defaults). A `config.json` written by an older version lacks the fields added since,
and may carry fields renamed since; `migrate_config` brings it up to date with the values that
reproduce what that run did, so resuming, `recommend` and the study summaries read old
workdirs with plain `config.x.y` access.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

# Fields added after runs existed: a saved config without them ran with these values.
ADDED_FIELDS: dict[str, Any] = {
    "kd.pair_dtype": "float32",
    "num_negatives": 0,
    "model.session_graph.attention_dropout": 0.0,
    # The backbone options of issue 14, at the behaviour before they existed.
    "data.train_on": "prefixes",
    "model.sasrec.norm": "pre",
    "model.sasrec.layer_norm_eps": 1e-6,
    "model.sasrec.ffn_ratio": 1,
    "model.sasrec.activation": "gelu_tanh",
    "model.sasrec.init_std": 0.0,
    "model.sasrec.broadcast_attention_dropout": True,
    "model.sasrec.positions": "from_end",
    "model.gru4rec.output_proj": False,
    # Per-epoch evaluators by name (`trainer/evaluators.py`); agreement always ran before.
    "eval.per_epoch": ["agreement"],
    "eval.exclude_history": False,  # candidates were always all items before the option
}


# Old name -> today's name, the meaning unchanged. `eval.exclude_seen` was the option's name
# for one session (issue 14 runs `sasrec-recbole/seed1`, `grid/sasrec-sequences-batch512`).
RENAMED_FIELDS: dict[str, str] = {"eval.exclude_seen": "eval.exclude_history"}


def _lookup(tree: Mapping[str, Any], dotted: str) -> tuple[bool, Any]:
    node: Any = tree
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _assign(tree: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = tree
    for part in parents:
        node = node.setdefault(part, {})
    node[leaf] = value


def _pop(tree: dict[str, Any], dotted: str) -> tuple[bool, Any]:
    """Removes a dotted field: (found, its value)."""
    parent, _, leaf = dotted.rpartition(".")
    found, node = _lookup(tree, parent) if parent else (True, tree)
    if not found or not isinstance(node, dict) or leaf not in node:
        return False, None
    return True, node.pop(leaf)


def migrate_config(saved: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a saved config (JSON data) with today's fields.

    - `eval.test_every_epoch: true` (before per-epoch evaluators) becomes `"test"` in
      `eval.per_epoch`;
    - fields of `RENAMED_FIELDS` get their new name (same value);
    - every field of `ADDED_FIELDS` the config lacks gets its recorded value.
    """
    config = copy.deepcopy(dict(saved))
    for old, new in RENAMED_FIELDS.items():
        found, value = _pop(config, old)
        if found and not _lookup(config, new)[0]:
            _assign(config, new, value)
    found, test_every_epoch = _pop(config, "eval.test_every_epoch")
    if found:
        if not _lookup(config, "eval.per_epoch")[0]:
            _assign(
                config,
                "eval.per_epoch",
                ["agreement", "test"] if test_every_epoch else ["agreement"],
            )
    for dotted, value in ADDED_FIELDS.items():
        if not _lookup(config, dotted)[0]:
            _assign(config, dotted, copy.deepcopy(value))
    return config
