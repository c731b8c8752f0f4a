"""Plots of the studies: validation curves and the modality-forgetting (agreement) curves."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

from benchmarks.study import cells as study  # noqa: E402
from benchmarks.study.tables import AgreementCurve, Curve  # noqa: E402


def _backbone_variant(label: str) -> tuple[str, str]:
    """('session_graph', 'kdsr') from 'beauty / session_graph / kdsr' or 'session_graph / kdsr'."""
    parts = [p.strip() for p in label.split(": ")[-1].split("/")]
    return (parts[-2] if len(parts) > 1 else ""), parts[-1]


def plot_valid_curves(
    curves: list[Curve], path: str, title: str = "Beauty", metric: str = "NDCG@10"
) -> None:
    """Validation metric per epoch, one panel per backbone."""
    panels = sorted({_backbone_variant(label)[0] for label, _ in curves})
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        for label, records in curves:
            if _backbone_variant(label)[0] != panel:
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


# A variant keeps its colour across datasets and studies; others follow in order of appearance.
VARIANT_COLOUR_ORDER = (*study.MAIN_VARIANTS, *study.ABLATIONS)


def plot_agreement(curves: list[AgreementCurve], path: str, title: str = "") -> bool:
    """Teacher-student agreement of the view tables per epoch, one panel per backbone, a
    colour per variant and a line style per view; False when nothing logged it."""
    if not curves:
        return False
    panels = sorted({_backbone_variant(label)[0] for label, _, _ in curves})
    seen = [_backbone_variant(label)[1] for label, _, _ in curves]
    variants = list(dict.fromkeys(list(VARIANT_COLOUR_ORDER) + seen))  # same colour in every plot
    views = sorted({view for _, view, _ in curves})
    colours = plt.get_cmap("tab10")
    styles = ["-", "--", ":", "-."]
    fig, axes = plt.subplots(1, len(panels), figsize=(6 * len(panels), 4.5), squeeze=False)
    for ax, panel in zip(axes[0], panels):
        for label, view, points in curves:
            backbone, variant = _backbone_variant(label)
            if backbone != panel:
                continue
            epochs, values = zip(*points)
            ax.plot(
                [e + 1 for e in epochs],
                values,
                styles[views.index(view) % len(styles)],
                color=colours(variants.index(variant) % 10),
                marker=".",
                markersize=3,
                label=f"{variant} {view}",
            )
        ax.set_xlabel("epochs trained")
        ax.set_ylabel("Pearson(teacher corr, student table corr)")
        ax.set_title(f"{title}agreement with the teacher{': ' + panel if panel else ''}")
        ax.legend(fontsize=7)
    fig.suptitle("Modality forgetting: do the view tables keep the teacher's correlations?")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return True
