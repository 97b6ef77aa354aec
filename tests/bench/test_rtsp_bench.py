"""The RTSP benchmark's table: medians over rounds and the paired per-round ratio."""

from __future__ import annotations

from bench import rtsp_bench as rb


def _row(proto, rnd, cpu_ms):
    return {"scenario": "ingest-10", "protocol": proto, "round": rnd, "kind": "ingest",
            "cpu_ms_per_mbit": cpu_ms, "mbit_s": 49.0, "server_cpu_pct": 5.0,
            "rss_peak_kb": 20480, "join_p50_ms": None, "exact_pct": None, "errors": []}


def test_rounds_pair_rtsp_with_the_rtmp_run_of_the_same_round():
    # the machine was slow in round 1: both protocols cost more, their ratio did not move
    rows = [_row("rtmp", 0, 0.8), _row("rtsp", 0, 1.12), _row("rtmp", 1, 1.2),
            _row("rtsp", 1, 1.68), _row("rtsp", 2, 1.3), _row("rtmp", 2, 0.8)]
    assert [round(r, 3) for r in rb.round_ratios(rows, "ingest-10")] == [1.4, 1.4, 1.625]
    line = [ln for ln in rb.tables(rows, ["ingest-10"]).splitlines()
            if ln.startswith("| ingest-10")][0]
    cells = [c.strip() for c in line.split("|")]
    # median runs: RTMP 0.80, RTSP 1.30; the ratio is the median round, not 1.30 / 0.80
    assert cells[3:6] == ["0.80", "1.30", "1.40 (1.40-1.62) (≤ 1.5) ✓"]


def test_a_single_run_has_no_range():
    rows = [_row("rtmp", 0, 1.0), _row("rtsp", 0, 1.6)]
    line = rb.tables(rows, ["ingest-10"]).splitlines()[2]
    assert "| 1.60 (≤ 1.5) ✗ |" in line
