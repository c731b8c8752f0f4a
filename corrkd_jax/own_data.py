"""Your own dataset in one command: fit a config's views and feature folder to the data.

    python -m corrkd_jax.train --config configs/default.py:sasrec,kdsr \\
        --config.data.root=path/to/recbole_folder --workdir runs/mine

Stage 1 follows `data.root` (the configs link `features.data.*` to `data.*`). The views a
config names are fitted to the item table of the dataset actually loaded:

- a text view keeps the fields of its list that the table has; a view none of whose fields
  exist is dropped (with a note on stderr);
- when no named view fits, one text view per text field of the table is made (named after
  the field, encoder and settings of the config's first text view), e.g. `movie_title`;
- no text field at all: a ConfigError suggests `--config.model.variant=id_only`.

`--config.model.views=title` picks views explicitly. The fitted views are what `config.json`
records, so the same command resumes. An explicit `features.out_dir` that holds the features
of another item table (e.g. Beauty's cache folder in `configs/beauty.py` while `data.root`
points elsewhere) is not overwritten: stage 1 then writes to the default, per-dataset folder.
"""

from __future__ import annotations

import re
import sys

import ml_collections

from corrkd_jax.data import ItemTable
from corrkd_jax.errors import ConfigError

# Item-table columns that are identifiers, not text to embed.
ID_FIELDS = ("asin", "item_id", "id", "parent_asin", "imurl", "imageurl", "url")


def note(message: str) -> None:
    """A notice on stderr (stdout stays for results)."""
    print(f"note: {message}", file=sys.stderr, flush=True)


def text_fields(items: ItemTable) -> list[str]:
    """Fields of the item table that hold text: not an id column, and at least half of the
    non-empty values contain a letter (numbers, years and prices are not text)."""
    found = []
    for name, column in items.fields.items():
        if name.lower() in ID_FIELDS:
            continue
        values = [str(v).strip() for v in column[1:]]
        values = [v for v in values if v]
        if values and sum(any(c.isalpha() for c in v) for v in values) >= 0.5 * len(values):
            found.append(name)
    return found


def resolve_views(config: ml_collections.ConfigDict, items: ItemTable) -> bool:
    """Fits `model.views` (and their `features.views`) to `items`; True when it changed them.

    Raises ConfigError when a view-using variant finds no text field at all.
    """
    from corrkd_jax.variants import get_variant

    if not get_variant(config.model.variant).use_views:
        return False
    features = config.features.views
    views = tuple(config.model.views)
    present = {
        view: tuple(f for f in features[view].fields if f in items.fields)
        for view in views
        if features[view].kind == "text"
    }
    kept = [view for view in views if present.get(view, True)]
    if kept:  # the views that fit (narrowed to the fields the table has)
        changed = len(kept) != len(views)
        for view in views:
            if view not in kept:
                note(
                    f"model.views: dropped {view!r} (the item table has no field "
                    f"{list(features[view].fields)}; its fields: {sorted(items.fields)})"
                )
            elif view in present and present[view] != tuple(features[view].fields):
                note(
                    f"features.views.{view}.fields: using {list(present[view])} (the item "
                    f"table has no {[f for f in features[view].fields if f not in present[view]]})"
                )
                features[view].fields = present[view]
                changed = True
        if changed:
            config.model.views = tuple(kept)
        return changed
    fields = text_fields(items)
    if not fields:
        raise ConfigError(
            "model.views",
            f"the item table of {config.data.root} has no text "
            f"field for the views {list(views)} (fields: {sorted(items.fields)}); "
            f"train without views: --config.model.variant=id_only",
        )
    template = next((features[v] for v in views if features[v].kind == "text"), None)
    derived = {}
    for name in fields:
        view = ml_collections.ConfigDict(template.to_dict()) if template is not None else None
        if view is None:
            from corrkd_jax.features.config import text_view

            view = text_view((name,))
        view.fields = (name,)
        derived[re.sub(r"[^A-Za-z0-9_]", "_", name)] = view
    note(
        f"model.views: {list(derived)} (text fields of the item table; the configured views "
        f"{list(views)} do not fit it)"
    )
    config.features.views = ml_collections.ConfigDict(derived)
    config.model.views = tuple(derived)
    return True


def choose_features_dir(config: ml_collections.ConfigDict, items: ItemTable) -> None:
    """Clears an explicit `features.out_dir` that holds another item table's features, so
    stage 1 neither overwrites them nor mistakes them for this dataset's."""
    from corrkd_jax.variants import get_variant

    features = config.features
    if not (
        get_variant(config.model.variant).use_views and features.out_dir and not features.force
    ):
        return
    from corrkd_jax.features import store
    from corrkd_jax.features.items import text_checksum, view_texts
    from corrkd_jax.trainer.setup import resolve_path

    manifest = store.load_manifest(resolve_path(features.out_dir))
    if not manifest or not manifest.get("views"):
        return
    same = manifest.get("num_items") == items.num_items
    if same:
        checks = []
        for name, entry in manifest["views"].items():
            spec = features.views.get(name)
            if spec is None or spec.kind != "text" or entry.get("kind") != "text":
                continue
            if all(f in items.fields for f in spec.fields):
                texts, _ = view_texts(items, tuple(spec.fields))
                checks.append(entry.get("input_checksum") == text_checksum(texts))
        same = not checks or any(checks)
    if not same:
        note(
            f"features.out_dir={features.out_dir!r} holds stage-1 features of another item "
            f"table; this dataset's go to the default per-dataset cache folder instead"
        )
        features.out_dir = ""
