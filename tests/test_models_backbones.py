"""Models: parameter trees, shapes, padding invariance, masking and config errors.

Batches are built by hand (right-aligned histories) with the data layer's session-graph arrays.
"""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from corrkd_jax.data.graph import session_graph
from corrkd_jax.models import build_model, init_params, kd_node_items
from corrkd_jax.models.sasrec import SASRecEncoder
from corrkd_jax.models.session_graph import RelationalGAT
from corrkd_jax.teacher import Teacher, teacher_signals
from corrkd_jax.variants import VARIANTS
from support import default_config

NUM_ITEMS, DIM, NUM_CODES, NUM_CHUNKS = 20, 8, 4, 2
VIEWS = ("title", "attr")
BACKBONES = ("session_graph", "sasrec", "gru4rec")
HISTORIES = [[3, 1, 3, 2], [5], [7, 8, 9, 10, 11, 12], [4, 4, 6, 4, 6]]


def make_batch(histories: list[list[int]], length: int) -> dict[str, np.ndarray]:
    """Right-aligned batch with session-graph arrays, padded to `length` columns."""
    items = np.zeros((len(histories), length), np.int32)
    for b, history in enumerate(histories):
        if history:
            items[b, length - len(history) :] = history
    return {
        "items": items,
        "targets": np.ones(len(histories), np.int32),
        "weights": np.ones(len(histories), np.float32),
        **session_graph(items),
    }


def make_config(backbone: str, variant: str, dropout: float = 0.1) -> ml_collections.ConfigDict:
    return default_config(
        **{
            "model.backbone": backbone,
            "model.variant": variant,
            "model.views": VIEWS,
            "model.dim": DIM,
            "model.dropout": dropout,
            "model.sasrec.num_blocks": 1,
            "model.sasrec.num_heads": 2,
            "model.sasrec.max_positions": 16,
            "model.gru4rec.hidden": 12,
            "model.session_graph.last_n": 2,
            "kd.corr_kind": "cos",
            "kd.tau": 1.5,
            "kd.num_codes": NUM_CODES,
            "kd.num_chunks": NUM_CHUNKS,
        }
    )


