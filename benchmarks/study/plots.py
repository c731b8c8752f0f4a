"""Plots of the studies: validation curves and the modality-forgetting (agreement) curves."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from benchmarks.study.tables import AgreementCurve, Curve  # noqa: E402


def _panel(label: str) -> str:
    """The panel of a curve: its backbone, the label's first part ('extra: ' dropped)."""
    return label.split(": ")[-1].split("/")[0].strip()


def plot_valid_curves(
    curves: list[Curve], path: str, title: str = "Beauty", metric: str = "NDCG@10"
) -> None:
    """Validation metric per epoch, one panel per backbone."""
    panels = sorted({_panel(label) for label, _ in curves})
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        for label, records in curves:
            if _panel(label) != panel:
                continue
            style = ":" if label.startswith("extra") else ("-" if "kdsr" in label else "--")
            ax.plot(
                [r["epoch"] + 1 for r in records],
                [r[f"valid/{metric}"] * 100 for r in records],
                style,
                marker=".",
                label=label,
            )
        ax.set_xlabel("epochs trained")
        ax.set_ylabel(f"valid {metric} (%)")
        ax.set_title(f"{title} validation {metric}: {panel}")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def plot_agreement(curves: list[AgreementCurve], path: str, title: str = "") -> bool:
    """Teacher-student agreement of the view tables per epoch; False when nothing logged it."""
    if not curves:
        return False
    fig, ax = plt.subplots(figsize=(9, 5))
    for label, view, points in curves:
        epochs, values = zip(*points)
        ax.plot(
            epochs, values, "-" if "kdsr" in label else "--", marker=".", label=f"{label} {view}"
        )
    ax.set_xlabel("epoch")
    ax.set_ylabel("Pearson(teacher corr, student table corr)")
    ax.set_title(f"{title}Modality forgetting: agreement of the view tables with the teacher")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True
