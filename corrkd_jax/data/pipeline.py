"""Grain input pipelines: length-bucketed, padded, shuffled, sharded, checkpointable batches.

Batching (`plan_batches`): the cases are (shuffled, for training, with a generator seeded by
(seed, epoch)), stably sorted by length bucket, cut into global batches of `batch_size` rows,
and the full batches are put in random order; the one short batch (if any) comes last and is
filled with empty rows (`weights` 0, `targets` 0). A batch's padded length `Lb` is the
smallest bucket >= its longest history, so a jitted step compiles once per bucket and short
histories do not pay for `max_len`.

Sharding: every process sees the same global plan and takes its contiguous slice of
`batch_size / shard_count` rows of each global batch, so all processes run the same number
of steps with the same `Lb` per step (as SPMD requires).

Batches are dicts of numpy arrays (docs/architecture.md): `items` int32 [B, Lb], `targets`
int32 [B], `weights` float32 [B] (whole-sequence training cases: `targets` int32 [B, Lb] and
`weights` float32 [B, Lb], one next item per position, weight 0 where there is none), and with `graph=True` also `nodes` int32 [B, Lb],
`alias` int32 [B, Lb], `adjacency` int32 [B, Lb, Lb] (see `graph.session_graph`). With
`pairs=True` (training of the code-distillation variants) the train batches also list the real
node pairs for the pair terms: `pairs` int32 [G, C, 3], `pair_weights` float32 [G, C] (see
`corrkd_jax.data.pairs`), C from a short ladder of capacities; with `pack_targets=True`
(whole-sequence training) they list their real targets the same way: `target_index` int32
[G, C], `target_weights` float32 [G, C] (`pack_targets`).

    loader = TrainLoader(split.train, batch_size=256, length_buckets=(10, 20, 30, 50), seed=0,
                         graph=True)
    for epoch in range(num_epochs):
        it = loader.iterator(epoch)          # a grain DatasetIterator
        for batch in it: ...                 # loader.num_batches batches
        state = it.get_state()               # resume: loader.iterator(epoch).set_state(state)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

import grain
import numpy as np

from corrkd_jax.data.graph import session_graph
from corrkd_jax.data.pairs import node_counts, pack_pairs, pair_capacity, pair_counts
from corrkd_jax.data.structures import Examples

# Capacity ladder of the packed targets: fine steps, since the output layer scores every
# slot ([C, N] logits) and a few extra compiled shapes are cheap next to that.
TARGET_GROWTH = 1.25


@dataclasses.dataclass(frozen=True)
class BatchPlan:
    """Which cases make up each global batch, and its padded length."""

    rows: np.ndarray  # int64 [num_batches, batch_size]: case index, -1 = empty (padding) row
    lengths: np.ndarray  # int32 [num_batches]: padded length Lb of each batch


def check_buckets(length_buckets: Sequence[int] | None, max_len: int) -> np.ndarray:
    """Validated buckets as int32 [K] ascending; None -> (max_len,). The largest bucket must
    cover max_len (the width of the histories)."""
    if length_buckets is None or len(length_buckets) == 0:
        return np.asarray([max_len], dtype=np.int32)
    buckets = np.asarray(length_buckets, dtype=np.int32)
    if np.any(buckets < 1) or np.any(np.diff(buckets) <= 0):
        raise ValueError(f"length_buckets must be positive and increasing, got {length_buckets}")
    if buckets[-1] < max_len:
        raise ValueError(
            f"largest length bucket {buckets[-1]} is below max_len {max_len} "
            "(histories would be cut); add a bucket >= max_len"
        )
    return buckets


def plan_batches(
    lengths: np.ndarray,
    batch_size: int,
    buckets: np.ndarray,
    rng: np.random.Generator | None = None,
) -> BatchPlan:
    """Groups cases into bucketed global batches; rng None = no shuffling (evaluation).

    lengths: int [n] history lengths (<= buckets[-1]); buckets: int32 [K] ascending.
    """
    n = len(lengths)
    bucket = np.searchsorted(buckets, lengths, side="left")  # smallest bucket >= length
    order = rng.permutation(n) if rng is not None else np.arange(n)
    order = order[np.argsort(bucket[order], kind="stable")]
    num_batches = -(-n // batch_size)
    rows = np.full(num_batches * batch_size, -1, dtype=np.int64)
    rows[:n] = order
    rows = rows.reshape(num_batches, batch_size)
    batch_bucket = np.where(rows >= 0, bucket[np.maximum(rows, 0)], 0).max(1, initial=0)
    if rng is not None:
        # Shuffle the full batches; the short one (from the longest bucket) stays last.
        num_full = n // batch_size
        perm = np.concatenate([rng.permutation(num_full), np.arange(num_full, num_batches)])
        rows, batch_bucket = rows[perm], batch_bucket[perm]
    return BatchPlan(rows=rows, lengths=buckets[batch_bucket].astype(np.int32))


def build_batch(
    examples: Examples, rows: np.ndarray, length: int, graph: bool = False
) -> dict[str, np.ndarray]:
    """The batch of cases `rows` (int [B], -1 = empty row) padded to `length` (Lb)."""
    real = rows >= 0
    safe = np.maximum(rows, 0)

    def right_aligned(table: np.ndarray) -> np.ndarray:
        picked = table[safe] * real[:, None]
        width = picked.shape[1]
        if length <= width:
            return np.ascontiguousarray(picked[:, width - length :], dtype=np.int32)
        return np.pad(picked, ((0, 0), (length - width, 0))).astype(np.int32)

    if examples.targets.ndim == 2:  # whole sequences: a target per position
        targets = right_aligned(examples.targets)
        weights = (targets > 0).astype(np.float32)
    else:
        targets = (examples.targets[safe] * real).astype(np.int32)
        weights = real.astype(np.float32)
    batch = {"items": right_aligned(examples.histories), "targets": targets, "weights": weights}
    if graph:
        batch.update(session_graph(batch["items"]))
    return batch


def pack_targets(targets: np.ndarray, groups: int, capacity: int) -> dict[str, np.ndarray]:
    """Lists the real next-item targets of a whole-sequence batch, grouped like the pairs
    (`corrkd_jax.data.pairs`), so the output layer scores only real positions.

    Args:
        targets: int [B, Lb] next item per position (0 = none); groups: G, a divisor of B;
        capacity: C, at least the largest group's target count.

    Returns: {"target_index": int32 [G, C] flat index into the group's [B / G * Lb]
        positions (padding 0), "target_weights": float32 [G, C] (1 real, 0 padding)}.
    """
    batch, length = targets.shape
    if groups < 1 or batch % groups:
        raise ValueError(f"target groups {groups} must divide the batch size {batch}")
    per_group = targets.reshape(groups, -1)  # [G, B / G * Lb], row-major as in the step
    counts = np.count_nonzero(per_group, axis=1)
    if counts.max(initial=0) > capacity:
        raise ValueError(f"a group has {counts.max()} targets, above the capacity {capacity}")
    group, flat = np.nonzero(per_group)
    slot = np.arange(len(group)) - np.repeat(np.cumsum(counts) - counts, counts)
    index = np.zeros((groups, capacity), dtype=np.int32)
    index[group, slot] = flat
    weights = np.zeros((groups, capacity), dtype=np.float32)
    weights[group, slot] = 1.0
    return {"target_index": index, "target_weights": weights}


@dataclasses.dataclass(frozen=True)
class Packing:
    """How train batches list their real node pairs (`corrkd_jax.data.pairs`) or their
    real whole-sequence targets (`pack_targets`)."""

    kind: str  # "pairs" | "targets"
    counts: np.ndarray  # int64 [n]: pairs i < j of real nodes, or targets, of each case
    groups: int  # G, groups per global batch (whole groups per device)
    growth: float  # ratio of the capacity ladder

    def capacities(self, plan: BatchPlan) -> np.ndarray:
        """int64 [num_batches]: capacity C of each global batch (largest group's count on
        the ladder), so every process and device steps with the same shapes."""
        rows = plan.rows
        per_row = np.where(rows >= 0, self.counts[np.maximum(rows, 0)], 0)
        largest = per_row.reshape(len(rows), self.groups, -1).sum(-1).max(-1)
        rows_per_group = rows.shape[1] // self.groups
        dense = pair_counts if self.kind == "pairs" else (lambda length: length)
        return np.asarray(
            [
                pair_capacity(int(count), rows_per_group * int(dense(length)), growth=self.growth)
                for count, length in zip(largest, plan.lengths)
            ],
            dtype=np.int64,
        )

    def pack(
        self, batch: dict[str, np.ndarray], groups: int, capacity: int, graph: bool
    ) -> dict[str, np.ndarray]:
        """The packed arrays of one (process-local) batch with `groups` groups."""
        if self.kind == "targets":
            return pack_targets(batch["targets"], groups, capacity)
        return pack_pairs(batch["nodes"] if graph else batch["items"], groups, capacity)


class _BatchSource(Sequence):
    """Random-access source of one shard's batches of a fixed plan (grain data source)."""

    def __init__(
        self,
        examples: Examples,
        plan: BatchPlan,
        shard: slice,
        graph: bool,
        packings: Sequence[Packing] = (),
        shard_count: int = 1,
    ):
        self._examples = examples
        self._plan = plan
        self._shard = shard
        self._graph = graph
        self._packings = [(p, p.capacities(plan), p.groups // shard_count) for p in packings]

    def __len__(self) -> int:
        return len(self._plan.lengths)

    def __getitem__(self, index: int) -> dict[str, np.ndarray]:
        rows = self._plan.rows[index, self._shard]
        batch = build_batch(self._examples, rows, int(self._plan.lengths[index]), self._graph)
        packed = {}
        for packing, capacities, local_groups in self._packings:
            packed.update(packing.pack(batch, local_groups, int(capacities[index]), self._graph))
        batch.update(packed)
        return batch


class _Loader:
    """Shared set-up of the train and eval loaders."""

    def __init__(
        self,
        examples: Examples,
        batch_size: int,
        length_buckets: Sequence[int] | None,
        *,
        graph: bool = False,
        shard_index: int | None = None,
        shard_count: int | None = None,
        num_threads: int = 0,
        prefetch_buffer_size: int = 0,
        pairs: bool = False,
        pair_groups: int | None = None,
        pair_growth: float = 2.0,
        pack_targets: bool = False,
    ):
        if shard_index is None or shard_count is None:
            import jax  # only when sharding is not given explicitly

            shard_index = jax.process_index() if shard_index is None else shard_index
            shard_count = jax.process_count() if shard_count is None else shard_count
        if batch_size < 1 or batch_size % shard_count:
            raise ValueError(
                f"batch_size {batch_size} must be a positive multiple of shard_count {shard_count}"
            )
        if not 0 <= shard_index < shard_count:
            raise ValueError(f"shard_index {shard_index} not in [0, {shard_count})")
        self.examples = examples
        self.batch_size = batch_size
        self.local_batch_size = batch_size // shard_count
        self.buckets = check_buckets(length_buckets, examples.histories.shape[1])
        self.graph = graph
        start = shard_index * self.local_batch_size
        self._shard = slice(start, start + self.local_batch_size)
        self._read_options = grain.ReadOptions(
            num_threads=num_threads, prefetch_buffer_size=prefetch_buffer_size
        )
        self._lengths = examples.lengths
        self._shard_count = shard_count
        self.packings: list[Packing] = []
        if pack_targets and examples.targets.ndim != 2:
            raise ValueError("pack_targets needs whole-sequence cases (targets per position)")
        if pairs or pack_targets:
            if pair_groups is None:
                import jax

                pair_groups = jax.device_count()
            if pair_groups < 1 or batch_size % pair_groups or pair_groups % shard_count:
                raise ValueError(
                    f"pair_groups {pair_groups} must divide batch_size {batch_size} and be a "
                    f"multiple of shard_count {shard_count}"
                )
        if pairs:
            counts = pair_counts(node_counts(examples.histories, distinct=graph))
            self.packings.append(Packing("pairs", counts, pair_groups, pair_growth))
        if pack_targets:
            counts = np.count_nonzero(examples.targets, axis=1).astype(np.int64)
            self.packings.append(Packing("targets", counts, pair_groups, TARGET_GROWTH))

    @property
    def packs_pairs(self) -> bool:
        """True when train batches list their real node pairs."""
        return any(p.kind == "pairs" for p in self.packings)

    @property
    def num_batches(self) -> int:
        """Batches per pass (the same for every epoch and every shard)."""
        return -(-len(self.examples) // self.batch_size)

    def _dataset(self, plan: BatchPlan) -> grain.MapDataset:
        return grain.MapDataset.source(
            _BatchSource(
                self.examples, plan, self._shard, self.graph, self.packings, self._shard_count
            )
        )

    def _iterator(self, plan: BatchPlan) -> grain.DatasetIterator:
        return iter(self._dataset(plan).to_iter_dataset(self._read_options))


class TrainLoader(_Loader):
    """Training batches: reshuffled every epoch (seeded by (seed, epoch)), each case exactly
    once per epoch over all shards.

    Args:
        examples: the training cases.
        batch_size: global batch size B (a multiple of shard_count); this process gets
            B / shard_count rows per batch.
        length_buckets: padded lengths, ascending, the largest >= max_len; None = max_len only.
        seed: shuffling seed.
        graph: add the session-graph arrays (`nodes`, `alias`, `adjacency`).
        shard_index, shard_count: this process's shard; None = jax.process_index() /
            jax.process_count().
        num_threads, prefetch_buffer_size: grain.ReadOptions; e.g. 1 and 4 build batches in a
            background thread while the step runs (0 = in the calling thread).
        pairs: add the packed node pairs `pairs` / `pair_weights` (`corrkd_jax.data.pairs`)
            over `nodes` (graph) or the positions of `items`.
        pair_groups: G, pair groups per global batch (divides batch_size, a multiple of
            shard_count); None = jax.device_count().
        pair_growth: ratio of the pair-capacity ladder (> 1; larger = fewer compiled shapes,
            more padding).
        pack_targets: (whole-sequence cases) add `target_index` / `target_weights`
            (`pack_targets`), so the step scores only the real positions of the batch.
    """

    def __init__(
        self,
        examples: Examples,
        batch_size: int,
        length_buckets: Sequence[int] | None = None,
        seed: int = 0,
        **options: Any,
    ):
        super().__init__(examples, batch_size, length_buckets, **options)
        self.seed = seed

    def plan(self, epoch: int) -> BatchPlan:
        """The global batch plan of `epoch` (deterministic in (seed, epoch))."""
        rng = np.random.default_rng([self.seed, epoch])
        return plan_batches(self._lengths, self.batch_size, self.buckets, rng)

    def dataset(self, epoch: int) -> grain.MapDataset:
        """This shard's batches of `epoch` as a grain.MapDataset (random access)."""
        return self._dataset(self.plan(epoch))

    def iterator(self, epoch: int) -> grain.DatasetIterator:
        """A checkpointable iterator over this shard's batches of `epoch`:
        `get_state()` / `set_state(state)` resume mid-epoch bit-identically."""
        return self._iterator(self.plan(epoch))


class EvalLoader(_Loader):
    """Evaluation batches in a fixed order (grouped by length bucket), the last one padded.

    `plan().rows` maps each batch row back to its case index (-1 = padding). Arguments as
    for `TrainLoader`, without `seed`.
    """

    def __init__(
        self,
        examples: Examples,
        batch_size: int,
        length_buckets: Sequence[int] | None = None,
        **options: Any,
    ):
        super().__init__(examples, batch_size, length_buckets, **options)
        self._plan = plan_batches(self._lengths, self.batch_size, self.buckets)

    def plan(self) -> BatchPlan:
        """The fixed global batch plan."""
        return self._plan

    def dataset(self) -> grain.MapDataset:
        """This shard's batches as a grain.MapDataset."""
        return self._dataset(self._plan)

    def iterator(self) -> grain.DatasetIterator:
        """A checkpointable iterator over this shard's batches."""
        return self._iterator(self._plan)

    def __iter__(self):
        return self.iterator()
