"""Smoke test of bench/run_bench.py --quick (no timing is asserted)."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def test_quick_bench_runs_every_workload(tmp_path):
    out = tmp_path / 'bench.json'
    result = subprocess.run(
        [sys.executable, os.path.join(ROOT, 'bench', 'run_bench.py'), '--quick',
         '--json', str(out)],
        capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-2000:]
    results = json.loads(out.read_text())
    names = {r['name'] for r in results}
    for prefix in ('synths.Harmonic', 'synths.FilteredNoise', 'effects.Reverb'):
        for kind in ('fwd', 'fwdbwd'):
            for batch in ('b4', 'b16'):
                assert any(n.startswith(prefix) and f'/{batch}/' in n
                           and n.endswith('/' + kind) for n in names)
    for r in results:
        assert r['min_ms'] <= r['median_ms'] <= r['max_ms']
        assert r['peak_rss_mb'] > 0
    # Every result line is printed for the reader.
    assert result.stdout.count(' ms (') == len(results)
