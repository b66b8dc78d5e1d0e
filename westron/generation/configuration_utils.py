"""GenerationConfig: generation_config.json, with Hugging Face's key names and defaults."""

from __future__ import annotations

import json
from typing import Any

from westron.configuration_utils import JsonConfig, PretrainedConfig
from westron.errors import CheckpointError, WestronError
from westron.hub import cached_file

GENERATION_CONFIG_NAME = "generation_config.json"

# Hugging Face's defaults. Keys a model's config.json also carries (older checkpoints keep
# `num_beams`, `max_length`, `bad_words_ids` there) seed a GenerationConfig when the checkpoint
# has no generation_config.json.
DEFAULTS: dict[str, Any] = {
    "max_length": 20,
    "max_new_tokens": None,
    "min_length": 0,
    "min_new_tokens": None,
    "do_sample": False,
    "early_stopping": False,
    "num_beams": 1,
    "temperature": 1.0,
    "top_k": 50,
    "top_p": 1.0,
    "repetition_penalty": 1.0,
    "length_penalty": 1.0,
    "no_repeat_ngram_size": 0,
    "bad_words_ids": None,
    "num_return_sequences": 1,
    "pad_token_id": None,
    "bos_token_id": None,
    "eos_token_id": None,
    "decoder_start_token_id": None,
    "forced_bos_token_id": None,
    "forced_eos_token_id": None,
    "use_cache": True,
}


class GenerationConfig(JsonConfig):
    config_file_name = GENERATION_CONFIG_NAME

    def __init__(self, **kwargs: Any):
        super().__init__(**{**DEFAULTS, **kwargs})

    @classmethod
    def from_model_config(cls, config: PretrainedConfig) -> "GenerationConfig":
        return cls(**model_config_generation_values(config))

    @classmethod
    def for_model(cls, path_or_repo_id, config: PretrainedConfig, **hub_kwargs: Any) -> "GenerationConfig":
        """generation_config.json if the checkpoint has one, else the generation keys of config.json."""
        path = cached_file(path_or_repo_id, GENERATION_CONFIG_NAME, required=False, **hub_kwargs)
        if path is None:
            return cls.from_model_config(config)
        generation_config = cls.from_dict(cls.read_json(path))
        generation_config.check(path, config)
        return generation_config

    def check(self, path: str, config: PretrainedConfig) -> None:
        """Checks every value once, at load, so a bad one is reported with its file (not at the first generate)."""
        from westron.generation.utils import resolve_generation_settings

        try:
            resolve_generation_settings(
                self,
                require_decoder_start=False,  # it may come from generate()'s arguments
                vocab_size=getattr(config, "decoder_vocab_size", None) or getattr(config, "vocab_size", None),
                max_position_embeddings=getattr(config, "max_position_embeddings", None),
            )
        except WestronError as error:
            raise CheckpointError(f"{path}: {error}") from None

    def to_diff_dict(self) -> dict[str, Any]:
        """The keys that differ from Hugging Face's defaults: what generation_config.json stores."""
        return {k: v for k, v in self.to_dict().items() if k not in DEFAULTS or DEFAULTS[k] != v}

    @classmethod
    def from_pretrained(cls, path_or_repo_id, config_file_name: str | None = None, **kwargs: Any) -> "GenerationConfig":
        """HF 4.x's signature: `config_file_name` reads another file of the folder than generation_config.json
        (`GenerationConfig.from_pretrained(folder, "translation_generation_config.json")`)."""
        return cls.from_file_in(path_or_repo_id, config_file_name or cls.config_file_name, **kwargs)

    def save_pretrained(self, save_directory, config_file_name: str | None = None, push_to_hub: bool = False, **kwargs: Any) -> None:
        """Writes generation_config.json (or `config_file_name`) into the folder, keeping its other files."""
        if push_to_hub:
            raise WestronError(
                "save_pretrained(push_to_hub=True) is not supported: push the saved folder with huggingface_hub.upload_folder"
            )
        if kwargs:
            raise WestronError(f"unexpected save_pretrained argument(s): {', '.join(sorted(kwargs))}")
        self.save_file_in(save_directory, config_file_name or self.config_file_name)

    def update(self, **kwargs: Any) -> dict[str, Any]:
        """Sets `kwargs` in place, as HF 4.x does, and returns the unused ones: always {}, since an unknown
        key is an error here (a typo would be silently ignored)."""
        unknown = sorted(k for k in kwargs if k not in DEFAULTS and not hasattr(self, k))
        if unknown:
            raise WestronError(f"unknown generation argument(s): {', '.join(unknown)}")
        for key, value in kwargs.items():
            setattr(self, key, value)
        return {}


def model_config_generation_values(config: PretrainedConfig) -> dict[str, Any]:
    """The generation settings a model's config.json carries (where HF 4.x's older checkpoints keep them)."""
    model_dict = config.to_dict()
    return {key: model_dict[key] for key in DEFAULTS if key in model_dict}


def config_generation_snapshot(config: PretrainedConfig) -> str:
    """Those settings as JSON, kept by a model when it is made, to see later whether its config was edited."""
    return json.dumps(model_config_generation_values(config), sort_keys=True)
