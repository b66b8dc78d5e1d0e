"""Auto classes: config.json's model_type picks the config, tokenizer and PT / TF model classes.

Entries are dotted paths, imported on first use, so the registry loads no framework.
"""

from __future__ import annotations

import importlib
import os
from typing import Any, NamedTuple

from westron.configuration_utils import JsonConfig, PretrainedConfig, peek_hub_kwargs, pop_hub_kwargs
from westron.errors import CheckpointError
from westron.hub import cached_file


class ModelFamily(NamedTuple):
    config: str
    tokenizer: str
    pt_model: str  # the seq2seq LM class (HF's XForConditionalGeneration / MarianMTModel)
    tf_model: str
    pt_base: str  # the encoder-decoder without the LM head (HF's XModel)
    tf_base: str


MODEL_FAMILIES: dict[str, ModelFamily] = {
    "marian": ModelFamily(
        config="westron.models.marian.configuration_marian.MarianConfig",
        tokenizer="westron.models.marian.tokenization_marian.MarianTokenizer",
        pt_model="westron.models.marian.modeling_marian.MarianMTModel",
        tf_model="westron.models.marian.modeling_tf_marian.TFMarianMTModel",
        pt_base="westron.models.marian.modeling_marian.MarianModel",
        tf_base="westron.models.marian.modeling_tf_marian.TFMarianModel",
    ),
    "t5": ModelFamily(
        config="westron.models.t5.configuration_t5.T5Config",
        tokenizer="westron.models.t5.tokenization_t5.T5Tokenizer",
        pt_model="westron.models.t5.modeling_t5.T5ForConditionalGeneration",
        tf_model="westron.models.t5.modeling_tf_t5.TFT5ForConditionalGeneration",
        pt_base="westron.models.t5.modeling_t5.T5Model",
        tf_base="westron.models.t5.modeling_tf_t5.TFT5Model",
    ),
    # mT5: T5 v1.1's architecture and weight names; its own config defaults, the same classes.
    "mt5": ModelFamily(
        config="westron.models.t5.configuration_t5.MT5Config",
        tokenizer="westron.models.t5.tokenization_t5.T5Tokenizer",
        pt_model="westron.models.t5.modeling_t5.T5ForConditionalGeneration",
        tf_model="westron.models.t5.modeling_tf_t5.TFT5ForConditionalGeneration",
        pt_base="westron.models.t5.modeling_t5.T5Model",
        tf_base="westron.models.t5.modeling_tf_t5.TFT5Model",
    ),
    # M2M100 and NLLB-200 (an M2M100 checkpoint whose tokenizer_config.json names NllbTokenizer).
    "m2m_100": ModelFamily(
        config="westron.models.m2m_100.configuration_m2m_100.M2M100Config",
        tokenizer="westron.models.m2m_100.tokenization_m2m_100.M2M100Tokenizer",
        pt_model="westron.models.m2m_100.modeling_m2m_100.M2M100ForConditionalGeneration",
        tf_model="westron.models.m2m_100.modeling_tf_m2m_100.TFM2M100ForConditionalGeneration",
        pt_base="westron.models.m2m_100.modeling_m2m_100.M2M100Model",
        tf_base="westron.models.m2m_100.modeling_tf_m2m_100.TFM2M100Model",
    ),
}


# tokenizer_config.json's tokenizer_class -> Westron's class; a "...Fast" name means the same class.
# It picks the tokenizer before model_type does (NLLB checkpoints are model_type m2m_100).
TOKENIZER_CLASSES: dict[str, str] = {
    "MarianTokenizer": "westron.models.marian.tokenization_marian.MarianTokenizer",
    "T5Tokenizer": "westron.models.t5.tokenization_t5.T5Tokenizer",
    "MT5Tokenizer": "westron.models.t5.tokenization_t5.T5Tokenizer",
    "M2M100Tokenizer": "westron.models.m2m_100.tokenization_m2m_100.M2M100Tokenizer",
    "NllbTokenizer": "westron.models.m2m_100.tokenization_nllb.NllbTokenizer",
}


def import_object(dotted_path: str) -> Any:
    module_name, _, name = dotted_path.rpartition(".")
    return getattr(importlib.import_module(module_name), name)


