"""pipeline("translation"): text in, translations out, in PyTorch or TensorFlow.

With a real checkpoint, `pipeline("translation", model="Helsinki-NLP/opus-mt-en-de", framework="tf")`
turns ["Hello world"] into [{'translation_text': 'Hallo Welt'}]; `pipeline`'s docstring has an
example that runs.
"""

from __future__ import annotations

import importlib.util
import re
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from westron.configuration_utils import peek_hub_kwargs
from westron.errors import WestronError
from westron.generation.utils import OUTPUT_FLAGS

SUPPORTED_TASK = re.compile(r"translation(?:_(.+?)_to_(.+))?")


def default_framework() -> str:
    """PyTorch when it is installed, else TensorFlow, as Hugging Face 4.x chose."""
    if importlib.util.find_spec("torch") is not None:
        return "pt"
    if importlib.util.find_spec("tensorflow") is not None:
        return "tf"
    raise WestronError("neither PyTorch nor TensorFlow is installed: pip install 'westron[torch]' or 'westron[tf]'")


class TranslationPipeline:
    """Tokenizes, generates and decodes; holds one model in one framework on one device."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any = None,
        framework: str | None = None,
        device: str | int | None = None,
        truncation: bool = True,
        batch_size: int = 32,
        allow_pickle: bool = False,
        src_lang: str | None = None,
        tgt_lang: str | None = None,
        source_prefix: str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        **generate_kwargs: Any,
    ):
        is_path = isinstance(model, str) or hasattr(model, "__fspath__")
        if isinstance(tokenizer, str) or hasattr(tokenizer, "__fspath__"):  # HF 4.x: a tokenizer's folder or Hub id
            from westron.models.auto import AutoTokenizer

            tokenizer = AutoTokenizer.from_pretrained(tokenizer, **peek_hub_kwargs(dict(model_kwargs or {})))
        if framework is None:  # a model object tells its framework (TF classes are named TF...)
            framework = default_framework() if is_path else ("tf" if type(model).__name__.startswith("TF") else "pt")
        if framework not in ("pt", "tf"):
            raise WestronError(f"framework must be 'pt' or 'tf', not {framework!r}")
        self.framework = framework
        self.truncation = _truncation_choice(truncation)
        self.batch_size = _positive_int("batch_size", batch_size)
        device = pipeline_device(device, framework)
        self.generate_kwargs = generate_kwargs
        if is_path:
            from westron.models.auto import AutoModelForSeq2SeqLM, AutoTokenizer, TFAutoModelForSeq2SeqLM

            model_kwargs = dict(model_kwargs or {})
            if device is not None:
                model_kwargs["device"] = device
            tokenizer = tokenizer or AutoTokenizer.from_pretrained(model, **peek_hub_kwargs(model_kwargs))
            auto = AutoModelForSeq2SeqLM if framework == "pt" else TFAutoModelForSeq2SeqLM
            model = auto.from_pretrained(model, allow_pickle=allow_pickle, **model_kwargs)
        elif model_kwargs:
            raise WestronError(f"{', '.join(sorted(model_kwargs))}: loading arguments need model= to be a path, not a model object")
        else:
            if tokenizer is None:  # HF 4.x reads it from the folder the model was loaded from
                if not getattr(model, "name_or_path", ""):
                    raise WestronError("pass tokenizer= when model is a model object not loaded with from_pretrained")
                from westron.models.auto import AutoTokenizer

                tokenizer = AutoTokenizer.from_pretrained(model.name_or_path)
            if framework == "pt" and device is not None:
                from westron.modeling_utils import resolve_device

                model.to(resolve_device(device))
        check_tokenizer_fits_model(tokenizer, model.config)
        self.model = model
        self.tokenizer = tokenizer
        self.device = device
        self.source_prefix = self._configure_languages(src_lang, tgt_lang, source_prefix)

    def _configure_languages(self, src_lang, tgt_lang, source_prefix) -> str:
        """Sets what a translation direction needs; returns the text prefix for each source.

        Multilingual tokenizers (M2M100, NLLB) take src_lang / tgt_lang and force the target
        language as the first generated token. T5 takes a text prefix: `source_prefix`, or the
        config's task_specific_params["translation_{src}_to_{tgt}"] (whose generation settings,
        like num_beams, become defaults too), as Hugging Face's translation pipeline did.
        """
        self.languages_applied = False  # whether src_lang / tgt_lang changed anything (the CLI refuses ignored ones)
        if hasattr(self.tokenizer, "get_lang_id"):  # a multilingual tokenizer
            tgt_lang = tgt_lang or self.tokenizer.tgt_lang  # else the language it was saved with (a fine-tuned model's)
            if tgt_lang is None:
                raise WestronError("this model translates into many languages: give the target language (tgt_lang / --tgt-lang)")
            if src_lang is not None:
                self.tokenizer.src_lang = src_lang
            self.tokenizer.tgt_lang = tgt_lang
            self.generate_kwargs.setdefault("forced_bos_token_id", self.tokenizer.get_lang_id(tgt_lang))
            self.languages_applied = True
            return source_prefix or ""
        if source_prefix is not None:
            return source_prefix
        task_params = getattr(self.model.config, "task_specific_params", None) or {}
        if not (src_lang or tgt_lang):
            # HF 4.x: plain "translation" on a model with translation_XX_to_YY entries takes the first one.
            first = next((key for key in task_params if SUPPORTED_TASK.fullmatch(key) and key != "translation"), None)
            if first is not None:
                warnings.warn(f'"translation" task was used, instead of "translation_XX_to_YY", defaulting to "{first}"', UserWarning, stacklevel=4)
                src_lang, tgt_lang = SUPPORTED_TASK.fullmatch(first).groups()
        if src_lang or tgt_lang:
            # One language alone picks the first entry that has it (translation_en_to_* for src_lang="en").
            matches = [
                key for key in task_params
                if (match := SUPPORTED_TASK.fullmatch(key)) and match.group(1)
                and src_lang in (None, match.group(1)) and tgt_lang in (None, match.group(2))
            ]  # fmt: skip
            task = matches[0] if matches else f"translation_{src_lang or 'XX'}_to_{tgt_lang or 'YY'}"
            if task not in task_params:
                if task_params:
                    known = ", ".join(sorted(k for k in task_params if k.startswith("translation_")))
                    raise WestronError(f"the model's config has no {task} (it has: {known}); pass a source prefix instead")
                return ""
            self.languages_applied = True
            params = dict(task_params[task])
            prefix = params.pop("prefix", "") or ""
            for key, value in params.items():
                self.generate_kwargs.setdefault(key, value)
            return prefix
        return ""

    @property
    def max_source_length(self) -> int:
        """Tokens the model accepts: its position table, or the tokenizer's limit if smaller."""
        limits = [getattr(self.model.config, "max_position_embeddings", None)]
        limits.append(getattr(self.tokenizer, "model_max_length", None))
        return min(limit for limit in limits if isinstance(limit, int) and limit > 0)

    def encode(self, texts: Sequence[str], truncation: bool | None = None) -> tuple[Any, Any]:
        """Tokenizes a batch; inputs over the model's limit are truncated with one warning, or refused.

        truncation: this call's choice (HF 4.x took it per call), else the pipeline's."""
        encoded = self.tokenizer(list(texts), padding=True, truncation=False, return_tensors="np")
        limit = self.max_source_length
        lengths = encoded["attention_mask"].sum(axis=1)
        too_long = [i for i, length in enumerate(lengths) if length > limit]
        if too_long:
            if not (self.truncation if truncation is None else truncation):
                raise InputTooLongError(too_long[0], int(lengths[too_long[0]]), limit)
            # One fixed message, so a "once" warnings filter (the CLI's) shows it once per run.
            warnings.warn(f"inputs longer than the model's limit of {limit} tokens are truncated", stacklevel=3)
            encoded = self.tokenizer(list(texts), padding=True, truncation=True, max_length=limit, return_tensors="np")
        return encoded["input_ids"], encoded["attention_mask"]

    def translate_batch(self, texts: Sequence[str], clean_up_tokenization_spaces: bool | None = None, **generate_kwargs: Any) -> list[str]:
        """Translates one batch of non-empty texts; returns one string per text (per returned sequence)."""
        return self.decode_batch(self.generate_batch(texts, **generate_kwargs), clean_up_tokenization_spaces)

    def decode_batch(self, output_ids: np.ndarray, clean_up_tokenization_spaces: bool | None = None) -> list[str]:
        """The text of each row of `generate_batch`'s ids, special tokens left out."""
        return self.tokenizer.batch_decode(
            output_ids, skip_special_tokens=True, clean_up_tokenization_spaces=clean_up_tokenization_spaces
        )

    def generate_batch(self, texts: Sequence[str], truncation: bool | None = None, **generate_kwargs: Any) -> np.ndarray:
        """The generated ids (rows, length) of one batch of non-empty texts, padded after each row's end."""
        if not texts:
            return np.zeros((0, 0), np.int64)
        if self.source_prefix:
            texts = [self.source_prefix + text for text in texts]
        kwargs = {**self.generate_kwargs, **generate_kwargs}
        asked = [name for name in ("return_dict_in_generate", *OUTPUT_FLAGS) if kwargs.get(name)]
        if asked:  # the pipeline returns text: these would be computed and dropped
            raise WestronError(
                f"{', '.join(asked)}: the translation pipeline returns text; call "
                "model.generate(..., return_dict_in_generate=True) for scores, attentions or hidden states"
            )
        input_ids, attention_mask = self.encode(texts, truncation)
        if self.framework == "pt":
            return self._generate_pt(input_ids, attention_mask, kwargs)
        return self._generate_tf(input_ids, attention_mask, kwargs)

    def _generate_pt(self, input_ids, attention_mask, kwargs):
        import torch

        device = self.model.device
        output = self.model.generate(
            torch.as_tensor(input_ids, device=device), attention_mask=torch.as_tensor(attention_mask, device=device), **kwargs
        )
        return output.cpu().numpy()

    def _generate_tf(self, input_ids, attention_mask, kwargs):
        from westron.modeling_tf_utils import tf_device_scope

        with tf_device_scope(self.device):
            output = self.model.generate(input_ids, attention_mask=attention_mask, **kwargs)
        return output.numpy()

    def __call__(
        self,
        texts: str | Sequence[str],
        batch_size: int | None = None,
        return_tensors: bool = False,
        return_text: bool = True,
        clean_up_tokenization_spaces: bool | None = None,
        truncation: bool | None = None,
        **generate_kwargs: Any,
    ) -> list[dict[str, Any]]:
        """Translates a text or a list of texts: [{"translation_text": ...}] in input order.

        With num_return_sequences=n > 1, as in HF 4.x, a text gives its n translations in one list
        and a list of texts one such list per text.

        As HF 4.x: `return_tensors=True` gives [{"translation_token_ids": ids}] instead (a 1-D
        tensor of the pipeline's framework per sequence, ending at its eos as HF's unbatched
        output does); `clean_up_tokenization_spaces` goes to the tokenizer's decode; other keywords
        are generate()'s (`num_beams=4`, `max_new_tokens=64`, `do_sample=True`, ...).

        An empty or blank text translates to "" (no ids), as the CLI keeps empty lines empty: a
        model given nothing would still say something.
        """
        per_call_languages = sorted(name for name in ("src_lang", "tgt_lang") if name in generate_kwargs)
        truncation = _truncation_choice(truncation)
        if per_call_languages:  # HF 4.x took them per call; here the tokenizer is set up once
            raise WestronError(
                f"{', '.join(per_call_languages)}: give the languages to pipeline('translation', model=..., "
                "src_lang=..., tgt_lang=...), not to each call"
            )
        one_text = isinstance(texts, str)
        texts = _text_list(texts)
        batch_size = self.batch_size if batch_size is None else _positive_int("batch_size", batch_size)
        filled = [i for i, text in enumerate(texts) if text.strip()]
        rows: list[np.ndarray] = []
        for start in range(0, len(filled), batch_size):
            batch = [texts[i] for i in filled[start : start + batch_size]]
            rows.extend(self.generate_batch(batch, truncation=truncation, **generate_kwargs))
        # Each text gives num_return_sequences translations; a blank one as many empty ones.
        if filled:
            per_text = len(rows) // len(filled)
        else:
            per_text = int({**self.generate_kwargs, **generate_kwargs}.get("num_return_sequences") or 1)
        if return_tensors:
            results = [{"translation_token_ids": self._as_tensor(ids)} for ids in self._arrange(texts, filled, rows, per_text, None)]
        elif not return_text:
            raise WestronError("return_text=False without return_tensors=True would return nothing")
        else:
            decoded = self.tokenizer.batch_decode(
                rows, skip_special_tokens=True, clean_up_tokenization_spaces=clean_up_tokenization_spaces
            ) if rows else []
            results = [{"translation_text": text} for text in self._arrange(texts, filled, decoded, per_text, "")]
        if per_text > 1 and not one_text:  # HF 4.x: a list of texts gives one list of translations per text
            return [results[i : i + per_text] for i in range(0, len(results), per_text)]
        return results

    @staticmethod
    def _arrange(texts, filled, outputs, per_text, blank):
        """Outputs of the non-blank texts back in input order, `blank` for each blank text's sequences."""
        results = [[blank] * per_text for _ in texts]
        for k, i in enumerate(filled):
            results[i] = outputs[k * per_text : (k + 1) * per_text]
        return [output for per_input in results for output in per_input]

    def _as_tensor(self, ids: np.ndarray | None):
        """One sequence's ids up to its first eos (what HF returns for one text), as the framework's tensor."""
        ids = np.zeros((0,), np.int64) if ids is None else np.asarray(ids)
        eos = getattr(self.model.generation_config, "eos_token_id", None)
        eos_ids = eos if isinstance(eos, list) else [eos]
        ends = np.flatnonzero(np.isin(ids[1:], [e for e in eos_ids if e is not None]))
        if ends.size:
            ids = ids[: ends[0] + 2]
        if self.framework == "pt":
            import torch

            return torch.as_tensor(ids)
        import tensorflow as tf

        return tf.constant(ids)


