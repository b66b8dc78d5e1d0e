"""PretrainedConfig: a model's config.json, with Hugging Face's key names.

Every key in a loaded config.json becomes an attribute, known or not, and `to_dict()` writes
them all back, so a load/save round trip keeps keys Westron does not use (Hugging Face adds
new ones often). Subclasses declare their defaults as keyword arguments of `__init__`.
"""

from __future__ import annotations

import copy
import json
import os
from typing import Any, ClassVar

from westron.errors import CheckpointError, WestronError
from westron.file_utils import atomic_directory, atomic_write
from westron.hub import cached_file

CONFIG_NAME = "config.json"


class JsonConfig:
    """A settings object that round-trips a JSON file: every key becomes an attribute, known or not."""

    config_file_name: ClassVar[str] = CONFIG_NAME

    def __init__(self, **kwargs: Any):
        for key, value in kwargs.items():
            setattr(self, key, value)

    def __repr__(self):
        return f"{type(self).__name__} {self.to_json_string()}"

    def __eq__(self, other):
        return type(self) is type(other) and self.to_dict() == other.to_dict()

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(self.__dict__)

    def to_diff_dict(self) -> dict[str, Any]:
        """What the JSON file holds: the keys that were set (a subclass may leave out defaults)."""
        return self.to_dict()

    def to_json_string(self, use_diff: bool = True) -> str:
        """The JSON file's text; HF's use_diff=False writes every setting, defaults included."""
        return json.dumps(self.to_diff_dict() if use_diff else self.to_dict(), indent=2, sort_keys=True) + "\n"

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], **overrides: Any):
        return cls(**{**config_dict, **overrides})

    @staticmethod
    def read_json(path: str) -> dict[str, Any]:
        try:
            with open(path, encoding="utf-8") as handle:
                data = json.load(handle)
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise CheckpointError(f"{path} is not valid JSON ({error})") from None
        if not isinstance(data, dict):
            raise CheckpointError(f"{path} does not hold a JSON object")
        return data

    @classmethod
    def from_json_file(cls, path: str | os.PathLike):
        return cls.from_dict(cls.read_json(os.fspath(path)))

    def to_json_file(self, path: str | os.PathLike, use_diff: bool = True) -> None:
        with atomic_write(path) as handle:
            handle.write(self.to_json_string(use_diff=use_diff))

    @classmethod
    def get_config_dict(cls, path_or_repo_id: str | os.PathLike, **hub_kwargs: Any) -> dict[str, Any]:
        return cls.read_json(cached_file(path_or_repo_id, cls.config_file_name, **hub_kwargs))

    @classmethod
    def from_pretrained(cls, path_or_repo_id: str | os.PathLike, **kwargs: Any):
        return cls.from_file_in(path_or_repo_id, cls.config_file_name, **kwargs)

    @classmethod
    def from_file_in(cls, path_or_repo_id: str | os.PathLike, file_name: str, **kwargs: Any):
        """Reads `file_name` of a folder or Hub repo; kwargs are hub options, then overrides of its keys."""
        hub_kwargs = pop_hub_kwargs(kwargs)
        path = cached_file(path_or_repo_id, file_name, **hub_kwargs)
        data = cls.read_json(path)
        try:
            return cls.from_dict(data, **kwargs)
        except InvalidConfigError as error:
            raise CheckpointError(f"{path}: {error}") from None

    def save_pretrained(self, save_directory: str | os.PathLike) -> None:
        self.save_file_in(save_directory, self.config_file_name)

    def save_file_in(self, save_directory: str | os.PathLike, file_name: str) -> None:
        """Writes the file into the folder by one atomic folder swap, keeping the folder's other files."""
        with atomic_directory(save_directory, keep=lambda name: name != file_name) as folder:
            self.to_json_file(os.path.join(folder, file_name))


