"""Reading tokenizer folders written before `added_tokens_decoder` existed (transformers < 4.34).

Such a folder keeps its special tokens in special_tokens_map.json and its added tokens (token ->
id) in added_tokens.json, beside a tokenizer_config.json that may lack both. `complete_legacy_config`
folds them into the config, so `PreTrainedTokenizer.__init__` sees one shape of config whatever
wrote the folder. Westron never writes added_tokens.json.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from westron.configuration_utils import JsonConfig
from westron.tokenization_utils_base import (
    ADDED_TOKENS_FILE,
    SPECIAL_TOKEN_NAMES,
    SPECIAL_TOKENS_MAP_FILE,
    AddedToken,
    token_text,
)

EXTRA_TOKEN_LISTS = ("additional_special_tokens", "extra_special_tokens")


def complete_legacy_config(
    config: dict[str, Any], resolve: Callable[..., str | None], overrides: Mapping[str, Any]
) -> dict[str, Any]:
    """`config` (tokenizer_config.json) completed from an older folder's extra files.

    resolve(filename, required=False) -> the local path of a file in the folder, or None.
    overrides: the caller's keyword arguments; a special token given there wins over the folder's.
    A config that already has `added_tokens_decoder` is returned unchanged.
    """
    if "added_tokens_decoder" in config:
        return config
    config = dict(config)
    map_path = resolve(SPECIAL_TOKENS_MAP_FILE, required=False)
    special_tokens_map = JsonConfig.read_json(map_path) if map_path else {}
    for key, value in special_tokens_map.items():
        if overrides.get(key):
            continue
        if key in EXTRA_TOKEN_LISTS and isinstance(value, list):
            merge_extra_tokens(config, key, value)
        else:
            config[key] = value
    added_path = resolve(ADDED_TOKENS_FILE, required=False)
    if added_path:
        config["added_tokens_decoder"] = added_tokens_decoder(config, JsonConfig.read_json(added_path))
    return config


def merge_extra_tokens(config: dict[str, Any], key: str, tokens: list) -> None:
    """Adds special_tokens_map.json's list of extra special tokens to the config's, as Hugging Face:
    `extra_special_tokens` add to the config's list, `additional_special_tokens` only count when
    the config has none. The result is kept as `extra_special_tokens`."""
    existing = config.get("extra_special_tokens") or config.get("additional_special_tokens") or []
    if isinstance(existing, Mapping) or (existing and key == "additional_special_tokens"):
        return
    existing = [token_text(token) for token in existing]
    config.pop("additional_special_tokens", None)
    config["extra_special_tokens"] = existing + [token for token in map(token_text, tokens) if token not in existing]


def added_tokens_decoder(config: Mapping[str, Any], added_tokens: Mapping[str, int]) -> dict[int, AddedToken]:
    """added_tokens.json (token -> id) as `added_tokens_decoder`; the config's special tokens are special."""
    special = {token_text(config[name]) for name in SPECIAL_TOKEN_NAMES if config.get(name)}
    special.update(token_text(token) for token in config.get("additional_special_tokens") or ())
    return {index: AddedToken(token, special=token in special) for token, index in added_tokens.items()}
