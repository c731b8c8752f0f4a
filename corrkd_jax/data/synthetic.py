"""The embedded default dataset: a deterministic synthetic shop ("builtin:synthetic").

It exists so the README's first command runs with no download; it is synthetic, not real data.
It is built so that item text genuinely helps a sequential recommender: choices are driven by
item attributes that the text reveals, and popularity has a long tail, so many items are
seen too rarely for an ID embedding to learn them while their text still says what they are.

Generative process (all draws from one `numpy.random.Generator` seeded by `config.seed`):

1. Catalogue. 6 categories x 5 subcategories (each subcategory one product noun, e.g.
   Kitchen/Drinkware "coffee mug"), 4 materials or finishes per category, 12 colours,
   6 styles, 8 invented brands per category. Each of `num_items` items draws a category
   (uniform), a subcategory (uniform within it), a brand (Zipf 1/r within the category), a
   material (uniform within the category), a colour and a style (uniform).
2. Popularity: the items get a random rank r and log-popularity -zipf_exponent * log(r + 1)
   (a long tail: most items are rare).
3. Text: `title` is natural text from a template over brand, style, material, noun and colour
   (e.g. "Lumiere minimalist ceramic coffee mug, ocean blue"); `attributes` is
   `brand|category|subcategory|material` (the Beauty items.tsv layout); `asin` is a 10-char
   external id "B0SYN00042".
4. Users: each of `num_users` users draws preferences over categories (Dirichlet 0.4), colours
   (Dirichlet 0.6), material slots (Dirichlet 0.6) and styles (Dirichlet 1.0), and a length
   n = min_length + Geometric (mean `mean_length`), capped at `max_length`.
5. Sequences: the first item, and then every next item, is drawn (without repeats) from
   softmax over items of
       w_pop * log-popularity + sum over (category, colour, material, style) of
       w_attr * log user-preference(attribute)
     + [previous item terms] w_next * [subcategory = the "next" subcategory of the previous
       item's one (a fixed cycle within each category, e.g. coffee mug -> frying pan)]
       + w_same_subcategory, w_same_category, w_same_brand, w_same_colour
         * [attribute equal to the previous item's].
   So the next item depends on the attributes of the recent item and on the user's taste,
   never on the item's identity beyond its popularity.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from corrkd_jax.data.raw import RawData

CATALOGUE: dict[str, list[tuple[str, str]]] = {
    "Kitchen": [
        ("Drinkware", "coffee mug"),
        ("Cookware", "frying pan"),
        ("Cutlery", "chef knife"),
        ("Bakeware", "baking tray"),
        ("Storage", "food container"),
    ],
    "Beauty": [
        ("Makeup", "lipstick"),
        ("Nails", "nail polish"),
        ("Skin Care", "face cream"),
        ("Hair Care", "shampoo"),
        ("Fragrance", "eau de parfum"),
    ],
    "Outdoors": [
        ("Camping", "tent"),
        ("Hiking", "daypack"),
        ("Hydration", "water bottle"),
        ("Sleeping", "sleeping bag"),
        ("Lighting", "headlamp"),
    ],
    "Office": [
        ("Paper", "notebook"),
        ("Writing", "fountain pen"),
        ("Desk", "desk lamp"),
        ("Organisation", "file organizer"),
        ("Bags", "laptop sleeve"),
    ],
    "Toys": [
        ("Puzzles", "jigsaw puzzle"),
        ("Building", "building block set"),
        ("Plush", "plush bear"),
        ("Vehicles", "toy race car"),
        ("Games", "board game"),
    ],
    "Apparel": [
        ("Tops", "t-shirt"),
        ("Outerwear", "hooded jacket"),
        ("Footwear", "running shoes"),
        ("Accessories", "knit scarf"),
        ("Socks", "crew socks"),
    ],
}
MATERIALS: dict[str, list[str]] = {
    "Kitchen": ["ceramic", "stainless steel", "bamboo", "borosilicate glass"],
    "Beauty": ["matte", "glossy", "organic", "long-wear"],
    "Outdoors": ["ripstop nylon", "aluminium", "recycled polyester", "waxed canvas"],
    "Office": ["recycled paper", "brass", "walnut wood", "leather"],
    "Toys": ["wooden", "soft plush", "ABS plastic", "cardboard"],
    "Apparel": ["organic cotton", "merino wool", "fleece", "linen"],
}
COLOURS = [
    "ocean blue",
    "forest green",
    "charcoal grey",
    "ivory white",
    "crimson red",
    "sunflower yellow",
    "blush pink",
    "lavender",
    "burnt orange",
    "midnight black",
    "teal",
    "sand beige",
]
STYLES = ["classic", "minimalist", "vintage", "premium", "compact", "eco-friendly"]
_BRAND_HEADS = ["Lum", "Nor", "Vel", "Ast", "Kai", "Mir", "Sol", "Bel", "Tor", "Zen", "Ori", "Cal"]
_BRAND_TAILS = ["iere", "vik", "ora", "ex", "ano", "ia", "ston", "wood"]
_TITLES = [
    "{brand} {style} {material} {noun}, {colour}",
    "{brand} {noun} in {colour}, {style} {material}",
    "{Style} {colour} {material} {noun} by {brand}",
]
BRANDS_PER_CATEGORY = 8


@dataclasses.dataclass(frozen=True)
class SyntheticConfig:
    """Size and behaviour of the synthetic shop (defaults: ~4,000 users, ~3,000 items,
    ~50,000 interactions)."""

    seed: int = 0  # the only source of randomness
    num_items: int = 3200  # catalogue size (items never chosen are dropped by preprocessing)
    num_users: int = 4000
    min_length: int = 5  # every user has at least this many interactions
    mean_length: float = 12.5  # mean sequence length
    max_length: int = 60
    zipf_exponent: float = 1.0  # item popularity ~ (rank + 1) ** -zipf_exponent
    w_pop: float = 1.0  # weight of log-popularity
    w_category: float = 1.0  # weights of log user preference per attribute
    w_colour: float = 0.7
    w_material: float = 0.6
    w_style: float = 0.4
    w_next: float = 2.5  # previous item's subcategory -> its "next" subcategory
    w_same_subcategory: float = 1.0  # bonuses for sharing an attribute with the previous item
    w_same_category: float = 1.5
    w_same_brand: float = 1.2
    w_same_colour: float = 0.8


@dataclasses.dataclass(frozen=True)
class Catalogue:
    """Latent attributes of the items (all int arrays [num_items]) and their text."""

    category: np.ndarray
    subcategory: np.ndarray  # global subcategory index (category * 5 + local index)
    brand: np.ndarray  # global brand index (category * BRANDS_PER_CATEGORY + local index)
    material: np.ndarray  # material slot within the category, 0..3
    colour: np.ndarray
    style: np.ndarray
    log_popularity: np.ndarray  # float64
    titles: np.ndarray  # str object
    attributes: np.ndarray  # str object
    asins: np.ndarray  # str object


def _brand_names(rng: np.random.Generator) -> list[str]:
    """6 x 8 distinct invented brand names."""
    names = [h + t for h in _BRAND_HEADS for t in _BRAND_TAILS]
    chosen = rng.choice(len(names), len(CATALOGUE) * BRANDS_PER_CATEGORY, replace=False)
    return [names[i] for i in chosen]


def make_catalogue(config: SyntheticConfig, rng: np.random.Generator) -> Catalogue:
    """Draws the items' attributes, popularity and text (steps 1-3 of the module docstring)."""
    categories = list(CATALOGUE)
    n = config.num_items
    num_sub = len(CATALOGUE[categories[0]])
    category = rng.integers(len(categories), size=n)
    subcategory = category * num_sub + rng.integers(num_sub, size=n)
    zipf = 1.0 / np.arange(1, BRANDS_PER_CATEGORY + 1)
    brand = category * BRANDS_PER_CATEGORY + rng.choice(
        BRANDS_PER_CATEGORY, size=n, p=zipf / zipf.sum()
    )
    material = rng.integers(4, size=n)
    colour = rng.integers(len(COLOURS), size=n)
    style = rng.integers(len(STYLES), size=n)
    log_popularity = -config.zipf_exponent * np.log(rng.permutation(n) + 1.0)
    template = rng.integers(len(_TITLES), size=n)
    brands = _brand_names(rng)

    titles, attributes = [], []
    for i in range(n):
        cat = categories[category[i]]
        sub_name, noun = CATALOGUE[cat][subcategory[i] % num_sub]
        words = {
            "brand": brands[brand[i]],
            "style": STYLES[style[i]],
            "Style": STYLES[style[i]].capitalize(),
            "material": MATERIALS[cat][material[i]],
            "noun": noun,
            "colour": COLOURS[colour[i]],
        }
        titles.append(_TITLES[template[i]].format(**words))
        attributes.append("|".join([words["brand"], cat, sub_name, words["material"]]))
    return Catalogue(
        category=category,
        subcategory=subcategory,
        brand=brand,
        material=material,
        colour=colour,
        style=style,
        log_popularity=log_popularity,
        titles=np.asarray(titles, dtype=object),
        attributes=np.asarray(attributes, dtype=object),
        asins=np.asarray([f"B0SYN{i:05d}" for i in range(n)], dtype=object),
    )


