"""Top-k next-item recommendations from a trained run's best checkpoint.

    python -m corrkd_jax.recommend --workdir runs/default --history "12 7 301" --k 10
    python -m corrkd_jax.recommend --workdir runs/default --histories-file histories.txt

Histories are item ids as the dataset's files give them (oldest first): the integers of
`sequences.txt` for S3-Rec data, `item_id` for RecBole, ASINs for raw Amazon dumps, whatever
rows or items the loader filtered out; or external ids (e.g. ASINs) with `--external-ids`.
Each printed recommendation shows the item's id (same kind), its external id, the score and
the title when the item table has one. Python: `recommend(workdir, [[12, 7, 301]], k=10)`
(the same ids in and out); `top_k` works on the internal ids 1..N of `ItemTable` rows.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

import jax
import ml_collections
import numpy as np

from corrkd_jax import cli
from corrkd_jax.data import Examples, InteractionData, build_batch
from corrkd_jax.errors import UserError
from corrkd_jax.models import build_model, init_params
from corrkd_jax.trainer.checkpointing import Checkpoints
from corrkd_jax.trainer.migrate import migrate_config
from corrkd_jax.trainer.setup import load_data
from corrkd_jax.trainer.workdir import CONFIG_FILE
from corrkd_jax.validate import check_dataset_record
from corrkd_jax.variants import get_variant

TITLE_FIELD = "title"

Recommendation = tuple[int, float, str]  # (item id, score, title or "")


class RecommendError(UserError):
    """Bad inference input: missing run directory, unknown item ids, empty history."""


@dataclasses.dataclass(frozen=True)
class Predictor:
    """A trained model ready for inference (see `load_predictor`)."""

    config: ml_collections.ConfigDict
    data: InteractionData
    model: Any
    params: Any
    graph: bool  # batches need the session-graph arrays
    apply: Any = None  # jitted (params, batch) -> (logits, aux); built once by load_predictor

    def scores(self, histories: Sequence[Sequence[int]]) -> np.ndarray:
        """Scores of every item for each history.

        Args:
            histories: item-id lists (oldest first), each non-empty, ids in 1..N.

        Returns:
            float32 [len(histories), N]; column j = item j + 1.
        """
        max_len = int(self.config.data.max_len)
        rows = np.zeros((len(histories), max_len), np.int32)
        for i, history in enumerate(histories):
            kept = list(history)[-max_len:]
            rows[i, max_len - len(kept) :] = kept  # right-aligned, as in training
        examples = Examples(
            histories=rows,
            targets=np.zeros(len(rows), np.int32),
            users=np.zeros(len(rows), np.int32),
        )
        length = int(min(b for b in self.config.data.length_buckets if b >= max_len))
        batch = build_batch(examples, np.arange(len(rows)), length, graph=self.graph)
        apply = self.apply or jitted_apply(self.model)
        logits, _ = apply(self.params, batch)
        return np.array(logits)  # a writable host copy


def jitted_apply(model: Any):
    """The inference forward pass, jitted once (a new jit per call would retrace each time)."""
    return jax.jit(lambda params, batch: model.apply({"params": params}, batch, train=False))


def _check_dataset(workdir: str, data: InteractionData) -> None:
    """The dataset must be the one of training, sizes and content (ids index the tables)."""
    check_dataset_record(workdir, data)


def own_id(table: Any, item: int) -> int | str:
    """The id row `item` has in the dataset's files (an int when it is a number)."""
    text = str(table.source_ids[item])
    return int(text) if text.isdigit() else text


def internal_ids(table: Any, history: Sequence[int | str], where: str = "history") -> list[int]:
    """Rows 1..N of the dataset's own item ids; RecommendError names unknown ones."""
    index = {str(source): i for i, source in enumerate(table.source_ids) if i > 0}
    unknown = [item for item in history if str(item) not in index]
    if unknown:
        raise RecommendError(
            f"{where}: unknown item id(s) {unknown} (ids as in the dataset's "
            f"files, e.g. sequences.txt or item_id; --external-ids for ASINs)"
        )
    return [index[str(item)] for item in history]