def _truncation_choice(value: Any) -> bool | None:
    """True, False or None (the pipeline's choice), from a bool or HF's strategy names."""
    choices = {None: None, True: True, False: False, "longest_first": True, "only_first": True, "do_not_truncate": False}
    try:
        return choices[value]
    except (KeyError, TypeError):
        raise WestronError(f"truncation must be True, False, 'longest_first', 'only_first' or 'do_not_truncate', got {value!r}") from None


def _positive_int(name: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise WestronError(f"{name} must be a positive integer, got {value!r}")
    return value


def pipeline_device(device: Any, framework: str) -> Any:
    """HF 4.x's device forms: -1 is the CPU, N >= 0 the N-th GPU; strings and torch.devices pass through."""
    if isinstance(device, bool) or not isinstance(device, int):
        return device
    if device < -1:
        raise WestronError(f"device={device} is not a device (-1 for the CPU, 0, 1, ... for a GPU)")
    if device == -1:
        return "cpu"
    return f"cuda:{device}" if framework == "pt" else f"gpu:{device}"


class PipelineInputError(WestronError, TypeError):
    """The pipeline was given something that is not text: a TypeError, reported on one line by the CLI."""


def _text_list(texts: Any) -> Sequence[str]:
    """`texts` as a sequence of strings (a string is one text); anything else is a PipelineInputError."""
    if isinstance(texts, str):
        return [texts]
    if isinstance(texts, Sequence) and not isinstance(texts, bytes):
        not_text = [text for text in texts if not isinstance(text, str)]
        if not not_text:
            return texts
        texts = not_text[0]
    raise PipelineInputError(f"translation input must be a string or a list of strings, not {type(texts).__name__}")


def check_tokenizer_fits_model(tokenizer: Any, config: Any) -> None:
    """A tokenizer from another checkpoint (or a truncated vocab.json) would translate into noise.

    Its ids must fit the model's embedding (a model may have more rows than the tokenizer has
    tokens: T5 pads 32100 to 32128), and the special tokens must be the ids the model was trained with.
    """
    size = len(tokenizer)
    vocab_size = getattr(config, "vocab_size", None)
    if isinstance(vocab_size, int) and size > vocab_size:
        raise WestronError(f"the tokenizer has {size} tokens but the model only {vocab_size} (config.json vocab_size): they do not belong together")
    for name in ("pad_token_id", "eos_token_id"):
        token_id, model_id = getattr(tokenizer, name, None), getattr(config, name, None)
        if token_id is not None and isinstance(model_id, int) and token_id != model_id:
            raise WestronError(
                f"the tokenizer ({size} tokens) has {name} {token_id} but the model's config.json says {model_id}: "
                "they do not belong together (a wrong or truncated vocabulary file?)"
            )


class InputTooLongError(WestronError):
    def __init__(self, index: int, length: int, limit: int):
        self.index = index
        super().__init__(f"input {index + 1} has {length} tokens, more than the model's limit of {limit}")


def pipeline(task: str, model: Any = None, tokenizer: Any = None, framework: str | None = None, device: str | int | None = None, **kwargs: Any):
    """Hugging Face's pipeline() for translation: `pipeline("translation", model=..., framework="pt"|"tf")`.

    As in HF 4.x, "translation_en_to_de" names the direction (T5 then finds its prefix in the config).

    Example:

        >>> import westron
        >>> translator = westron.pipeline("translation", model=checkpoint, framework="pt")
        >>> translator(["Speak, friend, and enter.", ""], num_beams=2, max_new_tokens=8)
        [{'translation_text': '...'}, {'translation_text': ''}]
    """
    # HF 4.x's pipeline() loading arguments go to from_pretrained, as its model_kwargs do.
    model_kwargs = dict(kwargs.pop("model_kwargs", None) or {})
    for name in PIPELINE_LOADING_KWARGS:
        if name in kwargs:
            model_kwargs[name] = kwargs.pop(name)
    match = SUPPORTED_TASK.fullmatch(task)
    if not match:
        raise WestronError(f"unsupported task {task!r}: Westron's pipeline() supports 'translation'")
    if model is None:  # HF 4.x downloaded a default (t5-base) here
        raise WestronError(
            "pipeline() needs model=: a folder or Hub id such as 'Helsinki-NLP/opus-mt-en-de' (Westron picks no default model)"
        )
    if match.group(1):
        kwargs.setdefault("src_lang", match.group(1))
        kwargs.setdefault("tgt_lang", match.group(2))
    return TranslationPipeline(
        model, tokenizer=tokenizer, framework=framework, device=device, model_kwargs=model_kwargs, **kwargs
    )


PIPELINE_LOADING_KWARGS = ("revision", "token", "use_auth_token", "device_map", "torch_dtype", "dtype", "trust_remote_code")
