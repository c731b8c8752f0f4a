"""The pieces of the training loop in `corrkd_jax.train`, one concern per module.

- `steps`: `TrainState`, the jitted-once `train_step` / `eval_step` and the total loss.
- `sharding`: device mesh, batch placement, multi-process start.
- `setup`: config -> dataset, split, features, teacher, model (shared with `recommend`).
- `evaluation`: full-ranking evaluation of a split (sums on device, means on host).
- `checkpointing`: orbax managers for the latest (resume) and the best checkpoint.
- `metric_writer`: metrics.jsonl + TensorBoard; `plots`: curves.png.
"""
