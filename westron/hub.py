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
) -> str | None:
    """Returns the local path of `filename` in a folder or Hub repo, or None if it is optional and absent."""
    path_or_repo_id = os.fspath(path_or_repo_id)
    if not os.path.exists(path_or_repo_id):
        recover_directory(path_or_repo_id)  # a save killed between its two renames: the folder is at .old
    if is_local(path_or_repo_id):
        path = os.path.join(path_or_repo_id, filename)
        if os.path.isfile(path):
            return path
        if required:
            raise CheckpointError(f"{path_or_repo_id!r} has no {filename}")
        return None
    if os.path.exists(path_or_repo_id):
        raise CheckpointError(f"{path_or_repo_id!r} is a file; a model is a folder")
    if not _looks_like_repo_id(path_or_repo_id):
        raise CheckpointError(f"model folder {path_or_repo_id!r} does not exist")
    return _hub_download(path_or_repo_id, filename, required, revision, cache_dir, local_files_only, token)


def _looks_like_repo_id(name: str) -> bool:
    parts = name.split("/")
    return len(parts) <= 2 and all(parts) and not name.startswith((".", "~"))


def _hub_download(repo_id, filename, required, revision, cache_dir, local_files_only, token):
    import huggingface_hub
    from huggingface_hub.utils import EntryNotFoundError, LocalEntryNotFoundError, RepositoryNotFoundError

    try:
        return huggingface_hub.hf_hub_download(
            repo_id,
            filename,
            revision=revision,
            cache_dir=cache_dir,
            local_files_only=local_files_only,
            token=token,
        )
    except LocalEntryNotFoundError:
        # Offline (HF_HUB_OFFLINE=1 or no network) and not in the cache. An optional file that was
        # never cached may simply not exist in the repo, so only a required file is an error.
        if required:
            raise CheckpointError(
                f"{repo_id!r} is not a local folder, and {filename} is not in the Hugging Face cache "
                "(offline or Hub unreachable)"
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
