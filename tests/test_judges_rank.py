"""The paper's joint ranking (several runs and RoleGPT in one prompt) and length control.

End to end against the scripted server (tests/fixtures/llm/): its ``rank`` rules find the
systems' marker words (CAND, OTHR, BASE) in the prompt, label them model_1.. in the order
they are shown, and reply with the scripted ranks, so the expected win rates and mean
ranks below hold whatever order the judge's hash chose.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from rolebench_eval.errors import InputError
from rolebench_eval.judges import stats
from rolebench_eval.judges.protocols.rank import competition_ranks, shown_order
from rolebench_eval.judges.run import JudgeOptions, judge_outputs

HERE = Path(__file__).parent
FIX = HERE / "fixtures" / "judges"
OUT, MORE = FIX / "lmeval_out", FIX / "lmeval_more"  # fake/cand-7b (CAND) and fake/other-3b (OTHR)
KEY = "sk-test-DISTINCTIVE-rank-91c3"
EN, ZH = "rolebench_specific_en", "rolebench_general_zh"


@pytest.fixture(autouse=True)
def api_key(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


def _judge(srv, root: Path, inputs, **kw):
    opts = JudgeOptions(judge="rank", model="judge-m", base_url=srv.url, out=root / "out",
                        cache=root / "cache.sqlite", timeout=0.5, backoff_base=0.01, concurrency=4,
                        progress=False, **kw)
    report = judge_outputs([str(p) for p in inputs], opts)
    return report, {(s["model"], s["task"]): s for s in report.summaries}


def _rows(root: Path, model: str, task: str = EN) -> list[dict]:
    path = root / "out" / model / task / "rank" / "annotations.jsonl"
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def _qid(row: dict) -> str:
    return row["question"].split(":")[0].strip()


def _script() -> dict:
    return json.loads((FIX / "joint_rank_script.json").read_text(encoding="utf-8"))


# ------------------------------------------------------------------ pure parts


def test_competition_ranks_and_order_are_pure():
    assert competition_ranks({"a": 1, "b": 1, "c": 2}) == {"a": 1, "b": 1, "c": 3}
    assert competition_ranks({"a": 2, "b": 2}) == {"a": 1, "b": 1}
    assert competition_ranks({"a": 3, "b": 1, "c": 2}) == {"a": 3, "b": 1, "c": 2}
    from rolebench_eval.judges.protocols import Item

    systems = [("candidate", "x"), ("candidate", "y"), ("baseline", "rolegpt")]
    orders = {tuple(shown_order(Item(0, "R", f"q{n}", "en", "general", (), "", "", None), systems, 0))
              for n in range(40)}
    assert len(orders) == 6  # every permutation of three systems occurs over 40 items
    item = Item(0, "R", "q1", "en", "general", (), "", "", None)
    assert shown_order(item, systems, 0) == shown_order(item, systems, 0)
    assert shown_order(item, systems, 0) != shown_order(item, systems, 1) or \
        shown_order(item, systems, 2) != shown_order(item, systems, 0)  # the seed moves it
    # the relative order of two systems does not depend on a third being shown
    pair = shown_order(item, systems[::2], 0)
    full = [systems[i] for i in shown_order(item, systems, 0) if i != 1]
    assert [systems[::2][i] for i in pair] == full


# ------------------------------------------------------------------ end to end


def test_joint_rank_of_two_runs_and_rolegpt(llm_server, tmp_path):
    srv = llm_server(_script(), expected_key=KEY)
    report, by = _judge(srv, tmp_path, [OUT, MORE])
    cand, other, zh = by["fake/cand-7b", EN], by["fake/other-3b", EN], by["fake/cand-7b", ZH]
    systems = ["fake/cand-7b", "fake/other-3b", "rolegpt"]
    assert (cand["systems"], cand["n_systems"], other["systems"], other["n_systems"]) == (systems, 3, systems, 3)
    assert (cand["protocol"], cand["baseline"], cand["schema_version"]) == ("rank", "rolegpt", 3)
    # CAND: qid-1 win (rank 1), qid-2 loss (only CAND and BASE: rank 2 of 2), qid-3 tie with BASE (rank 1),
    # qid-4 loss (3), qid-5 win (1), qid-8 loss (2); qid-6 unparseable; qid-7 has no RoleGPT answer
    assert (cand["n_total"], cand["n_judged"], cand["n_parsed"], cand["n_parse_failures"],
            cand["n_skipped_no_baseline"]) == (8, 7, 6, 1, 1)
    assert cand["win_rate"] == pytest.approx(2.5 / 6) and cand["mean_rank"] == pytest.approx(10 / 6)
    # OTHR (lacks qid-2): qid-1 win (2), qid-3 loss (3: the judge's dense [1, 2, 1] is [1, 3, 1]),
    # qid-4 win (1), qid-5 loss (3), qid-8 loss (3)
    assert (other["n_total"], other["n_judged"], other["n_parsed"], other["n_parse_failures"],
            other["n_skipped_no_baseline"]) == (7, 6, 5, 1, 1)
    assert other["win_rate"] == pytest.approx(2 / 5) and other["mean_rank"] == pytest.approx(12 / 5)
    assert cand["ci95"][0] <= cand["win_rate"] <= cand["ci95"][1]
    # the Chinese task has one run only: candidate vs RoleGPT, k = 2
    assert (zh["systems"], zh["n_systems"], zh["win_rate"], zh["mean_rank"]) == (
        ["fake/cand-7b", "rolegpt"], 2, 0.5, 1.5)

    # ONE prompt per item: 7 English items with a RoleGPT answer + 2 Chinese, each answered once
    ok = [e["rule"] for e in srv.requests() if e["outcome"] == "ok"]
    assert sorted(ok) == sorted(["qid-1", "qid-2", "qid-3", "qid-4", "qid-5", "qid-6", "qid-8", "qid-z1", "qid-z2"])
    assert report.batch.n_sent == 9 and report.batch.n_retries == 2

    rows = {_qid(r): r for r in _rows(tmp_path, "fake__cand-7b")}
    others = {_qid(r): r for r in _rows(tmp_path, "fake__other-3b")}
    assert "qid-2" not in others and rows["qid-2"]["n_systems"] == 2 and rows["qid-1"]["n_systems"] == 3
    tie = {e["system"]: e["rank"] for e in rows["qid-3"]["value"]["shown"]}
    assert tie == {"fake/cand-7b": 1, "fake/other-3b": 3, "rolegpt": 1} and rows["qid-3"]["value"]["outcome"] == "tie"
    assert rows["qid-1"]["prompt_hash"] == others["qid-1"]["prompt_hash"]  # the same single prompt
    assert rows["qid-6"]["status"] == others["qid-6"]["status"] == "parse_error"
    assert rows["qid-7"]["status"] == others["qid-7"]["status"] == "skipped_no_baseline"
    for row in rows.values():
        if row["status"] == "judged":  # labels follow the presentation order
            shown = row["value"]["shown"]
            assert [e["model"] for e in shown] == [f"model_{n}" for n in range(1, len(shown) + 1)]
            assert next(e["model"] for e in shown if e["system"] == "fake/cand-7b") == row["value"]["candidate_label"]
            assert row["rank"] == row["value"]["candidate"] and row["decoding"] == {
                "temperature": 0, "seed": 0, "max_tokens": 512}

    # the order is permuted per item...
    orders = {q: tuple(e["system"] for e in r["value"]["shown"]) for q, r in rows.items() if r["status"] == "judged"}
    three = {o for q, o in orders.items() if len(o) == 3}
    assert len(three) > 1, orders
    # ... and stable: a fresh run (new cache, inputs in the other order) sends the very same prompts
    srv2 = llm_server(_script(), expected_key=KEY)
    _, again = _judge(srv2, tmp_path / "again", [MORE, OUT])
    assert {e["hash"] for e in srv2.requests()} == {e["hash"] for e in srv.requests()}
    rows2 = {_qid(r): r for r in _rows(tmp_path / "again", "fake__cand-7b")}
    assert {q: r["prompt_hash"] for q, r in rows2.items()} == {q: r["prompt_hash"] for q, r in rows.items()}
    assert again["fake/cand-7b", EN]["win_rate"] == cand["win_rate"]
    # a rerun on the same cache sends nothing
    before = len(srv.requests())
    _judge(srv, tmp_path, [OUT, MORE])
    assert len(srv.requests()) == before


def test_too_many_systems_is_an_input_error(llm_server, tmp_path):
    srv = llm_server(_script(), expected_key=KEY)
    with pytest.raises(InputError) as err:
        _judge(srv, tmp_path, [OUT, MORE], max_systems=2)
    message = str(err.value)
    assert "3 systems" in message and "max_systems=2" in message and "--max-systems" in message
    assert "fake/cand-7b, fake/other-3b, rolegpt" in message and EN in message
    assert srv.requests() == [] and not (tmp_path / "out").exists()
    _, by = _judge(srv, tmp_path, [OUT], max_systems=2)  # one run + RoleGPT fits
    assert by["fake/cand-7b", EN]["n_systems"] == 2


# ------------------------------------------------------------------ length control


def _fit_reference(delta, scores) -> tuple[float, float]:
    """The documented LC model fitted by scipy (independent of stats._lc_fit): (win rate, tolerance).

    scipy's exact trust-region Newton with analytic derivatives, polished by plain Newton steps (it
    stops early on separable data), sits within rounding of the optimum; its own remaining Newton
    step is added to the tolerance. ``stats._lc_fit`` stops earlier: when the
    Newton decrement squared g'H^-1g is below ``stats.LC_NEWTON_TOL``. Its intercept is then off by
    at most the intercept part of the last Newton step H^-1 g, which by Cauchy-Schwarz in the
    H-norm is at most sqrt(LC_NEWTON_TOL * (H^-1)_00), and the win rate sigmoid(intercept) by
    p(1 - p) times that. That bound (with H at the optimum, plus 1e-12 for rounding) is the tolerance.
    """
    from scipy.optimize import minimize

    d, y = np.asarray(delta, float), np.asarray(scores, float)
    x = np.tanh(d / d.std(ddof=1))
    design = np.stack([np.ones_like(x), x], axis=1)

    def loss(b):
        eta = design @ b
        return np.sum(np.logaddexp(0, eta) - y * eta) + stats.LC_PENALTY / 2 * (b @ b)

    def grad(b):
        return design.T @ (1 / (1 + np.exp(-(design @ b))) - y) + stats.LC_PENALTY * b

    def hess(b):
        p = 1 / (1 + np.exp(-(design @ b)))
        return design.T @ (design * (p * (1 - p))[:, None]) + stats.LC_PENALTY * np.eye(2)

    b = minimize(loss, [0.0, 0.0], jac=grad, hess=hess, method="trust-exact", options={"gtol": 1e-12}).x
    for _ in range(5):
        b = b - np.linalg.solve(hess(b), grad(b))
    inverse = np.linalg.inv(hess(b))
    own_step = abs((inverse @ grad(b))[0])  # the next Newton step: what is left to the optimum
    assert own_step < 1e-12
    p = float(1 / (1 + np.exp(-b[0])))
    bound = p * (1 - p) * (np.sqrt(stats.LC_NEWTON_TOL * inverse[0, 0]) + own_step)
    return p, float(bound) + 1e-12


def test_length_controlled_win_rate_matches_an_independent_fit():
    delta = [10, 25, 40, 55, 70, 85, 100, 15, 30, -12, -24, -36, 5, -5]
    scores = [1, 1, 0.5, 1, 1, 1, 1, 1, 0, 0, 0, 0.5, 0, 1]
    lc = stats.length_controlled_win_rate(delta, scores)
    reference, tolerance = _fit_reference(delta, scores)
    assert lc.value == pytest.approx(reference, abs=tolerance)
    assert lc.ci95[0] <= lc.value <= lc.ci95[1] and lc.note is None
    assert lc.coefficients["length"] > 0 and lc.coefficients["length_sd_chars"] == pytest.approx(np.std(delta, ddof=1))
    assert stats.length_controlled_win_rate(delta, scores) == lc  # deterministic (seeded bootstrap)


def test_length_controlled_win_rate_without_a_length_effect_is_the_raw_rate():
    # at every length difference the candidate wins 3 times in 4: length explains nothing
    delta = [-30, -10, 10, 30] * 4
    scores = [1] * 12 + [0] * 4
    lc = stats.length_controlled_win_rate(delta, scores)
    assert stats.win_rate(scores) == 0.75 and lc.value == pytest.approx(0.75, abs=2e-3)
    assert abs(lc.coefficients["length"]) < 1e-6


def test_length_controlled_win_rate_is_null_with_a_reason():
    assert stats.length_controlled_win_rate([], []).note == "fewer than 2 parsed items"
    assert stats.length_controlled_win_rate([7], [1]).value is None
    same = stats.length_controlled_win_rate([4, 4, 4], [1, 0, 1])
    assert same.value is None and same.ci95 is None and "same length difference" in same.note


def _length_run(root: Path, longer: list[bool]) -> Path:
    """A run folder whose answers are LONG or SHORT; the candidate's is the longer where ``longer``.

    The length gaps take the same three sizes whichever answer is the longer, so the only
    thing that tells the outcomes apart is which answer is longer.
    """
    folder = root / "runs" / "fake__verbose-1b"
    folder.mkdir(parents=True)
    rows = []
    for n, cand_longer in enumerate(longer):
        long_text = "LONG " + "arr, the tide " * (2 + 3 * (n % 3))
        short_text = "SHORT " + "arr " * (n % 2)
        cand, base = (long_text, short_text) if cand_longer else (short_text, long_text)
        doc = {"role": "Captain Brine", "question": f"qid-L{n}: Tell me about barnacle {n}.", "references": ["r"],
               "lang": "en", "kind": "general", "system_prompt": "You are Captain Brine.", "description": None,
               "rolegpt": base}
        rows.append({"doc_id": n, "doc": doc, "filtered_resps": [cand], "resps": [[cand]]})
    (folder / "samples_rolebench_general_en_2026-01-05T00-00-00.000001.jsonl").write_text(
        "".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    (folder / "results_2026-01-05T00-00-00.000001.json").write_text(json.dumps(
        {"results": {}, "config": {"model": "hf", "model_args": {"pretrained": "fake/verbose-1b"}}}))
    return folder


def test_length_control_exposes_a_judge_that_prefers_long_answers(llm_server, tmp_path):
    longer = [True] * 9 + [False] * 3
    srv = llm_server({"rules": [{"id": "len", "match": ["rank the models"], "rank": {"LONG": 1, "SHORT": 2}}]},
                     expected_key=KEY)
    _, by = _judge(srv, tmp_path, [_length_run(tmp_path, longer)])
    summary = by["fake/verbose-1b", "rolebench_general_en"]
    assert summary["n_parsed"] == 12 and summary["win_rate"] == 0.75  # the raw rate rewards the verbose model
    rows = [json.loads(line) for line in (tmp_path / "out" / "fake__verbose-1b" / "rolebench_general_en" / "rank" /
                                          "annotations.jsonl").read_text(encoding="utf-8").splitlines()]
    delta = [len(r["candidate"]) - len(r["baseline"]) for r in rows]
    assert [d > 0 for d in delta] == longer and [r["score"] for r in rows] == [1.0] * 9 + [0.0] * 3
    lc = summary["lc_win_rate"]
    reference, tolerance = _fit_reference(delta, [r["score"] for r in rows])
    assert lc == pytest.approx(reference, abs=tolerance)
    assert abs(lc - 0.5) < abs(summary["win_rate"] - 0.5) - 0.1  # length control moves it toward 0.5
    assert summary["lc_ci95"][0] <= lc <= summary["lc_ci95"][1]
    assert summary["lc_coefficients"]["length"] > 1 and "tanh(d / sd(d))" in summary["lc_method"]