def family_for(model_type: str | None, source: str) -> ModelFamily:
    if model_type not in MODEL_FAMILIES:
        known = ", ".join(sorted(MODEL_FAMILIES))
        raise CheckpointError(f"{source}: unknown model_type {model_type!r} (Westron supports: {known})")
    return MODEL_FAMILIES[model_type]


def _family_of_checkpoint(path_or_repo_id, hub_kwargs) -> tuple[ModelFamily, dict[str, Any]]:
    config_dict = PretrainedConfig.get_config_dict(path_or_repo_id, **hub_kwargs)
    return family_for(config_dict.get("model_type"), f"{os.fspath(path_or_repo_id)}/config.json"), config_dict


class AutoConfig:
    @staticmethod
    def from_pretrained(path_or_repo_id: str | os.PathLike, **kwargs: Any) -> PretrainedConfig:
        family, config_dict = _family_of_checkpoint(path_or_repo_id, pop_hub_kwargs(kwargs))
        return import_object(family.config).from_dict(config_dict, **kwargs)

    @staticmethod
    def for_model(model_type: str, **kwargs: Any) -> PretrainedConfig:
        return import_object(family_for(model_type, "AutoConfig.for_model").config)(**kwargs)


class AutoTokenizer:
    @staticmethod
    def from_pretrained(path_or_repo_id: str | os.PathLike, **kwargs: Any):
        """The class named by tokenizer_config.json's tokenizer_class, else model_type's default.

        Example:

            >>> from westron import AutoTokenizer
            >>> tokenizer = AutoTokenizer.from_pretrained(checkpoint)
            >>> type(tokenizer).__name__
            'MarianTokenizer'
        """
        hub_kwargs = peek_hub_kwargs(kwargs)
        config_path = cached_file(path_or_repo_id, "tokenizer_config.json", required=False, **hub_kwargs)
        name = JsonConfig.read_json(config_path).get("tokenizer_class") if config_path else None
        if isinstance(name, str) and name.removesuffix("Fast") in TOKENIZER_CLASSES:
            tokenizer_class = TOKENIZER_CLASSES[name.removesuffix("Fast")]
        else:
            tokenizer_class = _family_of_checkpoint(path_or_repo_id, hub_kwargs)[0].tokenizer
        return import_object(tokenizer_class).from_pretrained(path_or_repo_id, **kwargs)


class _AutoModel:
    """Picks a family's model class by model_type; `framework_field` names the ModelFamily field."""

    framework_field = ""

    @classmethod
    def model_class(cls, model_type: str | None, source: str):
        return import_object(getattr(family_for(model_type, source), cls.framework_field))

    @classmethod
    def from_pretrained(cls, path_or_repo_id: str | os.PathLike, **kwargs: Any):
        """The family's model class, by config.json's model_type, loaded with its `from_pretrained`.

        Example:

            >>> from westron import AutoModelForSeq2SeqLM, TFAutoModelForSeq2SeqLM
            >>> type(AutoModelForSeq2SeqLM.from_pretrained(checkpoint)).__name__
            'MarianMTModel'
            >>> type(TFAutoModelForSeq2SeqLM.from_pretrained(checkpoint)).__name__
            'TFMarianMTModel'
        """
        hub_kwargs = peek_hub_kwargs(kwargs)
        family, _ = _family_of_checkpoint(path_or_repo_id, hub_kwargs)
        return import_object(getattr(family, cls.framework_field)).from_pretrained(path_or_repo_id, **kwargs)

    @classmethod
    def from_config(cls, config: PretrainedConfig):
        return cls.model_class(config.model_type, "from_config")(config)


class AutoModel(_AutoModel):
    """The PyTorch encoder-decoder without LM head for a checkpoint (`MarianModel` for an opus-mt folder).

    It loads a seq2seq LM checkpoint too (the head is left out), as Hugging Face's AutoModel does.
    """

    framework_field = "pt_base"


class TFAutoModel(_AutoModel):
    """The TensorFlow encoder-decoder without LM head for a checkpoint (`TFMarianModel` for an opus-mt folder)."""

    framework_field = "tf_base"


class AutoModelForSeq2SeqLM(_AutoModel):
    """The PyTorch seq2seq model for a checkpoint (`MarianMTModel` for an opus-mt folder)."""

    framework_field = "pt_model"


class TFAutoModelForSeq2SeqLM(_AutoModel):
    """The TensorFlow seq2seq model for a checkpoint (`TFMarianMTModel` for an opus-mt folder)."""

    framework_field = "tf_model"
