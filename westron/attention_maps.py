"""Attention maps of one sentence: encoder self-, decoder self- and cross-attention, from either framework.

    >>> maps = westron.attention(model, tokenizer, "you are right, Moria is to the right")
    >>> maps.cross.shape           # (layers, heads, target tokens, source tokens)
    >>> maps.source_tokens[:3]     # the labels of the axes, as the tokenizer splits the text

The model runs once, teacher-forced, with `output_attentions=True`: on the given target, or on its
own translation (generated first, then forced). The weights come back as float32 numpy arrays, so
notebooks, the PNG/HTML renderer (`westron.attention_render`) and the `compare` report all read
the same thing whichever framework computed it. Nothing here imports a framework before a model
of that framework is handed in.

(The module is not called `westron/attention.py`: a submodule of that name would replace the
function `westron.attention` on the package the moment anyone imported the submodule.)
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from westron.errors import WestronError

# encoder: source x source; decoder: target x target (causal); cross: target (queries) x source (keys).
KINDS = ("encoder", "decoder", "cross")
KIND_TITLES = {"encoder": "encoder self-attention", "decoder": "decoder self-attention", "cross": "cross-attention"}
_OUTPUT_FIELDS = {"encoder": "encoder_attentions", "decoder": "decoder_attentions", "cross": "cross_attentions"}


@dataclass
class AttentionMaps:
    """One sentence's attention weights, per kind (layers, heads, queries, keys), with token labels.

    `layers[kind]` and `heads[kind]` are the model's own indices of the rows kept (all of them
    unless `select` chose some), so a plot can title them correctly.
    """

    source_tokens: list[str]
    target_tokens: list[str]  # the decoder's input: decoder_start_token, then the target's tokens
    weights: dict[str, np.ndarray]  # kind -> float32 (layers, heads, queries, keys)
    layers: dict[str, list[int]]
    heads: dict[str, list[int]]
    framework: str  # "pt" or "tf"
    source: str = ""
    target: str = ""  # the forced target, or the model's translation
    target_ids: list[int] = field(default_factory=list)  # the decoder input ids (force them in the other framework)

    @property
    def encoder(self) -> np.ndarray:
        return self.weights["encoder"]

    @property
    def decoder(self) -> np.ndarray:
        return self.weights["decoder"]

    @property
    def cross(self) -> np.ndarray:
        return self.weights["cross"]

    def query_tokens(self, kind: str) -> list[str]:
        return self.source_tokens if kind == "encoder" else self.target_tokens

    def key_tokens(self, kind: str) -> list[str]:
        return self.target_tokens if kind == "decoder" else self.source_tokens

    def select(self, layers: Sequence[int] | None = None, heads: Sequence[int] | None = None) -> "AttentionMaps":
        """The maps of some layers and heads (model indices; negative ones count from the end of each stack).

        Encoder and decoder may differ in depth and width (T5 variants, NLLB-MoE), so an index
        applies to every stack that has it, and is an error only when no stack has it.
        """
        weights, kept_layers, kept_heads = {}, {}, {}
        for name, chosen, counts in (("layer", layers, self.layers), ("head", heads, self.heads)):
            if chosen is not None and not chosen:
                raise WestronError(f"choose at least one {name}")
            for index in chosen or ():
                if not any(-len(available) <= index < len(available) for available in counts.values()):
                    largest = max(len(available) for available in counts.values())
                    raise WestronError(f"the model has no {name} {index} (its stacks have {name}s 0..{largest - 1})")
        for kind, array in self.weights.items():
            layer_rows = _resolve(layers, len(self.layers[kind]))
            head_rows = _resolve(heads, len(self.heads[kind]))
            weights[kind] = array[np.ix_(layer_rows, head_rows)]
            kept_layers[kind] = [self.layers[kind][i] for i in layer_rows]
            kept_heads[kind] = [self.heads[kind][i] for i in head_rows]
        return AttentionMaps(
            self.source_tokens, self.target_tokens, weights, kept_layers, kept_heads,
            self.framework, self.source, self.target, list(self.target_ids),
        )  # fmt: skip

    # ---- .npz in and out: plain arrays, loadable with allow_pickle=False ---------------------------------

    def save_npz(self, path: str | os.PathLike) -> None:
        """Writes the arrays, their layer/head indices and the token labels to one .npz, atomically."""
        from westron.file_utils import atomic_write

        arrays = {
            "source_tokens": np.array(self.source_tokens, dtype=str),
            "target_tokens": np.array(self.target_tokens, dtype=str),
            "target_ids": np.array(self.target_ids, dtype=np.int64),
            "framework": np.array(self.framework),
            "source": np.array(self.source),
            "target": np.array(self.target),
        }
        for kind in KINDS:
            arrays[kind] = self.weights[kind]
            arrays[f"{kind}_layers"] = np.array(self.layers[kind], dtype=np.int64)
            arrays[f"{kind}_heads"] = np.array(self.heads[kind], dtype=np.int64)
        with atomic_write(path, "wb") as handle:
            np.savez_compressed(handle, **arrays)

    @classmethod
    def load_npz(cls, path: str | os.PathLike) -> "AttentionMaps":
        with np.load(path, allow_pickle=False) as data:
            return cls(
                source_tokens=[str(token) for token in data["source_tokens"]],
                target_tokens=[str(token) for token in data["target_tokens"]],
                weights={kind: data[kind] for kind in KINDS},
                layers={kind: data[f"{kind}_layers"].tolist() for kind in KINDS},
                heads={kind: data[f"{kind}_heads"].tolist() for kind in KINDS},
                framework=str(data["framework"]),
                source=str(data["source"]),
                target=str(data["target"]),
                target_ids=data["target_ids"].tolist(),
            )


def _resolve(chosen: Sequence[int] | None, count: int) -> list[int]:
    """Row numbers of the chosen indices that exist in a stack of `count` (negative from the end), in order, once."""
    if chosen is None:
        return list(range(count))
    rows = [index % count for index in chosen if -count <= index < count]
    return list(dict.fromkeys(rows))


def max_difference(first: AttentionMaps, second: AttentionMaps) -> float:
    """The largest |first - second| over every kind, layer, head and position (the same input expected)."""
    if first.source_tokens != second.source_tokens or first.target_tokens != second.target_tokens:
        raise WestronError("the two attention maps are not for the same source and target tokens")
    return max(float(np.max(np.abs(first.weights[kind] - second.weights[kind]))) for kind in KINDS)


# ---- running the model -------------------------------------------------------------------------------------


def framework_of(model: Any) -> str:
    """"tf" for Keras models (their classes are named TF...), else "pt", as the pipeline decides."""
    return "tf" if type(model).__name__.startswith("TF") else "pt"


def attention_weights(model: Any, input_ids, attention_mask, decoder_input_ids, decoder_attention_mask=None) -> dict[str, np.ndarray]:
    """One teacher-forced pass with output_attentions=True; kind -> float32 (batch, layers, heads, queries, keys).

    Inputs are numpy (or framework) integer arrays: (batch, source_len) and (batch, target_len).
    Padded keys get weight 0 (the models add the dtype's minimum before the softmax), and
    decoder self-attention is causal: query i sees keys 0..i only.
    """
    _check_can_output_attentions(model)
    inputs = dict(
        input_ids=input_ids,
        attention_mask=attention_mask,
        decoder_input_ids=decoder_input_ids,
        decoder_attention_mask=decoder_attention_mask,
    )
    if framework_of(model) == "pt":
        import torch

        device = getattr(model, "device", None)
        inputs = {name: None if value is None else torch.as_tensor(np.asarray(value), device=device) for name, value in inputs.items()}
        with torch.no_grad():
            output = model(**inputs, output_attentions=True)
    else:
        inputs = {name: None if value is None else np.asarray(value) for name, value in inputs.items()}
        output = model(**inputs, output_attentions=True, training=False)

    weights = {}
    for kind in KINDS:
        per_layer = getattr(output, _OUTPUT_FIELDS[kind], None)
        if not per_layer:
            raise WestronError(
                f"{type(model).__name__} returned no {_OUTPUT_FIELDS[kind]}: it cannot output attention weights "
                "(a Westron seq2seq model can; fused attention kernels such as PyTorch's SDPA cannot)"
            )
        weights[kind] = np.stack([_to_numpy(layer) for layer in per_layer], axis=1)  # (B, L, H, q, k)
    return weights


def _check_can_output_attentions(model: Any) -> None:
    """A clear error for an object whose forward/call has no output_attentions argument."""
    import inspect

    method = getattr(model, "call" if framework_of(model) == "tf" else "forward", None)
    if method is None:
        raise WestronError(f"{type(model).__name__} is not a seq2seq model (it has no forward/call method)")
    parameters = inspect.signature(method).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values())
    if "output_attentions" not in parameters and not takes_any:
        raise WestronError(f"{type(model).__name__} cannot output attention weights (its {method.__name__} takes no output_attentions)")


def _to_numpy(tensor: Any) -> np.ndarray:
    if hasattr(tensor, "detach"):  # torch
        tensor = tensor.detach().float().cpu()
    return np.asarray(tensor, dtype=np.float32)


def attention(
    model: Any,
    tokenizer: Any = None,
    source: str = "",
    target: str | None = None,
    *,
    framework: str | None = None,
    src_lang: str | None = None,
    tgt_lang: str | None = None,
    source_prefix: str | None = None,
    target_ids: Sequence[int] | None = None,
    **generate_kwargs: Any,
) -> AttentionMaps:
    """The attention maps of one sentence, with token labels.

    model: a Westron model object (PyTorch or TensorFlow) or a checkpoint folder / Hub id (then
    `framework` picks the twin and the tokenizer comes from the folder). target: the translation
    to force; None lets the model translate first (with `generate_kwargs`, e.g. num_beams) and
    shows the maps of its own translation. target_ids: decoder input ids to force instead
    (decoder_start_token first), e.g. another framework's `maps.target_ids`.
    M2M100/NLLB need the target language (tgt_lang, or the tokenizer's own); T5 may need its task
    prefix (source_prefix, or src_lang and tgt_lang naming a task in the config).
    """
    from westron.pipelines import TranslationPipeline

    if not isinstance(source, str) or not source.strip():
        raise WestronError("give a non-empty source sentence")
    if target is not None and target_ids is not None:
        raise WestronError("give target or target_ids, not both")
    if generate_kwargs and (target is not None or target_ids is not None):
        raise WestronError(f"{', '.join(sorted(generate_kwargs))} shape(s) the model's own translation: leave them out with a forced target")
    if target is not None and not target.strip():
        raise WestronError("the target sentence is empty (leave it out to use the model's own translation)")
    if tgt_lang is None and tokenizer is not None:
        tgt_lang = getattr(tokenizer, "tgt_lang", None)  # a multilingual tokenizer already pointed somewhere
    translator = TranslationPipeline(
        model, tokenizer, framework=framework, src_lang=src_lang, tgt_lang=tgt_lang, source_prefix=source_prefix
    )
    model, tokenizer = translator.model, translator.tokenizer
    input_ids, attention_mask = translator.encode([translator.source_prefix + source])  # (1, S)

    if target_ids is not None:
        decoder_ids = [int(index) for index in target_ids]
    elif target is not None:
        decoder_ids = [decoder_start_token_id(model)] + list(tokenizer(text_target=[target])["input_ids"][0])
    else:
        decoder_ids = _own_translation(model, input_ids, attention_mask, {**translator.generate_kwargs, **generate_kwargs})
    _check_target_length(model, decoder_ids)
    decoder_input_ids = np.array([decoder_ids], dtype=np.int64)  # (1, T)

    weights = attention_weights(model, input_ids.astype(np.int64), attention_mask.astype(np.int64), decoder_input_ids)
    weights = {kind: array[0] for kind, array in weights.items()}  # (L, H, q, k)
    translation = target if target is not None else tokenizer.decode(decoder_ids, skip_special_tokens=True)
    return AttentionMaps(
        source_tokens=list(tokenizer.convert_ids_to_tokens(input_ids[0].tolist())),
        target_tokens=target_tokens(tokenizer, decoder_ids),
        weights=weights,
        layers={kind: list(range(array.shape[0])) for kind, array in weights.items()},
        heads={kind: list(range(array.shape[1])) for kind, array in weights.items()},
        framework=translator.framework,
        source=source,
        target=translation,
        target_ids=decoder_ids,
    )


def _check_target_length(model: Any, decoder_ids: Sequence[int]) -> None:
    """A forced target longer than the decoder's position table: one error, not an index error deep in the model."""
    limit = getattr(model.config, "max_position_embeddings", None)
    if isinstance(limit, int) and limit > 0 and len(decoder_ids) > limit:
        raise WestronError(
            f"the target is {len(decoder_ids)} tokens with the decoder start token; the model takes at most {limit}: shorten it"
        )


def decoder_start_token_id(model: Any) -> int:
    for holder in (getattr(model, "generation_config", None), model.config):
        value = getattr(holder, "decoder_start_token_id", None)
        if value is not None:
            return int(value)
    raise WestronError("the model's config has no decoder_start_token_id: cannot start the decoder")


def _own_translation(model: Any, input_ids: np.ndarray, attention_mask: np.ndarray, generate_kwargs: dict) -> list[int]:
    """The model's translation of one sentence: decoder_start_token first, trailing padding dropped."""
    generate_kwargs = {key: value for key, value in generate_kwargs.items() if key != "num_return_sequences"}
    if framework_of(model) == "pt":
        import torch

        device = getattr(model, "device", None)
        ids = model.generate(torch.as_tensor(input_ids, device=device), attention_mask=torch.as_tensor(attention_mask, device=device), **generate_kwargs)
        ids = ids[0].cpu().numpy().tolist()
    else:
        ids = model.generate(input_ids, attention_mask=attention_mask, **generate_kwargs)[0].numpy().tolist()
    pad = model.config.pad_token_id
    while len(ids) > 1 and ids[-1] == pad:  # the decoder start may itself be pad (Marian, T5): keep it
        ids.pop()
    return ids


def target_tokens(tokenizer: Any, ids: Sequence[int]) -> list[str]:
    """Labels of decoder ids: the target vocabulary's pieces where the model has its own (Marian separate_vocabs)."""
    if getattr(tokenizer, "separate_vocabs", False) and hasattr(tokenizer, "get_tgt_vocab"):
        pieces = {index: token for token, index in tokenizer.get_tgt_vocab().items()}
        return [pieces.get(index, tokenizer.unk_token) for index in ids]
    return list(tokenizer.convert_ids_to_tokens(list(ids)))