def make_features(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    features = {}
    for view in VIEWS:
        table = rng.random((NUM_ITEMS + 1, DIM), dtype=np.float32)
        table[0] = 0.0
        features[view] = table
    return features


def make_teacher(features: dict[str, np.ndarray], seed: int = 0) -> Teacher:
    """A teacher with random codebooks (fitting is tested with the teacher itself)."""
    rng = np.random.default_rng(seed)
    return Teacher(
        features={v: jnp.asarray(f) for v, f in features.items()},
        codebooks={
            v: jnp.asarray(rng.random((NUM_CODES, NUM_CHUNKS)), jnp.float32) for v in features
        },
        kind="cos",
        num_chunks=NUM_CHUNKS,
    )


def quick_jit(fun, **kwargs):
    """`jax.jit` with light backend optimisation: these tiny programs compile ~2x faster."""
    return jax.jit(fun, compiler_options={"xla_backend_optimization_level": 0}, **kwargs)


def jit_init(model, batch):
    """Initial params, compiled as one program (cheaper than op-by-op on a shared CPU)."""
    return quick_jit(lambda b: init_params(model, b, 0))(batch)


def jit_signals(features, batch, backbone):
    """Teacher signals of `batch` (random codebooks), as one compiled program."""
    teacher = make_teacher(features)
    return quick_jit(lambda n: teacher_signals(teacher, n))(kd_node_items(batch, backbone))


@pytest.fixture(scope="module")
def features() -> dict[str, np.ndarray]:
    return make_features()


@pytest.fixture(scope="module")
def kdsr_models(features):
    """backbone -> (kdsr model, its initial params), built once per module."""
    cache = {}

    def get(backbone: str):
        if backbone not in cache:
            model = build_model(make_config(backbone, "kdsr"), NUM_ITEMS, features)
            cache[backbone] = model, jit_init(model, make_batch(HISTORIES, 7))
        return cache[backbone]

    return get


@pytest.mark.parametrize("backbone,variant", list(itertools.product(BACKBONES, VARIANTS)))
def test_parameter_tree_and_shapes(backbone, variant, features):
    spec = VARIANTS[variant]
    model = build_model(make_config(backbone, variant), NUM_ITEMS, features)
    batch = make_batch(HISTORIES, 7)
    signals = jax.eval_shape(
        lambda: teacher_signals(make_teacher(features), kd_node_items(batch, backbone))
    )
    params = jax.eval_shape(lambda: init_params(model, batch, 0))

    expected = {"item_embedding", "backbone"}
    if spec.use_views:
        expected |= {f"view_{v}" for v in VIEWS}
    if spec.holistic:
        expected |= {f"hol_proj_{v}" for v in VIEWS}
    if spec.codes:
        expected |= {f"code_mlp_{v}" for v in VIEWS}
    assert set(params) == expected
    assert params["item_embedding"]["embedding"].shape == (NUM_ITEMS + 1, DIM)
    for v in VIEWS if spec.use_views else ():
        assert params[f"view_{v}"]["embedding"].shape == (NUM_ITEMS + 1, DIM)
    if spec.codes:
        assert params[f"code_mlp_{VIEWS[0]}"]["logits"]["kernel"].shape == (DIM, NUM_CODES)
    inner = {
        "session_graph": {"gnn", "fusion"},
        "sasrec": {"encoder"} | ({"fusion"} if spec.use_views else set()),
        "gru4rec": {"gru", "output_proj"} | ({"fusion"} if spec.use_views else set()),
    }[backbone]
    assert set(params["backbone"]) == inner

    logits, aux = jax.eval_shape(
        lambda p, s: model.apply(
            {"params": p}, batch, teacher_signals=s, train=True, rngs={"dropout": jax.random.key(1)}
        ),
        params,
        signals,
    )
    assert logits.shape == (len(HISTORIES), NUM_ITEMS) and logits.dtype == jnp.float32
    expected_aux = {
        f"{kind}/{v}"
        for v in VIEWS
        for kind, on in (("hol", spec.holistic), ("code", spec.codes))
        if on
    }
    assert set(aux) == expected_aux
    assert all(a.shape == () for a in aux.values())


def test_view_tables_start_at_features_and_eval_needs_no_teacher(features, kdsr_models):
    model, params = kdsr_models("session_graph")
    batch = make_batch(HISTORIES, 7)
    for v in VIEWS:
        np.testing.assert_array_equal(params[f"view_{v}"]["embedding"], features[v])
    logits, aux = jax.eval_shape(
        lambda p: model.apply({"params": p}, batch, teacher_signals=None, train=False), params
    )
    assert aux == {} and logits.shape == (len(HISTORIES), NUM_ITEMS)


def test_logits_are_dot_products_with_id_table(kdsr_models):
    """Column j scores item j + 1: sequence vector . E_id[j + 1]."""
    model, params = kdsr_models("gru4rec")
    batch = make_batch(HISTORIES, 7)
    apply = quick_jit(lambda p: model.apply({"params": p}, batch)[0])
    table = params["item_embedding"]["embedding"]
    logits = apply(params)
    logits_scaled = apply(dict(params, item_embedding={"embedding": table.at[5].multiply(3.0)}))
    # Item 5 is not in row 0's history: its column (4) scales with E_id[5], no other changes.
    np.testing.assert_allclose(logits_scaled[0, 4], 3.0 * logits[0, 4], rtol=1e-5)
    np.testing.assert_allclose(np.delete(logits_scaled[0], 4), np.delete(logits[0], 4), rtol=1e-6)


@pytest.mark.parametrize("backbone", BACKBONES)
def test_padding_invariance(backbone, features, kdsr_models):
    """More left padding gives the same logits and KD terms (eval mode)."""
    teacher = make_teacher(features)
    model, params = kdsr_models(backbone)

    @quick_jit
    def apply(batch):
        signals = teacher_signals(teacher, kd_node_items(batch, backbone))
        return model.apply({"params": params}, batch, teacher_signals=signals)

    outs = [apply(make_batch(HISTORIES, length)) for length in (6, 11)]
    (logits_a, aux_a), (logits_b, aux_b) = outs
    np.testing.assert_allclose(logits_a, logits_b, rtol=1e-5, atol=1e-6)
    assert set(aux_a) == set(aux_b)
    for key in aux_a:
        np.testing.assert_allclose(aux_a[key], aux_b[key], rtol=1e-5, atol=1e-6)


def test_sasrec_is_causal_and_ignores_padded_keys():
    encoder = SASRecEncoder(DIM, num_blocks=2, num_heads=2, dropout=0.0, max_positions=16)
    rng = np.random.default_rng(1)
    x = jnp.asarray(rng.normal(size=(2, 7, DIM)), jnp.float32)
    mask = jnp.asarray([[True] * 7, [False] * 3 + [True] * 4])
    params = quick_jit(encoder.init)(jax.random.key(0), x, mask)
    apply = quick_jit(lambda x: encoder.apply(params, x, mask))
    base = apply(x)
    k = 4
    changed = apply(x.at[:, k].add(jnp.asarray(rng.normal(size=DIM), jnp.float32)))
    # Positions before k do not see position k; positions k.. do.
    np.testing.assert_allclose(changed[:, :k], base[:, :k], atol=1e-6)
    assert (np.abs(np.asarray(changed[:, k:] - base[:, k:])).max(axis=-1) > 1e-4).all()
    # Changing padded inputs (row 1, columns 0..2) changes no real position.
    padded = apply(x.at[1, :3].add(5.0))
    np.testing.assert_allclose(padded[1, 3:], base[1, 3:], atol=1e-6)


def test_session_graph_adjacency_with_repeats():
    """[1, 2, 1, 3, 3, 2]: nodes 1, 2, 3; 1<->2 both ways, 1->3, 3->2, 3->3 dropped."""
    graph = session_graph(np.array([[0, 0, 1, 2, 1, 3, 3, 2]], np.int32))
    nodes, alias, adjacency = graph["nodes"][0], graph["alias"][0], graph["adjacency"][0]
    np.testing.assert_array_equal(nodes, [1, 2, 3, 0, 0, 0, 0, 0])
    np.testing.assert_array_equal(alias, [0, 0, 0, 1, 0, 2, 2, 1])
    expected = np.zeros((8, 8), np.int32)
    expected[:3, :3] = [[1, 4, 2], [4, 1, 3], [3, 2, 1]]
    np.testing.assert_array_equal(adjacency, expected)


def test_relational_gat_matches_loop_reference():
    """One attention vector and amplifier per edge type, softmax over existing edges only."""
    adjacency = session_graph(np.array([[0, 0, 1, 2, 1, 3, 3, 2]], np.int32))["adjacency"][0]
    rng = np.random.default_rng(2)
    x = rng.normal(size=(1, 8, DIM)).astype(np.float32)
    layer = RelationalGAT(DIM, negative_slope=0.1)
    params = quick_jit(layer.init)(jax.random.key(0), x, adjacency[None])
    out = np.asarray(quick_jit(layer.apply)(params, x, adjacency[None]))[0]

    w = np.asarray(params["params"]["kernel"])
    a = np.asarray(params["params"]["edge_attention"])
    amp = np.asarray(params["params"]["edge_amplifier"])
    h = x[0] @ w
    expected = np.zeros_like(h)
    for i in range(8):
        js = [j for j in range(8) if adjacency[i, j] > 0]
        if not js:
            continue  # padding node: no edges, zero output
        e = np.array([(h[i] * h[j]) @ a[adjacency[i, j] - 1] for j in js])
        e = np.where(e > 0, e, 0.1 * e)
        e = e * np.array([amp[adjacency[i, j] - 1] for j in js])
        alpha = np.exp(e - e.max()) / np.exp(e - e.max()).sum()
        expected[i] = alpha @ h[js]
    np.testing.assert_allclose(out, expected, rtol=1e-4, atol=1e-5)


def test_build_model_errors(features):
    config = make_config("sasrec", "kdsr")
    with pytest.raises(ValueError, match="'attr'.*no features"):
        build_model(config, NUM_ITEMS, {"title": features["title"]})
    with pytest.raises(ValueError, match="model.dim=8"):
        build_model(config, NUM_ITEMS, dict(features, attr=np.zeros((NUM_ITEMS + 1, 6))))
    with pytest.raises(ValueError, match=r"\[21, 8\]"):
        build_model(config, NUM_ITEMS, dict(features, attr=np.zeros((NUM_ITEMS, DIM))))
    with pytest.raises(ValueError, match="backbone"):
        build_model(make_config("transformer", "kdsr"), NUM_ITEMS, features)
    with pytest.raises(ValueError, match="variant"):
        build_model(make_config("sasrec", "kd"), NUM_ITEMS, features)
    bad_heads = make_config("sasrec", "kdsr")
    bad_heads.model.sasrec.num_heads = 3
    with pytest.raises(ValueError, match="num_heads"):
        build_model(bad_heads, NUM_ITEMS, features)
    # id_only uses no views, so it needs no features.
    build_model(make_config("sasrec", "id_only"), NUM_ITEMS, {})


def test_teacher_signals_errors(features, kdsr_models):
    model, params = kdsr_models("gru4rec")
    batch = make_batch(HISTORIES, 7)
    signals = jax.eval_shape(lambda: teacher_signals(make_teacher(features), batch["items"]))
    with pytest.raises(ValueError, match="'attr'"):
        jax.eval_shape(
            lambda s: model.apply({"params": params}, batch, teacher_signals=s),
            {"title": signals["title"]},
        )
    short = jax.eval_shape(lambda: teacher_signals(make_teacher(features), batch["items"][:, 2:]))
    with pytest.raises(ValueError, match="shape"):
        jax.eval_shape(lambda s: model.apply({"params": params}, batch, teacher_signals=s), short)
