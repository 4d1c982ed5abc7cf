"""One flag spelling: our flags take hyphens (``--data-dir``) and the underscore spelling as the same flag.

The flags are read from the parsers' own help (argparse offers no public listing), every verb and
sub-verb found the same way, so a new flag or verb is covered without being named here.
"""

from __future__ import annotations

import dataclasses
import re

import pytest

from rolebench_eval import cli


def _help(path: tuple[str, ...], capsys) -> str:
    with pytest.raises(SystemExit):
        cli.build_parser().parse_args([*path, "--help"])
    return capsys.readouterr().out


def _own_flags(capsys) -> dict[tuple[str, ...], list[str]]:
    """Each verb path whose flags are ours -> its long flags of more than one word, from its usage line."""
    found, todo = {}, [()]
    while todo:
        path = todo.pop()
        text = _help(path, capsys)
        usage = text.split("\n\n", 1)[0]
        found[path] = sorted({f for f in re.findall(r"--[a-z][\w-]*", usage) if "-" in f[2:]})
        positional = text.split("positional arguments:", 1)[1].split("\n\n", 1)[0] if "positional" in text else ""
        subverbs = re.findall(r"^    ([a-z][\w-]*)", positional, re.M)  # argparse indents sub-verbs by four
        todo += [(*path, verb) for verb in subverbs if verb not in cli.FOREIGN_FLAGS]
    return {path: flags for path, flags in found.items() if flags}


def _names_the_flag(argv: list[str], flag: str, capsys) -> bool:
    """True when argparse takes ``argv``'s last word as ``flag``: its error names it (``argument --x-y: ...``).

    ``--x=bad`` then ``--x``: a flag without a value refuses the first, a flag with one refuses the second
    (no value), a typed one the 'bad' value; an unknown flag is never named this way.
    """
    with pytest.raises(SystemExit):
        cli.main(argv)
    return f"argument {flag}" in capsys.readouterr().err


def test_every_own_flag_takes_both_spellings(capsys):
    flags = _own_flags(capsys)
    assert ("reproduce",) in flags and ("generate", "rolegpt") in flags and ("run",) not in flags
    for path, names in flags.items():
        for flag in names:
            assert "_" not in flag, f"{' '.join(path)} {flag}: our flags are spelled with hyphens"
            for spelling in (flag, "--" + flag[2:].replace("-", "_")):
                assert _names_the_flag([*path, f"{spelling}=bad", spelling], flag, capsys), (path, spelling)
    assert sum(map(len, flags.values())) > 20
    assert not _names_the_flag(["reproduce", "--data-dirx=bad", "--data-dirx"], "--data-dir", capsys)


def test_one_spelling_leaves_values_and_what_follows_double_dash_alone():
    assert cli.one_spelling(["judge", "out_dir", "--base_url=http://a_b", "--max_cost", "5", "--", "--x_y"]) == \
        ["judge", "out_dir", "--base-url=http://a_b", "--max-cost", "5", "--", "--x_y"]


@pytest.mark.slow
def test_finetune_takes_both_spellings_of_our_keys():
    """``finetune``'s flags are TRL's parser's, which lists ``--x_y`` and ``--x-y`` for every key, ours too."""
    from rolebench_eval.finetune.args import RoleBenchArguments
    from rolebench_eval.finetune.recipe import make_parser, options

    known = options(make_parser())
    for field in dataclasses.fields(RoleBenchArguments):
        assert {f"--{field.name}", f"--{field.name.replace('_', '-')}"} <= set(known), field.name


@pytest.mark.parametrize("argv", [["board", "--jobs", "0"], ["leaderboard", "--n-boot", "0"],
                                  ["leaderboard", "--browse-items", "-1"], ["leaderboard", "--seed", "nan"],
                                  ["reproduce", "--limit", "0"], ["judge", "--max-requests", "-1"],
                                  ["judge", "--batch-discount", "inf"]])
def test_a_bad_number_is_one_line_naming_the_flag_exit_2(argv, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2
    assert err.count("\n") == 1 and f"argument {argv[1]}: expected a " in err and repr(argv[2]) in err
