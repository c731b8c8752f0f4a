"""`curves.png`: training losses and the validation metric per epoch (matplotlib, Agg canvas)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from corrkd_jax.io import save_figure


def plot_curves(epochs: Sequence[dict[str, Any]], path: str, *, metric: str) -> None:
    """Writes a two-panel PNG (atomically).

    Args:
        epochs: one dict per epoch with `epoch`, loss means `loss/<term>` and validation
            metrics `valid/<name>` (the "epoch" records of metrics.jsonl).
        path: output file, e.g. `<workdir>/curves.png`.
        metric: the validation metric to plot, e.g. "NDCG@10".
    """
    # A bare Figure + Agg canvas: no pyplot global state, no display needed.
    figure = Figure(figsize=(10, 4), dpi=100)
    FigureCanvasAgg(figure)
    loss_ax, metric_ax = figure.subplots(1, 2)
    xs = [int(record["epoch"]) for record in epochs]
    terms = sorted({key for record in epochs for key in record if key.startswith("loss/")})
    for term in terms:
        ys = [record.get(term, float("nan")) for record in epochs]
        loss_ax.plot(xs, ys, marker="o", label=term.removeprefix("loss/"))
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("mean training loss")
    loss_ax.set_yscale("log")
    if terms:
        loss_ax.legend(fontsize="small")
    key = f"valid/{metric}"
    metric_ax.plot(xs, [record.get(key, float("nan")) for record in epochs], marker="o")
    metric_ax.set_xlabel("epoch")
    metric_ax.set_ylabel(f"validation {metric}")
    figure.tight_layout()
    save_figure(figure, path)
