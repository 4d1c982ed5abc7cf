"""RoleBench files from the Hugging Face Hub: fast when the cache has them, one clear line when it fails.

What every online user gets by default. ``huggingface_hub`` alone would ask the Hub about
every file on every run (a HEAD request; 10 s of waiting per file, retried, when the Hub
is down or hangs). Here:

- a file the cache already marked absent (``.no_exist``) is absent, without a request;
- a run pinned to a commit (``--metadata '{"revision": "<sha>"}'``) whose files are cached
  sends no request at all;
- the first metadata request has a short timeout (``ROLEBENCH_HUB_TIMEOUT``, 3 s); if the
  Hub does not answer (refused, timed out, 5xx), the rest of the run reads the cache only,
  and says so once;
- a failure is one line naming the cause (offline mode, not found, unreachable, bad
  revision) and the three ways to point at a local copy instead.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

from rolebench_eval.data import HUB_REPO
from rolebench_eval.errors import InputError

log = logging.getLogger(__name__)

LOCAL_COPY = ("point at a local copy instead: --metadata '{\"data_dir\": \"/path/to/RoleBench\"}' (lm-eval), "
              "the environment variable ROLEBENCH_DATA_DIR, or data_dir=... (Python)")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
# Why the Hub is not asked any more in this process (None: ask it); whether it was asked yet.
_down: str | None = None
_probed = False


def _timeout() -> float:
    try:
        return float(os.environ.get("ROLEBENCH_HUB_TIMEOUT", "3"))
    except ValueError:
        return 3.0


def _where(revision: str, relpath: str) -> str:
    return f"{HUB_REPO}@{revision}/{relpath}"


def _cached(relpath: str, revision: str):
    from huggingface_hub import try_to_load_from_cache

    return try_to_load_from_cache(HUB_REPO, relpath, revision=revision, repo_type="dataset")


def _unreachable(err: Exception) -> str | None:
    """Why ``err`` means the Hub did not answer (None when it did answer)."""
    from huggingface_hub.errors import HfHubHTTPError

    if isinstance(err, HfHubHTTPError):
        status = getattr(err.response, "status_code", None)
        return f"HTTP {status}" if status in (408, 429, 500, 502, 503, 504) else None
    name = type(err).__name__
    if isinstance(err, (OSError, TimeoutError)) or any(k in name for k in ("Timeout", "Network", "Connect", "Protocol")):
        return f"{name}: {str(err)[:120]}" if str(err) else name
    return None


def _answered(err: Exception, relpath: str, revision: str) -> Path | None:
    """The Hub answered with an error: a missing optional file is None, the rest one line."""
    from huggingface_hub.errors import (EntryNotFoundError, GatedRepoError, RepositoryNotFoundError,
                                        RevisionNotFoundError)

    if isinstance(err, RevisionNotFoundError):
        raise InputError(_where(revision, relpath), None, "revision",
                         f"revision {revision!r} does not exist in the Hub dataset {HUB_REPO}: pass an existing "
                         f"commit, branch or tag (--metadata '{{\"revision\": ...}}'), or {LOCAL_COPY}") from None
    if isinstance(err, (RepositoryNotFoundError, GatedRepoError)):
        raise InputError(_where(revision, relpath), None, None,
                         f"the Hub dataset {HUB_REPO} was not found or is not accessible "
                         f"({type(err).__name__}); {LOCAL_COPY}") from None
    if isinstance(err, EntryNotFoundError):
        return None
    raise InputError(_where(revision, relpath), None, None,
                     f"the Hub refused the request ({type(err).__name__}: {str(err)[:160]}); {LOCAL_COPY}") from None


def fetch(relpath: str, revision: str) -> Path | None:
    """The cached path of ``relpath`` in the Hub dataset at ``revision``; None when the dataset lacks it."""
    from huggingface_hub import _CACHED_NO_EXIST, constants, hf_hub_download

    global _down
    cached = _cached(relpath, revision)
    if cached is _CACHED_NO_EXIST:
        return None  # an earlier run saw the Hub answer "no such file" for this commit
    if isinstance(cached, str) and (_COMMIT.match(revision) or _down or constants.is_offline_mode()):
        return Path(cached)
    if constants.is_offline_mode() or _down:
        cause = ("offline mode is on (HF_HUB_OFFLINE=1)" if constants.is_offline_mode()
                 else f"the Hub did not answer ({_down})")
        raise InputError(_where(revision, relpath), None, None,
                         f"not in the local Hugging Face cache and {cause}; {LOCAL_COPY}")
    try:
        _probe_once(relpath, revision)
        return Path(hf_hub_download(HUB_REPO, relpath, repo_type="dataset", revision=revision,
                                    etag_timeout=_timeout()))
    except Exception as err:  # noqa: BLE001  every failure is named below, none is swallowed
        why = _unreachable(err)
        if why is None:
            return _answered(err, relpath, revision)
        _down = why
        if isinstance(cached, str):
            log.warning("the Hugging Face Hub did not answer (%s); reading RoleBench from the local cache "
                        "(the last %s seen) for the rest of this run", why, revision)
            return Path(cached)
        raise InputError(_where(revision, relpath), None, None,
                         f"the Hub is unreachable ({why}) and the file is not in the local cache; "
                         f"{LOCAL_COPY}") from None


def _probe_once(relpath: str, revision: str) -> None:
    """The process's first Hub request: one HEAD with the short timeout and no retries.

    huggingface_hub waits up to 10 s per file (and retries) before it falls back to the
    cache; one quick question first tells whether the Hub answers at all. An error that is
    an answer (404, ...) is left for ``hf_hub_download`` to report and cache as usual.
    """
    global _probed
    if _probed:
        return
    _probed = True
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    try:
        get_hf_file_metadata(hf_hub_url(HUB_REPO, relpath, repo_type="dataset", revision=revision),
                             timeout=_timeout())
    except Exception as err:  # noqa: BLE001
        if _unreachable(err) is not None:
            raise


def reset() -> None:
    """Forget what this process learnt about the Hub (tests; a long-lived process that wants to retry)."""
    global _down, _probed
    _down, _probed = None, False
