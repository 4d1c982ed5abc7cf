"""Shared fixtures: offline settings, the fixture and real RoleBench copies, tiny models."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

# Before any Hugging Face library is imported: never touch the network, never the user's cache.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("HF_HOME", tempfile.mkdtemp(prefix="rolebench-tests-hf-"))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# Two cores, shared: one torch thread per process is faster here and bit-reproducible.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import importlib.util  # noqa: E402
import signal  # noqa: E402

# Ctrl-C tests send SIGINT to the commands they start. A suite started in the background of a
# non-interactive shell (`pytest &`, as `scripts/constraints.py newest` may be) inherits SIGINT
# ignored, and every child would too (an ignored signal survives exec): the commands would never
# see the Ctrl-C. A handler is reset to the default on exec, so installing Python's own here
# gives every child the SIGINT of a terminal.
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"
# Read once, before the autouse fixture below hides it from the tests themselves.
REAL_DATA_DIR = Path(os.environ.get("ROLEBENCH_DATA_DIR") or REPO.parent / "shared" / "rolebench")


# The fast loop: plain `pytest` leaves out what these markers name; `pytest --full` runs everything
# (the README's test command and .ci/run do).
LONG_MARKERS = ("slow", "integration")


def pytest_addoption(parser):
    parser.addoption("--full", action="store_true",
                     help=f"also run the tests marked {' or '.join(LONG_MARKERS)} (left out by default)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--full"):
        return
    long = [item for item in items if any(item.get_closest_marker(m) for m in LONG_MARKERS)]
    if long:
        config.hook.pytest_deselected(items=long)
        left_out = set(long)
        items[:] = [item for item in items if item not in left_out]


def pytest_report_header(config):
    if not config.getoption("--full"):
        return f"fast loop: tests marked {' or '.join(LONG_MARKERS)} are left out (run them with --full)"


@pytest.fixture(autouse=True)
def _no_data_dir_from_env(monkeypatch):
    """Tests choose their data explicitly; a developer's ROLEBENCH_DATA_DIR must not leak in."""
    monkeypatch.delenv("ROLEBENCH_DATA_DIR", raising=False)


@pytest.fixture(scope="session")
def fixture_data_dir() -> Path:
    """Our own small RoleBench copy, in the dataset's layout (invented text)."""
    return FIXTURES / "rolebench"


@pytest.fixture(scope="session")
def real_data_dir() -> Path:
    """The real RoleBench data: $ROLEBENCH_DATA_DIR, else ../shared/rolebench. Never skipped."""
    if not (REAL_DATA_DIR / "rolebench-zh").is_dir():
        pytest.fail(f"real RoleBench data not found at {REAL_DATA_DIR}; set ROLEBENCH_DATA_DIR")
    return REAL_DATA_DIR


@pytest.fixture(scope="session")
def mt_data_dir() -> Path:
    """Invented data with nine items per role (six in the general splits), for conversations of several turns."""
    return FIXTURES / "rolebench_mt"


@pytest.fixture(scope="session")
def echo_model():
    """An lm-eval model that answers with its whole prompt: deterministic, and different whenever the prompt is."""
    from lm_eval.api.model import LM

    class EchoPrompt(LM):
        def generate_until(self, requests, disable_tqdm: bool = False):
            return [request.args[0] for request in requests]

        def loglikelihood(self, requests, disable_tqdm: bool = False):
            raise NotImplementedError

        def loglikelihood_rolling(self, requests, disable_tqdm: bool = False):
            raise NotImplementedError

    return EchoPrompt()


def _corpus() -> list[str]:
    """Text to train the tiny tokenizer on: our fixtures and our own source files."""
    texts = [p.read_text(encoding="utf-8") for p in sorted(FIXTURES.rglob("*.jsonl"))]
    texts += [p.read_text(encoding="utf-8") for p in sorted((REPO / "rolebench_eval").glob("*.py"))]
    return texts


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    """A tiny random Llama whose chat template accepts system messages."""
    from rolebench_eval.tiny import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama"), _corpus())


@pytest.fixture(scope="session")
def tiny_llama_no_system(tmp_path_factory) -> Path:
    """A tiny random Llama whose chat template raises on a system message."""
    from rolebench_eval.tiny import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama-nosys"), _corpus(), system_ok=False)


def _load_module(path: Path):
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The local OpenAI-compatible server (judges, generate): `llm_server` starts one per test.
_llm = _load_module(FIXTURES / "llm" / "server_fixture.py")
llm_server = _llm.llm_server


@pytest.fixture(scope="session")
def fake_server():
    """The server class itself, for module-scoped fixtures that run it as a context manager."""
    return _llm.FakeServer


_serve = _load_module(FIXTURES / "llm" / "transformers_serve.py")


# A judge's prompt (system, profile, question, two answers) runs to about a thousand of the tiny
# tokenizer's tokens; the served model must declare room for it (transformers serve refuses more).
SERVED_CONTEXT = 4096


@pytest.fixture(scope="session")
def tiny_llama_served(tmp_path_factory) -> Path:
    """The tiny Llama of :func:`tiny_llama` (same weights), declaring :data:`SERVED_CONTEXT` positions."""
    from rolebench_eval.tiny import build_tiny_llama

    return build_tiny_llama(tmp_path_factory.mktemp("tiny-llama-served"), _corpus(), context=SERVED_CONTEXT)


@pytest.fixture(scope="session")
def transformers_server(tiny_llama_served, tmp_path_factory):
    """transformers' own ``transformers serve`` running the tiny Llama on CPU (started once, when first used).

    ``.url`` is the OpenAI-compatible root (``http://127.0.0.1:PORT/v1``), ``.model`` the model
    name it answers to, ``.chat(body)`` one direct request; see tests/fixtures/llm/transformers_serve.py.
    """
    with _serve.TransformersServe(tiny_llama_served, tmp_path_factory.mktemp("transformers-serve")) as srv:
        yield srv
