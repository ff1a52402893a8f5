"""Smoke test of ``python -m mobilekernels.examples.compress --quick`` (numbers meaningless)."""
import pytest

pytest.importorskip("sklearn")

from mobilekernels.examples import compress  # noqa: E402


def test_quick_run_prints_the_table(capsys):
    result = compress.main(["--quick", "--no-progress"])
    out = capsys.readouterr().out
    rows = result["rows"]
    assert [r["name"].split()[0] for r in rows] == ["teacher", "student", "student", "distilled"]
    table = [line for line in out.splitlines() if line.startswith("| ")]
    assert len(table) == 1 + 4 and "accuracy (%)" in table[0] and "latency batch 8 (ms)" in table[0]
    teacher, alone, distilled, pruned = rows
    assert alone["params"] == distilled["params"] and alone["macs"] == distilled["macs"]
    assert pruned["params"] < distilled["params"] and pruned["macs"] < distilled["macs"]
    assert all(r["latency batch 1 (ms)"] > 0 and 0 <= r["accuracy"] <= 100 for r in rows)
    assert "distilled vs alone" in out


def test_digits_data():
    x_tr, y_tr, x_te, y_te = compress.digits_tensors(size=32)
    assert x_tr.shape == (1347, 3, 32, 32) and x_te.shape == (450, 3, 32, 32)
    assert abs(float(x_tr.mean())) < 1e-4 and abs(float(x_tr.std()) - 1) < 1e-3
    assert sorted(set(y_te.tolist())) == list(range(10))
    loader, _ = compress.digits_loaders(batch_size=16, shift=2, limit=40)
    xb, yb = next(iter(loader))
    assert xb.shape == (16, 3, 32, 32) and len(loader.dataset) == 40
