"""Tiny randomly initialised encoders saved like hub checkpoints (tests, demos, benchmarks).

Each `save_tiny_*` writes a folder that `load_encoder(folder, kind)` reads through the same
code path as a real checkpoint: config + Flax weights + tokenizer or image processor.
"""

from __future__ import annotations

import os

import transformers
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

from corrkd_jax.features.compat import flax_t5_compat

TEXT_FAMILIES = ("bert", "t5", "opt")
IMAGE_FAMILIES = ("clip", "vit", "resnet")
TINY_IMAGE_SIZE = 32
_WORDS = (
    "nail polish lacquer red blue shimmer cream face skin care makeup eye shadow "
    "palette brush hair shampoo lotion soap perfume lip gloss mascara"
).split()


def _word_tokenizer(
    specials: list[str], template: str, pad: str, unk: str, **special_tokens: str
) -> transformers.PreTrainedTokenizerFast:
    """Lower-cased whitespace WordLevel tokenizer over a small product vocabulary."""
    vocab = {token: i for i, token in enumerate(specials + list(_WORDS))}
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token=unk))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    used = sorted({t for t in template.split() if not t.startswith("$")})
    tokenizer.post_processor = processors.TemplateProcessing(
        single=template, special_tokens=[(t, vocab[t]) for t in used]
    )
    return transformers.PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token=pad, unk_token=unk, **special_tokens
    )


def save_tiny_text_encoder(family: str, folder: str, *, seed: int = 0) -> str:
    """Write a tiny random `family` ("bert" | "t5" | "opt") encoder + tokenizer to `folder`."""
    os.makedirs(folder, exist_ok=True)
    if family == "bert":
        tokenizer = _word_tokenizer(
            ["[PAD]", "[UNK]", "[CLS]", "[SEP]"],
            "[CLS] $A [SEP]",
            "[PAD]",
            "[UNK]",
            cls_token="[CLS]",
            sep_token="[SEP]",
        )
        config = transformers.BertConfig(
            vocab_size=len(tokenizer),
            hidden_size=16,
            num_hidden_layers=2,
            num_attention_heads=2,
            intermediate_size=32,
            max_position_embeddings=64,
        )
        model = transformers.FlaxBertModel(config, seed=seed)
    elif family == "t5":
        tokenizer = _word_tokenizer(
            ["<pad>", "</s>", "<unk>"], "$A </s>", "<pad>", "<unk>", eos_token="</s>"
        )
        config = transformers.T5Config(
            vocab_size=len(tokenizer),
            d_model=16,
            d_kv=8,
            d_ff=32,
            num_layers=2,
            num_heads=2,
            pad_token_id=0,
            eos_token_id=1,
            decoder_start_token_id=0,
        )
        with flax_t5_compat():  # the random init traces the model
            model = transformers.FlaxT5EncoderModel(config, seed=seed)
    elif family == "opt":
        tokenizer = _word_tokenizer(
            ["<s>", "<pad>", "</s>", "<unk>"],
            "</s> $A",
            "<pad>",
            "<unk>",
            bos_token="</s>",
            eos_token="</s>",
        )
        config = transformers.OPTConfig(
            vocab_size=len(tokenizer),
            hidden_size=16,
            num_hidden_layers=2,
            ffn_dim=32,
            num_attention_heads=2,
            max_position_embeddings=64,
            word_embed_proj_dim=16,
            pad_token_id=1,
            bos_token_id=2,
            eos_token_id=2,
        )
        model = transformers.FlaxOPTModel(config, seed=seed)
    else:
        raise ValueError(f"tiny text family must be one of {TEXT_FAMILIES}, got {family!r}")
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def save_tiny_image_encoder(family: str, folder: str, *, seed: int = 0) -> str:
    """Write a tiny random `family` ("clip" | "vit" | "resnet") vision encoder + image
    processor (TINY_IMAGE_SIZE pixels) to `folder`."""
    os.makedirs(folder, exist_ok=True)
    size = TINY_IMAGE_SIZE
    if family == "clip":
        config = transformers.CLIPVisionConfig(
            image_size=size,
            patch_size=8,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
        )
        model = transformers.FlaxCLIPVisionModel(config, seed=seed)
        processor = transformers.CLIPImageProcessor(
            size={"shortest_edge": size}, crop_size={"height": size, "width": size}
        )
    elif family == "vit":
        config = transformers.ViTConfig(
            image_size=size,
            patch_size=8,
            hidden_size=16,
            intermediate_size=32,
            num_hidden_layers=1,
            num_attention_heads=2,
        )
        model = transformers.FlaxViTModel(config, seed=seed)
        processor = transformers.ViTImageProcessor(size={"height": size, "width": size})
    elif family == "resnet":
        config = transformers.ResNetConfig(
            embedding_size=8, hidden_sizes=[8, 16], depths=[1, 1], layer_type="basic"
        )
        model = transformers.FlaxResNetModel(config, seed=seed)
        processor = transformers.ConvNextImageProcessor(
            size={"shortest_edge": size}, crop_pct=0.875
        )
    else:
        raise ValueError(f"tiny image family must be one of {IMAGE_FAMILIES}, got {family!r}")
    model.save_pretrained(folder)
    processor.save_pretrained(folder)
    return folder
