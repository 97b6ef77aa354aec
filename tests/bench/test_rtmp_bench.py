"""The benchmark runner's measuring helpers and its table."""

from __future__ import annotations

import os

from bench import rtmp_bench as rb


def test_cpu_seconds_and_rss_of_this_process():
    c0 = rb.cpu_seconds(os.getpid())
    sum(i * i for i in range(200_000))  # burn a little CPU
    c1 = rb.cpu_seconds(os.getpid())
    assert 0 < c0 < c1
    run, wait = rb.sched_seconds(os.getpid())
    assert run >= c1 and wait >= 0
    assert rb.status_kb(os.getpid(), "VmRSS") > 1000
    assert rb.status_kb(os.getpid(), "NoSuchKey") == 0


def _row(sc, sv, cpu_ms, join=None, exact=100.0):
    return {"scenario": sc, "server": sv, "kind": sc.split("-")[0], "cpu_ms_per_mbit": cpu_ms,
            "mbit_s": 244.0, "server_cpu_pct": 5.0, "rss_peak_kb": 20480, "rss_end_kb": 10240,
            "join_p50_ms": join, "join_p95_ms": join and join * 2, "latency_p50_ms": 1.0,
            "latency_p95_ms": 2.0, "players_ok": 50, "players_exact": 50, "players_checked": 50,
            "missing": 0, "dups": 0, "loadgen_cpu": 0.1, "publisher_max_lag_ms": 0.0, "other_load_cores": 0.5, "errors": [],
            "exact_pct": exact, "window_s": 15.0}


def test_table_ratio_and_targets():
    res = [_row("fanout-50", "rtmpgop", 0.20, 10), _row("fanout-50", "nginx", 0.25, 400),
           _row("ingest-10", "rtmpgop", 0.40, exact=None), _row("ingest-10", "nginx", 0.25, exact=None),
           {"scenario": "fanout-200", "server": "rtmpgop", "error": "RuntimeError('boom')"}]
    t = rb.tables(res, ["fanout-50", "ingest-10", "fanout-200"], ["rtmpgop", "nginx"])
    lines = t.splitlines()
    fan = next(ln for ln in lines if ln.startswith("| fanout-50 | default (LL-HLS on) | 244"))
    assert "| 0.20 | 0.25 | 0.80 (≤ 1.0) ✓ |" in fan and "| 10 / 20 | 400 / 800 |" in fan
    ing = next(ln for ln in lines if ln.startswith("| ingest-10 | default (LL-HLS on) | 244"))
    assert "1.60 (≤ 1.3) ✗" in ing and "| – / – |" in ing
    assert any("fanout-200 | rtmpgop" in ln and "boom" in ln for ln in lines)
    detail = [ln for ln in lines if ln.startswith("| fanout-50 | rtmpgop")][0]
    header = [ln for ln in lines if ln.startswith("| scenario | server")][0]
    err = [ln for ln in lines if ln.startswith("| fanout-200 | rtmpgop")][0]
    assert detail.count("|") == header.count("|") == err.count("|")


def test_profile_summary(tmp_path):
    p = tmp_path / "x.collapsed"
    p.write_text("main (a.py:1);f (a.py:3);g (a.py:9) 3\nmain (a.py:1);f (a.py:4) 1\n")
    s = rb.profile_summary(str(p))
    assert "4 samples" in s
    assert "75.0    75.0  g (a.py)" in s and "25.0   100.0  f (a.py)" in s


def test_repeated_runs_summary_takes_the_median():
    res = []
    for rep, (g, n) in enumerate([(0.30, 0.12), (0.20, 0.14), (0.25, 0.13)]):
        for sv, v in (("rtmpgop", g), ("nginx", n)):
            r = _row("fanout-200", sv, v, 10)
            r["rep"] = rep
            res.append(r)
    t = rb.tables(res, ["fanout-200"], ["rtmpgop", "nginx"])
    summary = next(ln for ln in t.splitlines() if ln.startswith("| fanout-200 | default (LL-HLS on) | 244"))
    assert "| 0.25 (0.20-0.30) | 0.13 (0.12-0.14) | 1.92 (≤ 1.0) ✗ |" in summary
    assert sum(ln.startswith("| fanout-200 | rtmpgop") for ln in t.splitlines()) == 3
    assert any(ln.startswith("| fanout-200 | nginx #3 |") for ln in t.splitlines())


def test_the_floor_runs_ingest_only_and_gets_its_own_summary_row():
    assert rb.runs("ingest-10", "floor") and not rb.runs("fanout-50", "floor")
    assert rb.runs("fanout-50", "rtmpgop")
    res = [_row("ingest-10", "floor", 0.20, exact=None),
           _row("ingest-10", "nginx", 0.25, exact=None), _row("fanout-50", "nginx", 0.25, 400)]
    t = rb.tables(res, ["ingest-10", "fanout-50"], ["floor", "nginx"])
    rows = [ln for ln in t.splitlines() if "stack floor" in ln]
    assert len(rows) == 1 and rows[0].startswith("| ingest-10 |") and "0.80 (≤ 1.3)" in rows[0]
