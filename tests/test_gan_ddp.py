"""StarGAN under torchrun: 2 CPU processes over gloo average their gradients and stay in sync."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent("""
    import sys
    from reid_stargan.config import load_config
    from reid_stargan.gan.config import StarGANConfig
    from reid_stargan.gan.trainer import train_stargan
    root, run_dir = sys.argv[1], sys.argv[2]
    cfg = load_config(StarGANConfig, None, [
        f"data.root={root}", "gan.image_size=[16,8]", "gan.g_conv_dim=8", "gan.g_repeat_num=1", "gan.d_conv_dim=8",
        "gan.d_repeat_num=3", "train.batch_size=8", "train.n_critic=2", "train.seed=5", "train.num_iters=4",
        "train.num_iters_decay=2", "runtime.device=cpu", "runtime.in_memory=true", "runtime.threads=1",
        "log.log_every=1", "log.checkpoint_every=2", "log.eval_images=16", "log.tensorboard=false",
        "data.verify_images=false"])
    train_stargan(cfg, run_dir, progress=False)
""")


def test_two_cpu_processes_gloo(tmp_path):
    from reid_stargan.data.synthetic import PRESETS, make_synthetic

    make_synthetic(tmp_path / "tiny", seed=0, **PRESETS["tiny"])
    script = tmp_path / "ddp_train.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(script), str(tmp_path / "tiny"), str(tmp_path / "run")]
    proc = subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["ranks_in_sync"] is True and summary["step"] == 4
    # Both ranks' generator states went into the checkpoint, so the run can be resumed exactly.
    from reid_stargan.utils.io import torch_load

    state = torch_load(tmp_path / "run" / "checkpoints" / "last.pt")
    assert len(state["rng"]["trainer"]) == 2 and not state["rng"]["trainer"][0].equal(state["rng"]["trainer"][1])
