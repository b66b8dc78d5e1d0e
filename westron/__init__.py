"""Westron: neural machine translation with the same Transformer models in PyTorch and TensorFlow.

`import westron` loads neither framework. Each public name below is imported the first time it is
used, so `westron.AutoModelForSeq2SeqLM` loads PyTorch and `westron.TFAutoModelForSeq2SeqLM`
loads TensorFlow, each only when touched.
"""

import importlib

__version__ = "0.1.0"

# public name -> module that defines it
_LAZY_NAMES = {
    "PretrainedConfig": "westron.configuration_utils",
    "GenerationConfig": "westron.generation.configuration_utils",
    "WestronError": "westron.errors",
    "AutoConfig": "westron.models.auto",
    "AutoTokenizer": "westron.models.auto",
    "AutoModel": "westron.models.auto",
    "TFAutoModel": "westron.models.auto",
    "AutoModelForSeq2SeqLM": "westron.models.auto",
    "TFAutoModelForSeq2SeqLM": "westron.models.auto",
    "pipeline": "westron.pipelines",
    "DataCollatorForSeq2Seq": "westron.data_collator",
    "attention": "westron.attention_maps",
    "AttentionMaps": "westron.attention_maps",
    "TranslationPipeline": "westron.pipelines",
    "MarianConfig": "westron.models.marian.configuration_marian",
    "MarianTokenizer": "westron.models.marian.tokenization_marian",
    "MarianModel": "westron.models.marian.modeling_marian",
    "MarianMTModel": "westron.models.marian.modeling_marian",
    "TFMarianModel": "westron.models.marian.modeling_tf_marian",
    "TFMarianMTModel": "westron.models.marian.modeling_tf_marian",
    "T5Config": "westron.models.t5.configuration_t5",
    "MT5Config": "westron.models.t5.configuration_t5",
    "T5Tokenizer": "westron.models.t5.tokenization_t5",
    "T5Model": "westron.models.t5.modeling_t5",
    "T5ForConditionalGeneration": "westron.models.t5.modeling_t5",
    "TFT5Model": "westron.models.t5.modeling_tf_t5",
    "TFT5ForConditionalGeneration": "westron.models.t5.modeling_tf_t5",
    "M2M100Config": "westron.models.m2m_100.configuration_m2m_100",
    "M2M100Tokenizer": "westron.models.m2m_100.tokenization_m2m_100",
    "NllbTokenizer": "westron.models.m2m_100.tokenization_nllb",
    "M2M100Model": "westron.models.m2m_100.modeling_m2m_100",
    "M2M100ForConditionalGeneration": "westron.models.m2m_100.modeling_m2m_100",
    "TFM2M100Model": "westron.models.m2m_100.modeling_tf_m2m_100",
    "TFM2M100ForConditionalGeneration": "westron.models.m2m_100.modeling_tf_m2m_100",
}

__all__ = sorted(_LAZY_NAMES) + ["__version__"]


def __getattr__(name):
    module_name = _LAZY_NAMES.get(name)
    if module_name is None:
        raise AttributeError(f"module 'westron' has no attribute {name!r}")
    value = getattr(importlib.import_module(module_name), name)
    globals()[name] = value  # cache: the next lookup skips __getattr__
    return value


def __dir__():
    return __all__
