"""Training logs: one JSON object per line in `metrics.jsonl`, plus TensorBoard scalars.

A small replacement for clu's metric writers (which import TensorFlow): every record has an
integer `step` and a `kind` ("train" or "epoch"), every other numeric value is also written as a
TensorBoard scalar under `<kind>/<key>` (event files readable by TensorBoard or tbparse).
On resume, `MetricWriter(workdir, resume_step=s)` drops the records after step `s` first and
rewrites the TensorBoard events from the records kept, so a restarted run logs no step twice.
"""

from __future__ import annotations

import json
import math
import os
import shutil
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import tensorboardX

from corrkd_jax.io import write_text

METRICS_FILE = "metrics.jsonl"


def _plain(value: Any) -> Any:
    """JSON-friendly scalars: numpy/JAX scalars -> Python numbers, NaN/Inf -> strings."""
    if isinstance(value, (np.ndarray, np.generic)) or hasattr(value, "__array__"):
        value = np.asarray(value).item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def read_records(path: str) -> Iterator[dict[str, Any]]:
    """Yields the JSON records of a metrics.jsonl file (a torn last line is skipped)."""
    if not os.path.exists(path):
        return
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue


class MetricWriter:
    """Appends records to `<workdir>/metrics.jsonl` and TensorBoard events under `<workdir>/tb`."""

    def __init__(self, workdir: str, *, resume_step: int | None = None, active: bool = True):
        """Args: resume_step: keep only records up to this step (None: start afresh);
        active: False on the non-primary processes of a multi-process run (nothing written).
        """
        self.path = os.path.join(workdir, METRICS_FILE)
        self.active = active
        self._file = None
        self._tb = None
        if not active:
            return
        os.makedirs(workdir, exist_ok=True)
        if resume_step is None:
            kept = self._truncate(lambda record: False)
        else:
            kept = self._truncate(lambda record: int(record.get("step", 0)) <= resume_step)
        self._file = open(self.path, "a", encoding="utf-8")
        # TensorBoard event files cannot be truncated: rewrite them from the kept records,
        # so a resumed run shows every step once (earlier processes' files are removed).
        tb_dir = os.path.join(workdir, "tb")
        shutil.rmtree(tb_dir, ignore_errors=True)
        self._tb = tensorboardX.SummaryWriter(tb_dir)
        for record in kept:
            self._scalars(record)

    def _truncate(self, keep) -> list[dict[str, Any]]:
        """Rewrites metrics.jsonl (atomically) keeping the records `keep` accepts; returns
        them."""
        kept = [record for record in read_records(self.path) if keep(record)]
        write_text(self.path, "".join(json.dumps(record) + "\n" for record in kept))
        return kept

    def _scalars(self, record: Mapping[str, Any]) -> None:
        """The record's numeric values as TensorBoard scalars `<kind>/<key>`."""
        kind, step = record["kind"], int(record["step"])
        for key, value in record.items():
            if key not in ("step", "kind") and isinstance(value, (int, float)):
                self._tb.add_scalar(f"{kind}/{key}", value, global_step=step)

    def write(self, step: int, kind: str, values: Mapping[str, Any]) -> dict[str, Any]:
        """Logs one record `{"step", "kind", **values}` (values: scalars) and returns it."""
        record = {"step": int(step), "kind": kind}
        record.update({key: _plain(value) for key, value in values.items()})
        if not self.active:
            return record
        self._file.write(json.dumps(record) + "\n")
        self._file.flush()
        self._scalars(record)
        return record

    def records(self) -> list[dict[str, Any]]:
        """All records written so far (this run and the kept ones of earlier runs)."""
        if self._file is not None:
            self._file.flush()
        return list(read_records(self.path))

    def close(self) -> None:
        """Flushes and closes both outputs."""
        if self._file is not None:
            self._file.close()
            self._tb.close()
            self._file = self._tb = None

    def __enter__(self) -> MetricWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
