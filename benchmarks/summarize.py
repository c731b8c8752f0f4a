"""Every generated table of RESULTS.md, in one command.

    python -m benchmarks.summarize

Runs, with their defaults, the three summaries whose `<!-- summarize:NAME -->` blocks
RESULTS.md holds: the capped Beauty study (`benchmarks.reproduce.summarize`), the full study
(`benchmarks.study.summarize`) and the strong baselines (`benchmarks.backbones.summarize`),
and the patience replay linked from it (`benchmarks.study.patience`).
Each also writes its own tables.md / summary.json / plots, as when run alone.
"""

from __future__ import annotations

import sys

from benchmarks.backbones import summarize as backbones
from benchmarks.reproduce import summarize as reproduce
from benchmarks.study import patience
from benchmarks.study import summarize as study


def main() -> None:
    sys.argv = sys.argv[:1]  # each summary parses its own (default) arguments
    for summary in (reproduce, study, backbones, patience):
        summary.main()


if __name__ == "__main__":
    main()
