"""Text encoders of stage 1: tiny BERT/T5/OPT through the real code path, MiniLM, T5 shim."""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import transformers

from corrkd_jax.data import ItemTable
from corrkd_jax.features import compat
from corrkd_jax.features.encoders import load_encoder, resolve_encoder_path
from corrkd_jax.features.items import view_texts
from corrkd_jax.features.pooling import l2_normalize, last_real_token, masked_mean
from corrkd_jax.features.text import bucket_edges, bucketed_batches, encode_texts
from support.tiny_encoders import TEXT_FAMILIES, save_tiny_text_encoder

TEXTS = [
    "nail polish red",
    "blue",
    "face cream skin care makeup eye shadow palette brush",
    "lip gloss",
    "hair shampoo and lotion soap",
    "",
    "mascara mascara mascara",
]


@pytest.fixture(scope="module")
def tiny_text(tmp_path_factory):
    """family -> folder of a tiny random checkpoint (config, Flax weights, tokenizer)."""
    root = tmp_path_factory.mktemp("tiny_text")
    return {f: save_tiny_text_encoder(f, str(root / f)) for f in TEXT_FAMILIES}


def _direct(encoder, texts, pooling, max_length):
    """Reference: one padded batch through the model's own __call__, pooled in numpy."""
    enc = encoder.preprocessor(
        texts, padding=True, truncation=True, max_length=max_length, return_tensors="np"
    )
    mask = enc["attention_mask"]
    hidden = np.asarray(
        encoder.model(
            input_ids=enc["input_ids"], attention_mask=mask, params=encoder.params
        ).last_hidden_state
    )
    if pooling == "mean":
        return (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdims=True)
    if encoder.causal:
        return hidden[np.arange(len(texts)), mask.sum(1) - 1]
    return hidden[:, 0]


@pytest.mark.parametrize("family", TEXT_FAMILIES)
def test_tiny_family_matches_direct_forward(tiny_text, family):
    encoder = load_encoder(tiny_text[family], "text")
    assert encoder.model_type == family
    assert encoder.causal == (family == "opt")
    for pooling in ("mean", "cls"):
        # Two buckets, batches of 2 (last one padded): rows must come back in input order.
        got = encode_texts(
            TEXTS,
            encoder,
            pooling=pooling,
            max_length=12,
            batch_size=2,
            length_buckets=(4,),
            progress=False,
        )
        with encoder.compat():
            want = _direct(encoder, TEXTS, pooling, 12)
        assert got.shape == (len(TEXTS), 16) and got.dtype == np.float32
        np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5, err_msg=pooling)
        assert not np.allclose(got[0], got[1])


def test_text_spec_string_and_normalize(tiny_text):
    x = encode_texts(TEXTS[:3], tiny_text["bert"], normalize=True, progress=False)
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1.0, rtol=1e-5)


def test_bfloat16_forward_is_close_to_float32(tiny_text):
    full = encode_texts(TEXTS, tiny_text["bert"], progress=False)
    half = encode_texts(
        TEXTS, load_encoder(tiny_text["bert"], "text", dtype="bfloat16"), progress=False
    )
    assert half.dtype == np.float32
    np.testing.assert_allclose(half, full, atol=0.05 * np.abs(full).max())
    assert not np.array_equal(half, full)


def test_minilm_package_matches_direct_flax_bert():
    """The packaged all-MiniLM-L6-v2 through encode_texts == FlaxBertModel + masked mean."""
    texts = [
        "OPI Nail Lacquer, Simmer and Shimmer, 0.5-Fluid Ounce",
        "red shatter crackle nail polish e55",
        "Makeup|Face|Concealers & Neutralizers",
    ]
    got = encode_texts(texts, "packaged:all-MiniLM-L6-v2", batch_size=2, progress=False)
    folder = resolve_encoder_path("packaged:all-MiniLM-L6-v2")
    assert os.path.isfile(os.path.join(folder, "model.safetensors"))
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
    model = transformers.FlaxBertModel.from_pretrained(folder)
    enc = tokenizer(texts, padding=True, return_tensors="np")
    hidden = np.asarray(model(**enc).last_hidden_state)
    mask = enc["attention_mask"][..., None]
    want = (hidden * mask).sum(1) / mask.sum(1)
    assert got.shape == (3, 384)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def _bucket_reference(relative_position, num_buckets=32, max_distance=128):
    """T5 unidirectional relative-position buckets, written with np.minimum/np.maximum."""
    rp = -np.minimum(relative_position, 0)
    max_exact = num_buckets // 2
    with np.errstate(divide="ignore"):
        large = max_exact + (
            np.log(rp / max_exact) / np.log(max_distance / max_exact) * (num_buckets - max_exact)
        )
    large = np.minimum(large, num_buckets - 1)
    return np.where(rp < max_exact, rp, large).astype(np.int32)


