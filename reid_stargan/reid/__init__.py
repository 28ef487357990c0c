"""Re-ID training: ResNet-50 / small-CPU-net triplet baseline, +CamStyle, HHL (one loop, three modes).

Public entry points::

    from reid_stargan.reid.trainer import train_reid          # train_reid(cfg, run_dir, camstyle=None, ...)
    from reid_stargan.reid.checkpoint import load_reid_model  # (model, cfg) from model.pt or a run folder
    from reid_stargan.reid.config import ReidConfig
"""
