"""What a new user meets first: a GPU config on a CPU machine, and the report's sentences."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from reid_stargan.pipeline.report import _markdown, schedule_sentence, stargan_sentence, summarize_metric
from reid_stargan.utils.distributed import DeviceUnavailableError, require_device

REPO = Path(__file__).resolve().parents[1]


def test_a_cuda_config_without_cuda_is_one_line_and_leaves_no_folder(tmp_path, monkeypatch, capsys):
    from reid_stargan.cli.run_pipeline import cli

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(DeviceUnavailableError, match="asks for a CUDA GPU, and this machine has none"):
        require_device("cuda")
    require_device("cpu")
    require_device("auto")
    with pytest.raises(DeviceUnavailableError, match="use auto, cpu, cuda or cuda:N"):
        require_device("tpu")
    code = cli(["--config", str(REPO / "configs/pipeline/market_gpu.yaml"), "--no-progress",
                "--set", f"data.root={tmp_path}", f"out_root={tmp_path / 'runs'}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "stargan runtime.device='cuda' asks for a CUDA GPU" in err[0]
    assert not list((tmp_path / "runs").glob("*"))  # the numbered folder of the failed start is gone


def test_report_sentences_say_what_was_checked_and_run():
    schedule = {"epochs": 8, "iters_per_epoch": 116, "total_iterations": 928, "real_per_batch": 64,
                "ids_per_batch": 16, "instances_per_id": 4, "image_size": [96, 48], "world_size": 1}
    text = schedule_sentence(schedule)
    assert "8 epochs x 116 iterations = 928 updates" in text and "64 real images (16 ids x 4)" in text
    assert "at 96x48" in text and "{" not in text  # a sentence, not a JSON blob
    line = stargan_sentence({"step": 10000, "image_size": [64, 32], "c_dim": 10, "d_acc_fake": 0.77}, 1800.0)
    assert line.startswith("StarGAN: 10000 iterations at 64x32, 10 domains, 30.0 min wall time") and "77.00%" in line
    runs = [{"mINP": 5.0}, {"mINP": 7.0}]
    assert summarize_metric(runs, "mINP") == {"mean": 6.0, "std": 1.41}
    assert summarize_metric(runs[:1], "mINP") == {"mean": 5.0, "std": None}
    assert summarize_metric([{"mAP": 1.0}], "mINP") is None


def test_markdown_report_has_minp_command_and_checkpoints():
    report = {"name": "t", "data": {"name": "tiny", "root": "x", "num_cameras": 4}, "markdown_table": "TABLE",
              "schedule": {}, "camstyle_generation": None, "quality": None, "settings": [],
              "timings_s": {"stargan": 60.0}, "stargan": {"step": 5, "image_size": [16, 8], "c_dim": 4},
              "mINP": {"baseline": {"mean": 3.0, "std": 0.5}, "camstyle": {"mean": 4.0, "std": 0.25}},
              "command": "python tools/run_pipeline.py --config runs/r/config.yaml",
              "checkpoints": {"generator": "runs/r/stargan/checkpoints/generator.pt"}}
    md = _markdown(report, "")
    assert "mINP: baseline 3.00 ± 0.50, +CamStyle 4.00 ± 0.25." in md
    assert "`python tools/run_pipeline.py --config runs/r/config.yaml`" in md
    assert "- generator: `runs/r/stargan/checkpoints/generator.pt`" in md
    assert "StarGAN: 5 iterations at 16x8, 4 domains, 1.0 min wall time" in md


def test_an_own_parser_loads_from_the_cli_by_module_path(tmp_path, monkeypatch):
    """docs/OWN_DATA.md: `--set data.name=mypkg.mymodule:MyParser` loads the user's own layout."""
    from reid_stargan.config import load_config
    from reid_stargan.data.datasets import DatasetError, build_dataset
    from reid_stargan.reid.config import ReidConfig

    (tmp_path / "my_layout.py").write_text(
        "from reid_stargan.data.records import ReidDataset, Record\n"
        "def parse(root, **_):\n"
        "    train = [Record(f'{root}/a{i}.jpg', i % 2, i % 3) for i in range(6)]\n"
        "    return ReidDataset('mine', train, train[:2], train[2:], num_cameras=3)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = load_config(ReidConfig, REPO / "configs/reid/synthetic_cpu_baseline.yaml",
                      ["data.name=my_layout:parse", f"data.root={tmp_path}"])
    ds = cfg.data.build()
    assert ds.name == "mine" and ds.num_cameras == 3 and len(ds.train) == 6
    with pytest.raises(DatasetError, match="cannot load the parser 'nope' from module 'my_layout'"):
        build_dataset("my_layout:nope", tmp_path)


