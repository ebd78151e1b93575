"""`tusk stats` through the real entry point: exit codes, JSON shape, one-line errors, help examples."""

from __future__ import annotations

import json

import pytest

from tusklang.cli import main


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["stats", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_compare_json_has_the_documented_keys(capsys):
    code, out, _ = run(
        capsys,
        "compare",
        "--control",
        "100/1000",
        "--variant",
        "B=120/1000",
        "--variant",
        "C=130/1000",
        "--format",
        "json",
    )
    assert code == 0
    data = json.loads(out)
    assert set(data["control"]) >= {"rate", "p_best"}
    assert set(data["variants"]) == {"B", "C"}
    for entry in data["variants"].values():
        assert set(entry) >= {
            "p_beat_control",
            "p_value",
            "p_value_adjusted",
            "ci",
            "p_best",
            "rate",
            "uplift",
            "expected_loss",
        }
        assert len(entry["ci"]) == 2 and entry["ci"][0] < entry["ci"][1]
    b = data["variants"]["B"]
    assert b["p_beat_control"] == pytest.approx(0.923183, abs=1e-6)
    assert b["p_value"] == pytest.approx(0.152918, abs=1e-6)
    assert b["ci"] == pytest.approx([-0.007411, 0.047411], abs=1e-6)
    assert b["uplift"] == pytest.approx(0.2)
    assert b["expected_loss"] == pytest.approx(0.000485, abs=1e-6)
    p_bests = [data["control"]["p_best"]] + [v["p_best"] for v in data["variants"].values()]
    assert sum(p_bests) == pytest.approx(1.0, abs=1e-6)
    # Holm over two variants: the smaller raw p doubles.
    c = data["variants"]["C"]
    assert c["p_value_adjusted"] == pytest.approx(2 * c["p_value"])


def test_compare_options_change_the_answer(capsys):
    base = json.loads(
        run(
            capsys,
            "compare",
            "--control",
            "100/1000",
            "--variant",
            "B=120/1000",
            "--variant",
            "C=130/1000",
            "--format",
            "json",
        )[1]
    )
    other = json.loads(
        run(
            capsys,
            "compare",
            "--control",
            "100/1000",
            "--variant",
            "B=120/1000",
            "--variant",
            "C=130/1000",
            "--correction",
            "bonferroni",
            "--confidence",
            "0.99",
            "--prior",
            "0.5,0.5",
            "--sequential",
            "--format",
            "json",
        )[1]
    )
    # Bonferroni doubles B's p where Holm leaves the larger p alone.
    assert other["variants"]["B"]["p_value_adjusted"] == pytest.approx(2 * base["variants"]["B"]["p_value"])
    assert base["variants"]["B"]["p_value_adjusted"] == pytest.approx(base["variants"]["B"]["p_value"])
    assert other["variants"]["C"]["ci"][0] < base["variants"]["C"]["ci"][0]
    assert other["variants"]["B"]["p_beat_control"] != base["variants"]["B"]["p_beat_control"]
    assert other["variants"]["B"]["ci_sequential"][0] < other["variants"]["B"]["ci"][0]


def test_compare_text_is_a_table(capsys):
    code, out, _ = run(capsys, "compare", "--control", "100/1000", "--variant", "B=120/1000")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith("arm") and "P(best)" in lines[0]
    assert any(line.startswith("B ") and "0.9232" in line for line in lines)


def test_srm_json(capsys):
    code, out, _ = run(capsys, "srm", "--observed", "5000,5400", "--weights", "50,50", "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["chi2"] == pytest.approx(15.384615, abs=1e-6)
    assert data["p"] == pytest.approx(8.76994e-05, rel=1e-5)
    assert data["mismatch"] is True
    code, out, _ = run(capsys, "srm", "--observed", "5000,5250", "--weights", "50,50", "--format", "json")
    assert json.loads(out)["mismatch"] is False


def test_sample_size_json(capsys):
    code, out, _ = run(capsys, "sample-size", "--baseline", "0.10", "--mde", "0.02", "--format", "json")
    assert code == 0 and json.loads(out)["per_arm"] == 3841
    _, out, _ = run(capsys, "sample-size", "--baseline", "0.10", "--mde", "0.02", "--arms", "3", "--format", "json")
    assert json.loads(out)["per_arm"] == 4652
    _, out, _ = run(capsys, "sample-size", "--baseline", "0.10", "--mde", "0.02", "--one-sided")
    assert out.startswith("3026 units per arm")


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (["compare", "--control", "100/0", "--variant", "B=120/1000"], "units must be greater than 0"),
        (["compare", "--control", "100/1000", "--variant", "B=120/100"], "more than its 100 units"),
        (["compare", "--control=-5/100", "--variant", "B=1/10"], "CONVERSIONS/UNITS"),
        (["compare", "--control", "100/1000", "--variant", "120/1000"], "NAME=CONVERSIONS/UNITS"),
        (["compare", "--control", "1/10", "--variant", "B=1/10", "--correction", "sidak"], "--correction"),
        (["compare", "--control", "1/10", "--variant", "B=1/10", "--confidence", "95"], "--confidence"),
        (["compare", "--control", "1/10", "--variant", "B=1/10", "--prior", "1"], "--prior"),
        (["srm", "--observed", "5000,5400,10", "--weights", "50,50"], "3 observed counts"),
        (["srm", "--observed", "5000,-5", "--weights", "50,50"], "--observed"),
        (["sample-size", "--baseline", "0.95", "--mde", "0.1"], "--mde"),
        (["sample-size", "--baseline", "0.1", "--mde", "0.02", "--arms", "1"], "--arms"),
    ],
)
def test_malformed_arguments_give_one_line_and_exit_2(capsys, argv, fragment):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert len(err.strip().splitlines()) == 1
    assert fragment in err


@pytest.mark.parametrize("sub", ["compare", "srm", "sample-size"])
def test_every_help_shows_an_example(capsys, sub):
    with pytest.raises(SystemExit) as info:
        main(["stats", sub, "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert f"example:\n  tusk stats {sub}" in out


def test_stats_without_subcommand_is_a_usage_error(capsys):
    code, _, err = run(capsys)
    assert code == 2 and "compare" in err
