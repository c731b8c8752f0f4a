"""Raw Amazon 2014 dumps: `reviews_<Category>_5.json.gz` (JSON lines with `reviewerID`, `asin`,
`unixReviewTime`) and an optional `meta_<Category>.json.gz` (one Python-literal dict per line
with `asin`, `title`, `brand`, `categories`, `imUrl`).
"""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import numpy as np

from corrkd_jax.data.raw import RawData, check_items_in_table, implicit_table, nonblank_lines
from corrkd_jax.data.structures import DataFormatError

REVIEW_PATTERNS = ("reviews_*_5.json.gz", "reviews_*_5.json")
_META_ASIN = re.compile(r"""['"]asin['"]\s*:\s*['"]([^'"]+)['"]""")


def amazon_files(root: str | Path) -> tuple[Path, Path | None]:
    """(reviews file, meta file or None) of an Amazon 2014 dump folder."""
    root = Path(root)
    found = sorted({p for pattern in REVIEW_PATTERNS for p in root.glob(pattern)})
    if not found:
        raise DataFormatError(root, "missing file: no reviews_<Category>_5.json.gz")
    if len(found) > 1:
        names = [p.name for p in found]
        raise DataFormatError(root, f"several review dumps, cannot choose: {names}")
    reviews = found[0]
    category = re.sub(r"^reviews_(.*)_5\.json(\.gz)?$", r"\1", reviews.name)
    metas = [root / f"meta_{category}.json.gz", root / f"meta_{category}.json"]
    return reviews, next((m for m in metas if m.is_file()), None)


def read_amazon_raw(root: str | Path) -> RawData:
    """Reads `reviews_<Category>_5.json.gz` (+ `meta_<Category>.json.gz`) from `root`."""
    root = Path(root)
    reviews, meta = amazon_files(root)
    users: list[str] = []
    items: list[str] = []
    times: list[float] = []
    numbers: list[int] = []
    for number, line in nonblank_lines(reviews):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            raise DataFormatError(reviews, f"malformed JSON: {e.msg}", number) from None
        if not isinstance(record, dict):
            raise DataFormatError(reviews, "malformed line: not a JSON object", number)
        for key in ("reviewerID", "asin", "unixReviewTime"):
            if key not in record:
                raise DataFormatError(reviews, f"missing key {key!r}", number)
        time = record["unixReviewTime"]
        if isinstance(time, bool) or not isinstance(time, (int, float)):
            raise DataFormatError(reviews, f"non-numeric unixReviewTime {time!r}", number)
        users.append(str(record["reviewerID"]))
        items.append(str(record["asin"]))
        times.append(float(time))
        numbers.append(number)
    item_arr = np.asarray(items, dtype=object)
    files = [str(reviews)]
    if meta is not None:
        keys, fields = _read_amazon_meta(meta, set(items))
        check_items_in_table(item_arr, np.asarray(numbers), keys, reviews, meta)
        external_ids = keys.copy()
        files.append(str(meta))
    else:
        keys, external_ids, fields = implicit_table(item_arr)
    return RawData(
        name=root.resolve().name,
        users=np.asarray(users, dtype=object),
        items=item_arr,
        timestamps=np.asarray(times, dtype=np.float64),
        item_keys=keys,
        external_ids=external_ids,
        fields=fields,
        files=tuple(files),
    )


def _meta_fields(record: dict) -> dict[str, str]:
    """One meta record -> text fields. `categories` is the first category path joined with
    ' > '; `attributes` = brand|path without its root (the dump's own category), as in the
    S3-Rec Beauty items.tsv (e.g. 'OPI|Makeup|Nails|Nail Polish')."""
    categories = record.get("categories") or []
    path = [str(c) for c in categories[0]] if categories and isinstance(categories[0], list) else []
    brand = str(record.get("brand") or "")
    attributes = [brand] if brand else []
    attributes += path[1:] if len(path) > 1 else path
    return {
        "title": str(record.get("title") or ""),
        "brand": brand,
        "categories": " > ".join(path),
        "attributes": "|".join(attributes),
        "imUrl": str(record.get("imUrl") or ""),
    }


def _read_amazon_meta(path: Path, wanted: set[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """meta_*.json.gz -> (asins [M] in file order, fields [M]) for the asins in `wanted`.

    Lines of other items are skipped without a full parse (a meta dump has ~10x more items
    than its 5-core reviews), so problems in those lines go unnoticed.
    """
    keys: list[str] = []
    rows: list[dict[str, str]] = []
    seen: dict[str, int] = {}
    for number, line in nonblank_lines(path):
        quick = _META_ASIN.search(line)
        if quick is not None and quick.group(1) not in wanted:
            continue
        try:
            record = ast.literal_eval(line)
        except (ValueError, SyntaxError) as e:
            raise DataFormatError(
                path, f"malformed line: not a Python literal ({e})", number
            ) from None
        if not isinstance(record, dict) or "asin" not in record:
            raise DataFormatError(path, "malformed line: expected a dict with an 'asin'", number)
        asin = str(record["asin"])
        if asin not in wanted:
            continue
        if asin in seen:
            raise DataFormatError(
                path, f"duplicated item row for asin {asin!r} (first on line {seen[asin]})", number
            )
        seen[asin] = number
        keys.append(asin)
        rows.append(_meta_fields(record))
    names = ("title", "brand", "categories", "attributes", "imUrl")
    fields = {n: np.asarray([r[n] for r in rows], dtype=object) for n in names}
    return np.asarray(keys, dtype=object), fields