def test_torchrun_train_stargan_without_run_dir_shares_one_numbered_folder(tmp_path):
    """README's torchrun command works as written: rank 0 names the folder, the others learn it."""
    import json
    import os
    import subprocess
    import sys

    from reid_stargan.data.synthetic import PRESETS, make_synthetic

    make_synthetic(tmp_path / "tiny", seed=0, **PRESETS["tiny"])
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(REPO / "tools" / "train_stargan.py"), "--config", str(REPO / "configs/stargan/synthetic_cpu.yaml"),
           "--no-progress", "--set", f"data.root={tmp_path / 'tiny'}", f"out_root={tmp_path / 'runs'}", "tag=ddp",
           "gan.image_size=[16,8]", "gan.g_conv_dim=8", "gan.g_repeat_num=1", "gan.d_conv_dim=8", "gan.d_repeat_num=3",
           "train.batch_size=8", "train.n_critic=2", "train.num_iters=2", "train.num_iters_decay=0",
           "runtime.device=cpu", "runtime.threads=1", "runtime.num_workers=0", "log.eval_images=8",
           "log.tensorboard=false"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    folders = sorted((tmp_path / "runs").iterdir())
    assert [f.name for f in folders] == ["00000-ddp"]
    assert json.loads((folders[0] / "summary.json").read_text())["world_size"] == 2


def test_pipeline_prints_an_overall_eta_from_its_stages(tmp_path):
    from reid_stargan.config import load_config
    from reid_stargan.pipeline.config import PipelineConfig
    from reid_stargan.pipeline.run import Pipeline

    cfg = load_config(PipelineConfig, REPO / "configs/pipeline/cuhk03_cpu.yaml", ["expected_minutes=100"])
    pipe = Pipeline(cfg, tmp_path / "run", progress=False)
    pipe.plan = {"data": None, "stargan": None, "generate": None, "report": None}
    pipe.timings = {"data": 60.0, "stargan": 1800.0}
    assert pipe._eta() == "2/4 stages done, 31.0 min spent, about 69 of the expected 100 min left"


def test_a_timm_architecture_by_name_as_backbone(tmp_path):
    """`model.backbone: timm:<name>`: any timm model, with the user's own local weights (no downloads)."""
    import timm

    from reid_stargan.reid.models import build_reid_model

    model = build_reid_model("timm:resnet18", num_classes=5, pretrained="none", last_stride=2).eval()
    with torch.no_grad():
        feats = model(torch.randn(2, 3, 64, 32))
    assert feats.shape == (2, 512)
    own = timm.create_model("resnet18", pretrained=False)
    torch.save(own.state_dict(), tmp_path / "r18.pth")
    loaded = build_reid_model("timm:resnet18", num_classes=5, pretrained=str(tmp_path / "r18.pth"), last_stride=2)
    assert torch.equal(loaded.backbone.conv1.weight, own.conv1.weight)
    with pytest.raises(ValueError, match="timm has no such architecture"):
        build_reid_model("timm:not_a_net", num_classes=5, last_stride=2)
    with pytest.raises(ValueError, match="would download weights"):
        build_reid_model("timm:resnet18", num_classes=5, pretrained="imagenet", last_stride=2)


def test_export_gives_the_models_own_test_feature_also_pool5(tmp_path):
    """The IDE recipes test on pool5: the exported file must give what the model gives."""
    from reid_stargan.eval.export import ReidInference, export_torchscript
    from reid_stargan.reid.models import build_reid_model

    for feature in ("head", "pool5"):
        model = build_reid_model("small", num_classes=5, head="ide", embed_dim=16, test_feature=feature).eval()
        x = torch.randn(3, 3, 64, 32)
        with torch.no_grad():
            expected = model(x)
            assert torch.allclose(ReidInference(model)(x), expected, atol=1e-6), feature
        scripted = torch.jit.load(str(export_torchscript(model, tmp_path / f"{feature}.pt", 64, 32)))
        with torch.no_grad():
            assert torch.allclose(scripted(x), expected, atol=1e-5), feature
