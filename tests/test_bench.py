"""``make bench`` cannot rot: every row of its table is measured here, on tiny sizes.

No timing is asserted (the numbers of a run this small mean nothing): the test proves that each
measurement runs end to end against the real server, the loopback exchange and a real
``ordergate serve`` process, and that the table names every row with its target and verdict.
"""

from __future__ import annotations

from bench import suite

TINY = suite.Sizes(
    chain_signals=20,
    recent_signals=40,
    load_seconds=0.5,
    load_runs=1,
    connections=2,
    bursts=(2, 3),
    exchange_latency_s=0.05,
    burst_timeout_s=10.0,
    steady_signals=2,
    journal_rows=100,
    spot_symbols=10,
    futures_symbols=5,
)


def test_the_bench_table_has_every_row_with_its_target_and_verdict() -> None:
    table = suite.run(TINY, production_logs=False)  # pytest keeps its own log handlers
    text = table.render()
    names = [row.name for row in table.rows]
    for expected in (
        "throughput ratio full / bare",
        "chain in process (parse + stages)",
        "  stage execute",
        "chain after 40 signals",
        "burst 2 at once",
        "burst 3 at once",
        "exchange round trips per signal",
        "growth: 100 rows / empty journal",
        "footprint: start -> /readyz 200",
        "footprint: resident memory when ready",
    ):
        assert expected in names, text
    for row in table.rows:
        assert row.value in text
        if row.target:
            assert row.ok is not None, row
    assert "2/2 orders placed" in text  # every signal of the burst reached the exchange once
