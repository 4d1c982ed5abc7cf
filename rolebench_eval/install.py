"""The ``pip install`` command that adds an extra to this package, the way it was installed.

Until the distribution is published, ``pip install 'rolebench-eval[judge]'`` names nothing an
index has; a source checkout needs ``pip install '.[judge]'``. pip records how it installed a
distribution in its ``direct_url.json`` (PEP 610): absent for an index install, ``dir_info``
(``editable`` or not) for a local folder, ``archive_info`` / ``vcs_info`` for a file or URL.
"""

from __future__ import annotations

import json
import os
from importlib import metadata
from urllib.parse import unquote, urlsplit
from urllib.request import url2pathname

DISTRIBUTION = "rolebench-eval"


def direct_url() -> dict | None:
    """pip's PEP 610 record of where this package was installed from; None for an index install.

    Only an installed copy counts (it has an INSTALLER file): in a checkout's root, the
    ``rolebench_eval.egg-info`` a build leaves there comes first on ``sys.path`` and records nothing.
    """
    installed = next((d for d in metadata.distributions(name=DISTRIBUTION) if d.read_text("INSTALLER")), None)
    text = installed.read_text("direct_url.json") if installed else None
    return json.loads(text) if text else None


def install_command(extra: str, origin: dict | None = None, cwd: str | None = None) -> str:
    """``pip install ...`` bringing ``extra`` (e.g. ``"judge"``) for the install described by ``origin``.

    ``origin`` is a PEP 610 record (default: this installation's); ``cwd`` the folder the user
    is in (default: the current one), so a checkout installed from there gets ``'.[extra]'``.
    """
    origin = direct_url() if origin is None else origin
    if not origin or "url" not in origin:
        return f"pip install '{DISTRIBUTION}[{extra}]'"
    url = origin["url"]
    if "dir_info" in origin and url.startswith("file:"):
        path = url2pathname(unquote(urlsplit(url).path))
        here = os.path.realpath(cwd or os.getcwd())
        target = "." if os.path.realpath(path) == here else path
        editable = "-e " if origin["dir_info"].get("editable") else ""
        return f"pip install {editable}'{target}[{extra}]'"
    if "vcs_info" in origin:
        commit = origin["vcs_info"].get("requested_revision") or origin["vcs_info"].get("commit_id")
        url = f"{origin['vcs_info']['vcs']}+{url}" + (f"@{commit}" if commit else "")
    return f"pip install '{DISTRIBUTION}[{extra}] @ {url}'"
