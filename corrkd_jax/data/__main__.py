"""`python -m corrkd_jax.data --describe DIR [--protocol ...]`: dataset and split counts as JSON.

DIR is a dataset folder of any supported format or `builtin:synthetic`. Prints one JSON object
`{"users", "items", "interactions", "protocol", "train", "valid", "test"}` (train/valid/test =
numbers of cases).
"""

from __future__ import annotations

import argparse
import json
import sys

from corrkd_jax.data.dataset import BUILTIN_SYNTHETIC, load_dataset
from corrkd_jax.data.readers import FORMATS
from corrkd_jax.data.splits import PROTOCOLS, make_split
from corrkd_jax.errors import UserError


def describe(
    root: str,
    *,
    protocol: str = "leave_one_out",
    format: str = "auto",
    min_core: int = 0,
    max_len: int = 50,
    cache_dir: str | None = None,
) -> dict[str, int | str]:
    """The counts printed by `--describe`."""
    data = load_dataset(root, format=format, min_core=min_core, cache_dir=cache_dir)
    split = make_split(data, protocol, max_len=max_len)
    return {
        "users": data.num_users,
        "items": data.num_items,
        "interactions": data.num_interactions,
        "protocol": protocol,
        "train": len(split.train),
        "valid": len(split.valid),
        "test": len(split.test),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m corrkd_jax.data",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--describe", metavar="DIR", required=True, help="dataset folder or builtin:synthetic"
    )
    parser.add_argument("--protocol", choices=PROTOCOLS, default="leave_one_out")
    parser.add_argument("--format", choices=("auto", "synthetic", *FORMATS), default="auto")
    parser.add_argument("--min-core", type=int, default=0, help="k-core threshold (0 = off)")
    parser.add_argument("--max-len", type=int, default=50, help="history length cap")
    parser.add_argument(
        "--cache-dir",
        default=None,
        help="processed-data cache (default $XDG_CACHE_HOME/corrkd_jax)",
    )
    args = parser.parse_args(argv)
    from corrkd_jax import cli  # the one-line error format of every CLI

    try:
        if args.min_core < 0 or args.max_len < 1:
            raise UserError(
                f"--min-core={args.min_core} must be >= 0 and --max-len={args.max_len} >= 1"
            )
        if args.describe.startswith("builtin:") and args.describe != BUILTIN_SYNTHETIC:
            raise UserError(
                f"unknown built-in dataset {args.describe!r}; expected {BUILTIN_SYNTHETIC!r}"
            )
        counts = describe(
            args.describe,
            protocol=args.protocol,
            format=args.format,
            min_core=args.min_core,
            max_len=args.max_len,
            cache_dir=args.cache_dir,
        )
    except cli.USER_ERRORS as e:
        return cli.report(e)
    print(json.dumps(counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
