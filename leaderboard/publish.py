"""``--push-to-hub ORG/NAME``: the built site and its machine-readable results, in one commit to a
Hugging Face dataset repository, through ``huggingface_hub``'s public API.

What goes up (:func:`hub_files`): every file the build wrote (the page, the item browser and its
data, the Markdown, CSV and JSON, the figures), a ``README.md`` dataset card whose table is
``leaderboard.csv``, each row's run records (``runs/<row>/results_*.json``) and the judge
summaries the board used (``judges/<task>/<judge>/<row>.json``); samples files only when asked.

The token comes from ``HF_TOKEN`` and nowhere else (never the token file of ``huggingface-cli
login``); it is never written or printed. All files go in one ``create_commit``, so a failed
commit publishes nothing. A refused token is bad input (exit 2), a Hub that does not answer or
fails the commit is a failed request (exit 4): each one line, naming the repository.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from rolebench_eval.errors import InputError, RequestsFailed

from .model import Leaderboard

TOKEN_VARIABLE = "HF_TOKEN"
_UNSAFE = re.compile(r"[^A-Za-z0-9._+-]+")


@dataclass(frozen=True)
class Push:
    """Where to push: ``repo_id`` (ORG/NAME) with the token read from the environment."""

    repo_id: str
    token: str = field(repr=False)  # never printed, not even in a traceback's locals
    samples: bool = False


def prepare(repo_id: str, environ, samples: bool = False) -> Push:
    """Check the repository name and that a token is set, before anything is built."""
    from huggingface_hub.utils import HFValidationError, validate_repo_id

    try:
        validate_repo_id(repo_id)
    except HFValidationError as exc:
        raise InputError(None, None, "--push-to-hub", f"{repo_id!r} is not a repository name: {exc}") from None
    if repo_id.count("/") != 1:
        raise InputError(None, None, "--push-to-hub", f"{repo_id!r}: expected ORG/NAME (a user or organisation, "
                                                      "then the dataset's name)")
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        raise InputError(None, None, "HF_HUB_OFFLINE", "is set: huggingface_hub sends nothing; unset it to push")
    token = environ.get(TOKEN_VARIABLE, "").strip()
    if not token:
        raise InputError(None, None, TOKEN_VARIABLE, "--push-to-hub needs a Hugging Face token with write access "
                                                     f"in the environment variable {TOKEN_VARIABLE}")
    return Push(repo_id, token, samples)


def slug(name: str, taken: set[str]) -> str:
    """A row's name as one safe path part, unique among ``taken`` (which it joins)."""
    base = _UNSAFE.sub("_", name).strip("._") or "row"
    out, k = base, 1
    while out in taken:
        k += 1
        out = f"{base}-{k}"
    taken.add(out)
    return out


def dataset_card(board: Leaderboard, markdown: str) -> str:
    """``README.md``: the Hub's dataset viewer shows ``leaderboard.csv``; the body is the Markdown report."""
    return ("---\nconfigs:\n- config_name: default\n  data_files: leaderboard.csv\n"
            "tags:\n- rolebench\n- leaderboard\n- role-playing\n---\n\n"
            + markdown + "\nOpen `index.html` (the page) and `items.html` (every model's answers) from a download "
                         "of this repository, or serve them as a static Space; both work offline.\n")


def hub_files(board: Leaderboard, samples: bool = False) -> dict[str, Path | bytes]:
    """Path in the repository -> local file (or contents): exactly what one push uploads."""
    files: dict[str, Path | bytes] = {p.name: p for p in board.outputs.values()}
    files["README.md"] = dataset_card(board, board.outputs["markdown"].read_text(encoding="utf-8")).encode("utf-8")
    taken: set[str] = set()
    folders = {}
    for row in board.measured:
        folders[row.name] = slug(row.name, taken)
        for path in map(Path, row.files):
            if path.name.startswith("results_") or (samples and path.name.startswith("samples_")):
                files[f"runs/{folders[row.name]}/{path.name}"] = path
    for (name, task, judge), path in sorted(board.judge_summaries.items()):
        if name in folders:
            files[f"judges/{task}/{slug(judge, set())}/{folders[name]}.json"] = Path(path)
    checked: set[str] = set()
    for panel in board.health:  # <out>/health/<judge model>/<set>/health.json of `judge check`
        path = Path(panel["path"])
        name = slug(f"{panel['summary'].judge_model}.{path.parent.name}", checked)
        files[f"judges/health/{name}.json"] = path
    return dict(sorted(files.items()))


def _refused(exc: Exception) -> int | None:
    """The HTTP status of a Hub answer that refuses the token (or its rights), else None."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if status in (401, 403) else None


def _network_errors() -> tuple[type[BaseException], ...]:
    """What the Hub client raises when the Hub cannot be reached: its HTTP library's transport errors.

    huggingface_hub has spoken through requests (< 1), httpx (1.x) and httpx2 (2.x); the library is read off
    the public ``get_session()`` instead of importing one by name (requests' errors are OSErrors)."""
    from huggingface_hub import get_session

    http = sys.modules.get(type(get_session()).__module__.partition(".")[0])
    transport = getattr(http, "TransportError", None)
    return (transport, OSError) if isinstance(transport, type) else (OSError,)


def push(board: Leaderboard, target: Push) -> tuple[str, list[str]]:
    """Upload :func:`hub_files` in one commit; returns the commit's URL and the paths uploaded.

    Raises:
        InputError: the Hub refused the token (HTTP 401 or 403).
        RequestsFailed: the Hub could not be reached, or failed the commit; nothing was published.
    """
    from huggingface_hub import CommitOperationAdd, HfApi
    from huggingface_hub.errors import HfHubHTTPError

    files = hub_files(board, target.samples)
    api = HfApi(token=target.token)
    where = f"{api.endpoint}/datasets/{target.repo_id}"
    try:
        api.create_repo(target.repo_id, repo_type="dataset", exist_ok=True)
        info = api.create_commit(
            target.repo_id, repo_type="dataset",
            operations=[CommitOperationAdd(path_in_repo=path, path_or_fileobj=src if isinstance(src, bytes)
                                           else str(src)) for path, src in files.items()],
            commit_message=f"RoleBench leaderboard: {len(board.measured)} measured rows "
                           f"(rolebench-eval {board.settings.get('package_version', '')})")
    except HfHubHTTPError as exc:
        status = getattr(exc.response, "status_code", None)
        said = _scrub(" ".join(str(exc).split()), target.token)
        if _refused(exc):
            raise InputError(where, None, TOKEN_VARIABLE, f"the Hub refused the token (HTTP {status}): {said}; "
                                                          "nothing was published") from None
        raise RequestsFailed(f"{where}: the Hub did not take the commit (HTTP {status}): {said}; nothing was "
                             "published, rerun to try again") from None
    except _network_errors() as exc:
        raise RequestsFailed(f"{where}: cannot reach the Hub ({type(exc).__name__}: "
                             f"{_scrub(str(exc), target.token)}); nothing was published") from None
    return info.commit_url, list(files)


def _scrub(text: str, token: str) -> str:
    return text.replace(token, "***") if token else text
