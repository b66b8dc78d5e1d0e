"""Finding checkpoint files: a local folder, or a Hugging Face Hub repo id through huggingface_hub.

Hub downloads go through huggingface_hub and its cache, so HF_HUB_OFFLINE, HF_HOME and tokens
behave exactly as they do for Hugging Face Transformers.
"""

from __future__ import annotations

import os

from westron.errors import CheckpointError
from westron.file_utils import recover_directory


def is_local(path_or_repo_id: str | os.PathLike) -> bool:
    return os.path.isdir(path_or_repo_id)


def cached_file(
    path_or_repo_id: str | os.PathLike,
    filename: str,
    *,
    required: bool = True,
    revision: str | None = None,
    cache_dir: str | os.PathLike | None = None,
    local_files_only: bool = False,
    token: str | bool | None = None,
    force_download: bool = False,
    subfolder: str = "",
) -> str | None:
    """Returns the local path of `filename` in a folder or Hub repo, or None if it is optional and absent.

    `subfolder` is a folder inside the checkpoint (local or on the Hub), as in Hugging Face.
    """
    path_or_repo_id = os.fspath(path_or_repo_id)
    if not os.path.exists(path_or_repo_id):
        recover_directory(path_or_repo_id)  # a save killed between its two renames: the folder is at .old
    if is_local(path_or_repo_id):
        if revision not in (None, "main"):  # a folder has one version: reading it would silently ignore the revision
            raise CheckpointError(f"revision={revision!r} applies to Hub repos; {path_or_repo_id!r} is a local folder (check the revision out there)")
        path = os.path.join(path_or_repo_id, subfolder or "", filename)
        if os.path.isfile(path):
            return path
        if required:
            raise CheckpointError(f"{os.path.join(path_or_repo_id, subfolder or '')!r} has no {filename}")
        return None
    if os.path.exists(path_or_repo_id):
        raise CheckpointError(f"{path_or_repo_id!r} is a file; a model is a folder")
    if not _looks_like_repo_id(path_or_repo_id):
        raise CheckpointError(f"model folder {path_or_repo_id!r} does not exist")
    options = {"force_download": force_download, "subfolder": subfolder or None}
    return _hub_download(path_or_repo_id, filename, required, revision, cache_dir, local_files_only, token, options)


def _looks_like_repo_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) <= 2 and all(parts) and not name.startswith((".", "~"))


def _hub_download(repo_id, filename, required, revision, cache_dir, local_files_only, token, options):
    import huggingface_hub
    from huggingface_hub import constants
    from huggingface_hub.utils import EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError

    if not local_files_only and not constants.is_offline_mode() and not hub_reachable():
        # huggingface_hub would retry for most of a minute; the cache is all there is.
        local_files_only = True
    try:
        return huggingface_hub.hf_hub_download(
            repo_id,
            filename,
            revision=revision,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
            token=token,
            **options,
        )
    except LocalEntryNotFoundError:
        # Offline (HF_HUB_OFFLINE=1 or no network) and not in the cache. An optional file that was
        # never cached may simply not exist in the repo, so only a required file is an error.
        if required:
            raise CheckpointError(
                f"no folder {repo_id!r} exists here, and as a Hub repo id it is not in the Hugging Face cache "
                f"({filename}) while the Hub is unreachable or HF_HUB_OFFLINE is set"
            ) from None
        return None
    except EntryNotFoundError:  # after its subclass LocalEntryNotFoundError
        if required:
            raise CheckpointError(f"Hub repo {repo_id!r} has no {filename}") from None
        return None
    except RepositoryNotFoundError:
        raise CheckpointError(f"{repo_id!r} is neither a local folder nor a Hub repo") from None
    except (ValueError, huggingface_hub.errors.HFValidationError) as error:
        raise CheckpointError(f"{repo_id!r} is not a model folder or Hub repo id ({error})") from None


_REACHABLE: dict[str, bool] = {}


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether a TCP connection to the Hub's endpoint opens within `timeout` (asked once per process)."""
    import socket
    from urllib.parse import urlsplit

    from huggingface_hub import constants

    endpoint = urlsplit(constants.ENDPOINT)
    if endpoint.hostname not in _REACHABLE:
        port = endpoint.port or (443 if endpoint.scheme == "https" else 80)
        try:
            socket.create_connection((endpoint.hostname, port), timeout=timeout).close()
            _REACHABLE[endpoint.hostname] = True
        except OSError:
            _REACHABLE[endpoint.hostname] = False
    return _REACHABLE[endpoint.hostname]