class PretrainedConfig(JsonConfig):
    model_type: ClassVar[str] = ""
    # Hugging Face's alias -> attribute (`hidden_size` reads `d_model` in Marian, for example).
    attribute_map: ClassVar[dict[str, str]] = {}
    # Defaults read through the class, so they are written to config.json only when set,
    # as Hugging Face 5 writes them.
    output_attentions: bool = False
    output_hidden_states: bool = False

    # What config.json must hold (it is user input: checked once, when the config is made, so a
    # wrong value is one line naming the key rather than a traceback from deep inside a model).
    positive_ints: ClassVar[tuple[str, ...]] = ()
    probabilities: ClassVar[tuple[str, ...]] = ()
    booleans: ClassVar[tuple[str, ...]] = ("is_encoder_decoder", "tie_word_embeddings", "use_cache")
    # (width, heads): the attention heads split the width evenly.
    head_splits: ClassVar[tuple[tuple[str, str], ...]] = ()
    token_ids: ClassVar[tuple[str, ...]] = ("pad_token_id", "eos_token_id", "decoder_start_token_id")

    def __init__(
        self,
        *,
        pad_token_id: int | None = None,
        bos_token_id: int | None = None,
        eos_token_id: int | None = None,
        decoder_start_token_id: int | None = None,
        is_encoder_decoder: bool = True,
        tie_word_embeddings: bool = True,
        use_cache: bool = True,
        **kwargs: Any,
    ):
        self.pad_token_id = pad_token_id
        self.bos_token_id = bos_token_id
        self.eos_token_id = eos_token_id
        self.decoder_start_token_id = decoder_start_token_id
        self.is_encoder_decoder = is_encoder_decoder
        self.tie_word_embeddings = tie_word_embeddings
        self.use_cache = use_cache
        kwargs.pop("model_type", None)  # a class attribute, written back by to_dict()
        super().__init__(**kwargs)
        self.validate()

    def validate(self) -> None:
        """Raises InvalidConfigError naming the first key whose value has the wrong type or range."""
        for key in self.positive_ints:
            value = getattr(self, key, None)
            if not _is_int(value) or value < 1:
                raise InvalidConfigError(key, value, "a positive integer")
        for key in self.probabilities:
            value = getattr(self, key, None)
            if not (isinstance(value, (int, float)) and not isinstance(value, bool) and 0.0 <= value <= 1.0):
                raise InvalidConfigError(key, value, "a number in [0, 1]")
        for key in self.booleans:
            value = getattr(self, key, None)
            if not isinstance(value, bool):
                raise InvalidConfigError(key, value, "true or false")
        for width, heads in self.head_splits:
            if getattr(self, width) % getattr(self, heads):
                raise InvalidConfigError(
                    heads, getattr(self, heads), f"a divisor of {width} ({getattr(self, width)})"
                )
        for key in self.token_ids:  # (their range is generation's to check: configs are often built with defaults)
            value = getattr(self, key, None)
            ids = value if isinstance(value, list) else [value]
            if value is not None and not all(_is_int(i) and i >= 0 for i in ids):
                raise InvalidConfigError(key, value, "a non-negative token id")

    # Aliases resolve in both directions so HF code (`config.hidden_size`) works unchanged.
    def __setattr__(self, key, value):
        super().__setattr__(type(self).attribute_map.get(key, key), value)

    def __getattr__(self, key):
        # Only called when normal lookup fails.
        attribute_map = type(self).attribute_map
        if key in attribute_map:
            return getattr(self, attribute_map[key])
        raise AttributeError(f"{type(self).__name__} has no attribute {key!r}")

    def to_dict(self) -> dict[str, Any]:
        data = {**super().to_dict(), "model_type": self.model_type}
        for key in RUNTIME_KEYS:  # how this process runs the model, not what the model is
            data.pop(key, None)
        return data

    @classmethod
    def from_dict(cls, config_dict: dict[str, Any], **overrides: Any) -> "PretrainedConfig":
        model_type = config_dict.get("model_type")
        if cls.model_type and model_type and model_type != cls.model_type:
            raise CheckpointError(f"config.json has model_type {model_type!r}, expected {cls.model_type!r}")
        return super().from_dict(config_dict, **overrides)


# Set by from_pretrained on the config (HF reads `config._attn_implementation`), never written to config.json.
RUNTIME_KEYS = ("_attn_implementation",)


def record_dtype(config: PretrainedConfig, dtype_name: str) -> None:
    """Writes the weights' dtype into the config's dtype / torch_dtype key, where config.json has one, as HF does on save."""
    for key in ("dtype", "torch_dtype"):
        if key in config.__dict__:
            setattr(config, key, dtype_name)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class InvalidConfigError(WestronError):
    """A config value of the wrong type or range; from_pretrained adds the file's path."""

    def __init__(self, key: str, value: Any, requirement: str):
        super().__init__(f"{key} must be {requirement}, got {value!r}")


HUB_KWARGS = ("revision", "cache_dir", "local_files_only", "token", "force_download", "subfolder")


# HF 4.x hints that change nothing in Westron, for configs, tokenizers and models alike: Westron
# never runs code from a checkpoint, and huggingface_hub always resumes downloads.
HUB_NO_OPS = ("trust_remote_code", "code_revision", "resume_download")


def pop_hub_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """Takes the huggingface_hub arguments out of a from_pretrained(**kwargs), dropping HUB_NO_OPS.

    `use_auth_token` is HF 4.x's older name for `token`; as there, giving both is an error.
    """
    for name in HUB_NO_OPS:
        kwargs.pop(name, None)
    if "use_auth_token" in kwargs:
        if kwargs.get("token") is not None:
            raise WestronError("give token= or its older name use_auth_token=, not both")
        kwargs["token"] = kwargs.pop("use_auth_token")
    return {key: kwargs.pop(key) for key in HUB_KWARGS if key in kwargs}


def peek_hub_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """The huggingface_hub arguments of a from_pretrained(**kwargs), leaving `kwargs` as it is."""
    return pop_hub_kwargs(dict(kwargs))


def resized_vocab_size(
    old_num_tokens: int, new_num_tokens: int | None, pad_to_multiple_of: int | None, pad_token_id: int | None = None
) -> int:
    """The vocabulary size resize_token_embeddings makes, checked (shared by both frameworks' models)."""
    size = old_num_tokens if new_num_tokens is None else new_num_tokens
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise WestronError(f"new_num_tokens must be a positive int, not {new_num_tokens!r}")
    if pad_to_multiple_of is not None:
        if isinstance(pad_to_multiple_of, bool) or not isinstance(pad_to_multiple_of, int) or pad_to_multiple_of < 1:
            raise WestronError(f"pad_to_multiple_of must be a positive int, not {pad_to_multiple_of!r}")
        size = -(-size // pad_to_multiple_of) * pad_to_multiple_of
    if pad_token_id is not None and size <= pad_token_id:
        raise WestronError(f"resizing the vocabulary to {size} tokens would drop the pad token (id {pad_token_id})")
    return size