def test_t5_compat_is_scoped_and_exact():
    module = compat.importlib.import_module("transformers.models.t5.modeling_flax_t5")
    bucket = module.FlaxT5Attention._relative_position_bucket
    rel = jnp.arange(-300, 300)[None, :] - jnp.arange(0, 4)[:, None]
    with pytest.raises(TypeError):  # the bug we work around is real on this jax
        bucket(rel, bidirectional=False)
    with compat.flax_t5_compat():
        assert module.jnp is not jnp
        got = np.asarray(bucket(rel, bidirectional=False))
        with compat.flax_t5_compat():  # nesting restores the outer proxy
            pass
        assert module.jnp is not jnp
    assert module.jnp is jnp and jax.numpy is jnp
    np.testing.assert_array_equal(got, _bucket_reference(np.asarray(rel)))
    with pytest.raises(TypeError):  # jax itself was never changed
        jnp.clip(jnp.ones(2), a_max=0)


def test_pooling_ignores_padding():
    hidden = jnp.asarray(np.random.default_rng(0).normal(size=(2, 4, 3)), jnp.float32)
    mask = jnp.asarray([[1, 1, 0, 0], [1, 1, 1, 0]])
    np.testing.assert_allclose(masked_mean(hidden, mask)[0], hidden[0, :2].mean(0), rtol=1e-6)
    np.testing.assert_allclose(last_real_token(hidden, mask), hidden[jnp.arange(2), [1, 2]])
    np.testing.assert_allclose(masked_mean(hidden, jnp.zeros((2, 4))), 0.0)
    np.testing.assert_allclose(jnp.linalg.norm(l2_normalize(hidden[:, 0]), axis=-1), 1.0, rtol=1e-6)


def test_bucketed_batches_cover_rows_once_with_tightest_bucket():
    rng = np.random.default_rng(1)
    ids = [rng.integers(5, 9, size=n).astype(np.int32) for n in rng.integers(1, 20, size=37)]
    edges = bucket_edges((4, 8, 100), 20)
    assert edges == (4, 8, 20)
    seen = []
    for rows, (tokens, mask) in bucketed_batches(ids, edges, 8, pad_id=0):
        assert tokens.shape == mask.shape == (8, tokens.shape[1])
        assert tokens.shape[1] in edges
        for i, row in enumerate(rows):
            n = len(ids[row])
            assert edges[np.searchsorted(edges, n)] == tokens.shape[1]
            np.testing.assert_array_equal(tokens[i, :n], ids[row])
            assert mask[i].sum() == n
        seen.extend(rows.tolist())
    assert sorted(seen) == list(range(len(ids)))


def test_view_texts_fallback_and_bad_field():
    items = ItemTable(
        external_ids=np.asarray(["", "A1", "A2", "A3"], object),
        fields={
            "title": np.asarray(["", "Red polish", " ", ""], object),
            "kw": np.asarray(["", "red", "blue cream", ""], object),
        },
        num_items=3,
    )
    texts, source = view_texts(items, ("title", "kw"))
    assert texts == ["", "Red polish", "blue cream", ""]
    assert source.tolist() == [-1, 0, 1, -1]
    with pytest.raises(ValueError, match="brand"):
        view_texts(items, ("title", "brand"))


def test_bad_encoder_specs(tmp_path):
    with pytest.raises(ValueError, match="packaged"):
        resolve_encoder_path("packaged:no-such-model")
    with pytest.raises(ValueError, match="cannot load encoder"):
        load_encoder(str(tmp_path), "text")  # a folder without config.json
    with pytest.raises(ValueError, match="pooling"):
        encode_texts(["a"], "unused", pooling="max")
