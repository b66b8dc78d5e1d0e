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

from westron.errors import WestronError

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
        device: str | None = None,
        truncation: bool = True,
        allow_pickle: bool = False,
        src_lang: str | None = None,
        tgt_lang: str | None = None,
        source_prefix: str | None = None,
        **generate_kwargs: Any,
    ):
        is_path = isinstance(model, str) or hasattr(model, "__fspath__")
        if framework is None:  # a model object tells its framework (TF classes are named TF...)
            framework = default_framework() if is_path else ("tf" if type(model).__name__.startswith("TF") else "pt")
        if framework not in ("pt", "tf"):
            raise WestronError(f"framework must be 'pt' or 'tf', not {framework!r}")
        self.framework = framework
        self.truncation = truncation
        self.generate_kwargs = generate_kwargs
        if is_path:
            from westron.models.auto import AutoModelForSeq2SeqLM, AutoTokenizer, TFAutoModelForSeq2SeqLM

            tokenizer = tokenizer or AutoTokenizer.from_pretrained(model)
            auto = AutoModelForSeq2SeqLM if framework == "pt" else TFAutoModelForSeq2SeqLM
            model = auto.from_pretrained(model, device=device, allow_pickle=allow_pickle)
        elif tokenizer is None:
            raise WestronError("pass tokenizer= when model is a model object rather than a path")
        elif framework == "pt" and device is not None:
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
        if hasattr(self.tokenizer, "get_lang_id"):  # a multilingual tokenizer
            if tgt_lang is None:
                raise WestronError("this model translates into many languages: give the target language (tgt_lang / --tgt-lang)")
            if src_lang is not None:
                self.tokenizer.src_lang = src_lang
            self.tokenizer.tgt_lang = tgt_lang
            self.generate_kwargs.setdefault("forced_bos_token_id", self.tokenizer.get_lang_id(tgt_lang))
            return source_prefix or ""
        if source_prefix is not None:
            return source_prefix
        task_params = getattr(self.model.config, "task_specific_params", None) or {}
        if src_lang and tgt_lang:
            task = f"translation_{src_lang}_to_{tgt_lang}"
            if task not in task_params:
                if task_params:
                    known = ", ".join(sorted(k for k in task_params if k.startswith("translation_")))
                    raise WestronError(f"the model's config has no {task} (it has: {known}); pass a source prefix instead")
                return ""
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

    def encode(self, texts: Sequence[str]) -> tuple[Any, Any]:
        """Tokenizes a batch; inputs over the model's limit are truncated with one warning, or refused."""
        encoded = self.tokenizer(list(texts), padding=True, truncation=False, return_tensors="np")
        limit = self.max_source_length
        lengths = encoded["attention_mask"].sum(axis=1)
        too_long = [i for i, length in enumerate(lengths) if length > limit]
        if too_long:
            if not self.truncation:
                raise InputTooLongError(too_long[0], int(lengths[too_long[0]]), limit)
            # One fixed message, so a "once" warnings filter (the CLI's) shows it once per run.
            warnings.warn(f"inputs longer than the model's limit of {limit} tokens are truncated", stacklevel=3)
            encoded = self.tokenizer(list(texts), padding=True, truncation=True, max_length=limit, return_tensors="np")
        return encoded["input_ids"], encoded["attention_mask"]

    def translate_batch(self, texts: Sequence[str], **generate_kwargs: Any) -> list[str]:
        """Translates one batch of non-empty texts; returns one string per text (per returned sequence)."""
        if not texts:
            return []
        if self.source_prefix:
            texts = [self.source_prefix + text for text in texts]
        input_ids, attention_mask = self.encode(texts)
        kwargs = {**self.generate_kwargs, **generate_kwargs}
        if self.framework == "pt":
            output_ids = self._generate_pt(input_ids, attention_mask, kwargs)
        else:
            output_ids = self._generate_tf(input_ids, attention_mask, kwargs)
        return self.tokenizer.batch_decode(output_ids, skip_special_tokens=True)

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

    def __call__(self, texts: str | Sequence[str], batch_size: int = 32, **generate_kwargs: Any) -> list[dict[str, str]]:
        """Translates a text or a list of texts: [{"translation_text": ...}] in input order.

        An empty or blank text translates to "" (as the CLI keeps empty lines empty): a model
        given nothing would still say something.
        """
        texts = _text_list(texts)
        filled = [i for i, text in enumerate(texts) if text.strip()]
        translations: list[str] = []
        for start in range(0, len(filled), batch_size):
            batch = [texts[i] for i in filled[start : start + batch_size]]
            translations.extend(self.translate_batch(batch, **generate_kwargs))
        # Each text gives num_return_sequences translations; a blank one as many empty strings.
        if filled:
            per_text = len(translations) // len(filled)
        else:
            per_text = int({**self.generate_kwargs, **generate_kwargs}.get("num_return_sequences") or 1)
        results = [[""] * per_text for _ in texts]
        for k, i in enumerate(filled):
            results[i] = translations[k * per_text : (k + 1) * per_text]
        return [{"translation_text": text} for per_input in results for text in per_input]


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


def pipeline(task: str, model: Any, tokenizer: Any = None, framework: str | None = None, device: str | None = None, **kwargs: Any):
    """Hugging Face's pipeline() for translation: `pipeline("translation", model=..., framework="pt"|"tf")`.

    As in HF 4.x, "translation_en_to_de" names the direction (T5 then finds its prefix in the config).

    Example:

        >>> import westron
        >>> translator = westron.pipeline("translation", model=checkpoint, framework="pt")
        >>> translator(["Speak, friend, and enter.", ""], num_beams=2, max_new_tokens=8)
        [{'translation_text': '...'}, {'translation_text': ''}]
    """
    match = SUPPORTED_TASK.fullmatch(task)
    if not match:
        raise WestronError(f"unsupported task {task!r}: Westron's pipeline() supports 'translation'")
    if match.group(1):
        kwargs.setdefault("src_lang", match.group(1))
        kwargs.setdefault("tgt_lang", match.group(2))
    return TranslationPipeline(model, tokenizer=tokenizer, framework=framework, device=device, **kwargs)
