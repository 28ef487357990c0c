"""bench/gpu_check.sh is ready for the first GPU: on a CPU its dry run parses every step and runs the fallbacks."""

import os
import subprocess
import sys

from conftest import REPO_ROOT


def test_gpu_check_dry_run_passes_on_cpu(tmp_path):
    env = {**os.environ, "PY": sys.executable, "WORK": str(tmp_path), "OMP_NUM_THREADS": "1"}
    done = subprocess.run(["bash", str(REPO_ROOT / "bench" / "gpu_check.sh"), "--dry-run"], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert "dry run done; failed: none" in done.stdout
    assert '"check": "eval_faiss"' in done.stdout and '"max_abs_diff_vs_cpu": 0.0' in done.stdout