def load_predictor(workdir: str) -> Predictor:
    """Rebuilds the model of `workdir/config.json` with the best checkpoint's parameters.

    Raises:
        RecommendError: the workdir, its config or its best checkpoint is missing.
    """
    workdir = os.path.abspath(workdir)
    config_path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.isdir(workdir):
        raise RecommendError(f"workdir {workdir} does not exist")
    if not os.path.isfile(config_path):
        raise RecommendError(f"{config_path} is missing: {workdir} is not a training run")
    with open(config_path, encoding="utf-8") as f:
        config = ml_collections.ConfigDict(migrate_config(json.load(f)))
    data = load_data(config)
    _check_dataset(workdir, data)
    variant = get_variant(config.model.variant)
    num_items, dim = data.items.num_items, int(config.model.dim)
    # The view tables come from the checkpoint: placeholders of the right shape suffice, so
    # inference never needs the stage-1 features.
    views = tuple(config.model.views) if variant.use_views else ()
    model = build_model(
        config, num_items, {view: np.zeros((num_items + 1, dim), np.float32) for view in views}
    )
    checkpoints = Checkpoints(workdir, metric=config.eval.metric, read_only=True)
    try:
        if checkpoints.best_step() is None:
            raise RecommendError(f"{workdir} has no best checkpoint yet (no epoch finished)")
        probe = build_batch(
            Examples(
                histories=np.ones((1, 2), np.int32),
                targets=np.ones(1, np.int32),
                users=np.zeros(1, np.int32),
            ),
            np.zeros(1, np.int64),
            2,
            graph=model.backbone.node_key == "nodes",
        )
        device = jax.sharding.SingleDeviceSharding(jax.devices()[0])
        template = jax.tree.map(
            lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=device),
            jax.eval_shape(lambda: init_params(model, probe, 0)),
        )
        params, _ = checkpoints.restore_best(template)
    finally:
        checkpoints.close()
    return Predictor(
        config=config,
        data=data,
        model=model,
        params=params,
        graph=model.backbone.node_key == "nodes",
        apply=jitted_apply(model),
    )


def parse_history(
    text: str, data: InteractionData, *, external: bool = False, where: str = "history"
) -> list[int]:
    """Internal item ids (rows 1..N) of a whitespace-separated history line.

    Args:
        text: e.g. "12 7 301" (the dataset's own item ids, e.g. of sequences.txt) or
            "B004756YJA B004ZT0SSG" with `external`.
        data: the run's dataset (for the id range and the external-id table).
        external: the tokens are external ids (e.g. ASINs) instead of item ids.
        where: names the input in error messages (e.g. "histories.txt line 3").

    Raises:
        RecommendError: an empty history or an unknown id (named, with `where`).
    """
    tokens = text.split()
    if not tokens:
        raise RecommendError(f"{where}: empty history")
    table = data.items
    if external:
        index = {str(ext): i for i, ext in enumerate(table.external_ids) if i > 0}
        unknown = [t for t in tokens if t not in index]
        if unknown:
            raise RecommendError(f"{where}: unknown external item id(s) {unknown}")
        return [index[t] for t in tokens]
    index = {str(source): i for i, source in enumerate(table.source_ids) if i > 0}
    for token in tokens:
        if token not in index:
            raise RecommendError(
                f"{where}: unknown item id {token!r} (ids as in the "
                f"dataset's files, e.g. sequences.txt or item_id; use "
                f"--external-ids for ids like ASINs)"
            )
    return [index[token] for token in tokens]


def top_k(
    predictor: Predictor,
    histories: Sequence[Sequence[int]],
    k: int = 10,
    *,
    exclude_history: bool = False,
) -> list[list[Recommendation]]:
    """Top-k (item id, score, title) per history, best first, on INTERNAL ids 1..N (rows of
    the run's item table; `recommend` takes and returns the dataset's own ids)."""
    num_items = predictor.data.items.num_items
    if not 1 <= k <= num_items:
        raise RecommendError(f"k={k} must be in 1..{num_items}")
    for i, history in enumerate(histories):
        if len(history) == 0:
            raise RecommendError(f"history {i} is empty")
        bad = [item for item in history if not 1 <= int(item) <= num_items]
        if bad:
            raise RecommendError(f"history {i}: unknown item id(s) {bad} (valid: 1..{num_items})")
    scores = predictor.scores(histories)
    if exclude_history:
        for i, history in enumerate(histories):
            scores[i, np.asarray(history) - 1] = -np.inf
    # Stable sort: equal scores keep the lower item id first (deterministic output).
    columns = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    titles = _title_column(predictor)
    out = []
    for row_scores, row_columns in zip(scores, columns):
        out.append(
            [
                (int(c) + 1, float(row_scores[c]), str(titles[c + 1]) if titles is not None else "")
                for c in row_columns
            ]
        )
    return out