def _next_subcategory(rng: np.random.Generator, num_categories: int, num_sub: int) -> np.ndarray:
    """A random cycle through the subcategories of each category: int [num_categories * num_sub]."""
    nxt = np.empty(num_categories * num_sub, dtype=np.int64)
    for c in range(num_categories):
        cycle = c * num_sub + rng.permutation(num_sub)
        nxt[cycle] = np.roll(cycle, -1)
    return nxt


def simulate(config: SyntheticConfig, cat: Catalogue, rng: np.random.Generator) -> list[np.ndarray]:
    """Draws every user's sequence of catalogue indices (steps 4-5), vectorised over users."""
    num_categories, num_sub = len(CATALOGUE), len(CATALOGUE["Kitchen"])
    nxt = _next_subcategory(rng, num_categories, num_sub)
    u = config.num_users

    def pref(alpha: float, k: int, weight: float) -> np.ndarray:
        # exp(weight * log p) for Dirichlet-drawn p: float32 [U, k].
        return ((rng.dirichlet(np.full(k, alpha), size=u) + 1e-6) ** weight).astype(np.float32)

    pref_cat = pref(0.4, num_categories, config.w_category)
    pref_colour = pref(0.6, len(COLOURS), config.w_colour)
    pref_material = pref(0.6, 4, config.w_material)
    pref_style = pref(1.0, len(STYLES), config.w_style)
    p_stop = 1.0 / (config.mean_length - config.min_length + 1.0)
    lengths = np.minimum(config.min_length + rng.geometric(p_stop, size=u) - 1, config.max_length)

    # The softmax weights exp(score) factorise into a static part (popularity x taste) and a
    # previous-item part. Transcendentals run only on the small tables above; the big arrays
    # are float32 products and sequential cumsums, which IEEE rounding makes reproducible.
    static = (
        np.exp(config.w_pop * cat.log_popularity).astype(np.float32)[None, :]
        * pref_cat[:, cat.category]
        * pref_colour[:, cat.colour]
        * pref_material[:, cat.material]
        * pref_style[:, cat.style]
    )  # float32 [U, num_items]

    def bonus(weight: float, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return np.where(a[:, None] == b[None, :], np.float32(np.exp(weight)), np.float32(1.0))

    transition = (  # float32 [num_items, num_items]: row = previous item
        bonus(config.w_next, nxt[cat.subcategory], cat.subcategory)
        * bonus(config.w_same_subcategory, cat.subcategory, cat.subcategory)
        * bonus(config.w_same_category, cat.category, cat.category)
        * bonus(config.w_same_brand, cat.brand, cat.brand)
        * bonus(config.w_same_colour, cat.colour, cat.colour)
    )

    chosen = np.zeros((u, lengths.max()), dtype=np.int64)
    for t in range(lengths.max()):
        active = np.nonzero(lengths > t)[0]
        weights = static[active]
        if t > 0:
            weights *= transition[chosen[active, t - 1]]
            # No repeats: zero the weights of the items each user already has.
            weights[np.arange(len(active))[:, None], chosen[active, :t]] = 0.0
        # One draw from the normalised weights per user, by inverting the row's CDF.
        cdf = np.cumsum(weights, axis=1)
        threshold = (1.0 - rng.random(len(active))) * cdf[:, -1]  # in (0, total]: never 0
        pick = np.minimum((cdf < threshold[:, None]).sum(1), config.num_items - 1)
        chosen[active, t] = pick
    return [chosen[i, : lengths[i]] for i in range(u)]


def generate(config: SyntheticConfig | None = None) -> RawData:
    """The synthetic shop as RawData (file order = time order; item table in catalogue order)."""
    config = config or SyntheticConfig()
    rng = np.random.default_rng(config.seed)
    cat = make_catalogue(config, rng)
    sequences = simulate(config, cat, rng)
    users = np.concatenate(
        [np.full(len(s), f"U{i:05d}", dtype=object) for i, s in enumerate(sequences)]
    )
    items = cat.asins[np.concatenate(sequences)]
    return RawData(
        name="synthetic",
        users=users,
        items=items,
        timestamps=None,
        item_keys=cat.asins,
        external_ids=cat.asins.copy(),
        fields={"asin": cat.asins.copy(), "title": cat.titles, "attributes": cat.attributes},
        files=(),
    )
