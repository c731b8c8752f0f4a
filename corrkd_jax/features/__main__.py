"""`python -m corrkd_jax.features --config configs/features/<name>.py [--config.x=...]`.

Reads the dataset's item table, computes (or finds up to date) every view and prints a summary.
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import transformers
from absl import app, flags, logging
from ml_collections import config_flags

from corrkd_jax import cli, validate
from corrkd_jax.features import store
from corrkd_jax.features.items import load_items
from corrkd_jax.features.stage import default_out_dir, ensure_features, validate_config

_CONFIG = config_flags.DEFINE_config_file(
    "config", None, "stage-1 config file (configs/features)", lock_config=True
)


def summarize(out_dir: str, views: Sequence[str]) -> str:
    """One line per view from the manifest of `out_dir`."""
    manifest = store.load_manifest(out_dir) or {"views": {}}
    lines = [f"features in {out_dir}"]
    for name in views:
        e = manifest["views"][name]
        r = e["reduction"]
        lines.append(
            f"  {name}: {e['encoder']} ({e['model_type']}, {e['pooling']}) raw {e['raw_dim']}"
            f" -> {r['method']} {e['reduced_dim']} | {e['num_items']} items,"
            f" {e['num_missing']} without content | {e['items_per_second']:.1f} items/s"
            f" ({e['encode_seconds']:.1f} s) | reconstruction mse {r['mse']:.3g},"
            f" relative {r['relative_error']:.3f} | cos raw {r['cosine_raw']['mean']:.3f}"
            f"+-{r['cosine_raw']['std']:.3f}, reduced {r['cosine_reduced']['mean']:.3f}"
            f"+-{r['cosine_reduced']['std']:.3f}"
        )
    return "\n".join(lines)


def main(argv: Sequence[str]) -> None:
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    config = _CONFIG.value
    transformers.logging.set_verbosity_error()  # hide the Flax deprecation chatter
    start = time.perf_counter()
    with validate.field("views"):
        validate_config(config)
    items = load_items(
        config.data.root, format=config.data.format, min_core=int(config.data.min_core)
    )
    # Every view's inputs are checked before any is encoded.
    validate.check_view_inputs(
        config.views, tuple(config.views), items, prefix="views", root=config.data.root
    )
    out_dir = config.out_dir or default_out_dir(config)
    ensure_features(config, items, out_dir, force=config.force, progress=config.progress)
    print(summarize(out_dir, list(config.views)))
    logging.info("stage 1 done in %.1f s", time.perf_counter() - start)


if __name__ == "__main__":
    flags.mark_flags_as_required(["config"])
    app.run(cli.guarded(main), flags_parser=cli.flags_parser)
