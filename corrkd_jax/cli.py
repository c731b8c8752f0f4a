"""What the four command-line tools share: user errors as one line on stderr, exit status 2.

    python -m corrkd_jax.train | corrkd_jax.features | corrkd_jax.data | corrkd_jax.recommend

Bad input (a config field, a data file and line, a run directory: `corrkd_jax.errors`,
`DataFormatError`) is printed as `error: <what and where>` on one line and the process exits
with status 2; anything else is a bug and keeps its traceback. For the absl-based tools
(train, features) `flags_parser` also turns flag problems into one line: an unknown config
field lists the closest valid names, a config file that fails to load says why.
"""

from __future__ import annotations

import difflib
import functools
import sys
from collections.abc import Callable, Sequence
from typing import Any

from corrkd_jax.data.structures import DataFormatError
from corrkd_jax.errors import UserError

EXIT_USER_ERROR = 2
USER_ERRORS: tuple[type[BaseException], ...] = (UserError, DataFormatError)


def one_line(text: Any) -> str:
    """`text` with every run of whitespace (newlines included) collapsed to one space."""
    return " ".join(str(text).split())


def report(err: BaseException | str) -> int:
    """Prints `error: <err>` as one line on stderr; returns the exit status (2)."""
    print(f"error: {one_line(err)}", file=sys.stderr, flush=True)
    return EXIT_USER_ERROR


def guarded(main: Callable[..., Any]) -> Callable[..., Any]:
    """Wraps a CLI `main`: user errors become one line on stderr and exit status 2."""

    @functools.wraps(main)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return main(*args, **kwargs)
        except USER_ERRORS as err:
            sys.exit(report(err))

    return wrapper


# ----------------------------------------------------------------------------- absl flags


def _config_spec(argv: Sequence[str]) -> str | None:
    """The value of --config (either `--config=x` or `--config x`)."""
    for i, arg in enumerate(argv):
        if arg.startswith("--config="):
            return arg.split("=", 1)[1]
        if arg == "--config" and i + 1 < len(argv):
            return argv[i + 1]
    return None


def field_names(config: Any, prefix: str = "") -> list[str]:
    """Every dotted field name of a ConfigDict, sections included."""
    import ml_collections

    names = []
    for key in config.keys():
        value = config[key]
        names.append(f"{prefix}{key}")
        if isinstance(value, ml_collections.ConfigDict):
            names.extend(field_names(value, f"{prefix}{key}."))
    return names


def unknown_field(config: Any, dotted: str) -> str | None:
    """A one-line message when `dotted` is not a field of `config` (None when it is)."""
    import ml_collections

    node = config
    for part in dotted.split("."):
        if not isinstance(node, ml_collections.ConfigDict) or part not in node:
            names = field_names(config)
            close = difflib.get_close_matches(dotted, names, n=3, cutoff=0.6)
            if not close:  # a typo in the last part: same section, closest names
                section = dotted.rpartition(".")[0]
                close = difflib.get_close_matches(
                    dotted, [n for n in names if n.rpartition(".")[0] == section], n=3, cutoff=0.0
                )
            hint = f"; closest valid names: {', '.join(close)}" if close else ""
            return f"--config.{dotted}: no such config field{hint}"
        node = node[part]
    return None


def diagnose(argv: Sequence[str], err: BaseException) -> str:
    """One line explaining why parsing `argv` failed with `err`."""
    from corrkd_jax.trainer.config_files import load_config_file

    spec = _config_spec(argv)
    if spec:
        path, _, arg = spec.partition(":")
        try:
            config = load_config_file(path, arg or None)
        except Exception as load_err:  # noqa: BLE001 (the config file's own error, reported)
            return f"--config={spec}: {one_line(load_err)}"
        for arg_ in argv:
            if arg_.startswith("--config."):
                message = unknown_field(config, arg_[len("--config.") :].split("=", 1)[0])
                if message:
                    return message
    text = one_line(err).strip("'\"")
    return text if text.startswith("flag ") or "--" in text else f"command line: {text}"


def flags_parser(argv: list[str]) -> list[str]:
    """absl `app.run(..., flags_parser=cli.flags_parser)`: parses the flags, or prints one
    line naming the bad flag or config field and exits with status 2."""
    from absl import flags

    try:
        return flags.FLAGS(argv)
    except SystemExit:
        raise
    except Exception as err:  # noqa: BLE001 (flag parsing wraps config errors in any type)
        sys.exit(report(diagnose(argv[1:], err)))