def _title_column(predictor: Predictor) -> np.ndarray | None:
    """The `title` field, else the first text field the run's views read (e.g. RecBole's
    `movie_title`), else None."""
    fields = predictor.data.items.fields
    if TITLE_FIELD in fields:
        return fields[TITLE_FIELD]
    config = predictor.config
    for view in config.model.views if "features" in config else ():
        for name in config.features.views[view].fields if view in config.features.views else ():
            if name in fields:
                return fields[name]
    return None


def recommend(
    workdir: str, histories: Sequence[Sequence[int]], k: int = 10, *, exclude_history: bool = False
) -> list[list[Recommendation]]:
    """Top-k recommendations of the best checkpoint of `workdir`.

    Args:
        workdir: a run directory of `corrkd_jax.train`.
        histories: item-id lists (oldest first) in the dataset's own ids (those of its
            files: S3-Rec integers, RecBole item_id, ASINs); longer ones keep their last
            max_len.
        k: recommendations per history.
        exclude_history: never recommend an item already in the history.

    Returns:
        Per history, k tuples (item id, score, title) by decreasing score, ids of the same
        kind as given (int when numeric); title is "" when the item table has no `title`.

    Raises:
        RecommendError: missing workdir/checkpoint, unknown item ids, bad k.
    """
    predictor = load_predictor(workdir)
    table = predictor.data.items
    rows = [
        internal_ids(table, history, f"history {i}") if len(history) else []
        for i, history in enumerate(histories)
    ]
    out = top_k(predictor, rows, k, exclude_history=exclude_history)
    return [[(own_id(table, item), score, title) for item, score, title in row] for row in out]


def _format(
    history: Sequence[int], recommendations: Sequence[Recommendation], data: InteractionData
) -> str:
    table = data.items
    lines = [f"history: {' '.join(str(table.source_ids[i]) for i in history)}"]
    for rank, (item, score, title) in enumerate(recommendations, start=1):
        external = table.external_ids[item]
        line = f"  {rank:>3}. item {table.source_ids[item]} ({external})  score {score:.4f}"
        lines.append(f"{line}  {title}" if title else line)
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the exit status (0, or 2 after printing an input error)."""
    parser = argparse.ArgumentParser(
        prog="python -m corrkd_jax.recommend", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--workdir", required=True, help="run directory of corrkd_jax.train")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--history", help='item ids, oldest first, e.g. "12 7 301"')
    source.add_argument("--histories-file", help="a file with one history per line")
    parser.add_argument("--k", type=int, default=10, help="recommendations per history")
    parser.add_argument(
        "--external-ids",
        action="store_true",
        help="histories use external ids (e.g. ASINs) instead of item ids",
    )
    parser.add_argument(
        "--exclude-history",
        action="store_true",
        help="do not recommend items already in the history",
    )
    args = parser.parse_args(argv)
    # orbax warns about read-only checkpoint managers on every load: not news to the user.
    absl_logger = logging.getLogger("absl")
    level = absl_logger.level
    absl_logger.setLevel(logging.ERROR)
    try:
        predictor = load_predictor(args.workdir)
        if args.history is not None:
            lines = [(args.history, "--history")]
        else:
            if not os.path.isfile(args.histories_file):
                raise RecommendError(f"histories file {args.histories_file} does not exist")
            with open(args.histories_file, encoding="utf-8") as f:
                lines = [
                    (line, f"{args.histories_file} line {n}")
                    for n, line in enumerate(f, start=1)
                    if line.strip()
                ]
        histories = [
            parse_history(text, predictor.data, external=args.external_ids, where=where)
            for text, where in lines
        ]
        results = top_k(predictor, histories, args.k, exclude_history=args.exclude_history)
    except cli.USER_ERRORS as err:
        return cli.report(err)
    finally:
        absl_logger.setLevel(level)
    for history, recommendations in zip(histories, results):
        print(_format(history, recommendations, predictor.data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
