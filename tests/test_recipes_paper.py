"""The paper recipes (CamStyle's IDE, HHL) against hand computations of the official code's formulas.

Official code: zhunzhong07/CamStyle (main.py, reid/trainers.py CamStyleTrainer, reid/models/resnet.py)
and zhunzhong07/HHL (HHL.py, reid/trainers.py HHLTrainer, reid/loss/triplet.py). docs/RECIPES.md
has the settings table these tests pin down.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from reid_stargan.camstyle.naming import CamStyleRecord, manifest_entry, output_name, read_camstyle
from reid_stargan.config import ConfigError, load_config
from reid_stargan.data.records import Record
from reid_stargan.data.synthetic import make_synthetic
from reid_stargan.gan.config import StarGANConfig
from reid_stargan.pipeline.config import PipelineConfig
from reid_stargan.reid.camstyle_set import write_oracle_camstyle
from reid_stargan.reid.checkpoint import model_from_config
from reid_stargan.reid.config import InputConfig, ReidConfig
from reid_stargan.reid.data import augment, sized_rect_crop
from reid_stargan.reid.modes import CamStyleMode, HHLMode
from reid_stargan.reid.samplers import (
    CamStyleBatchBuilder,
    HHLBatchBuilder,
    RandomBatchBuilder,
    describe_batch,
)
from reid_stargan.reid.trainer import make_optimizer, train_reid

REPO = Path(__file__).resolve().parents[1]
REID = REPO / "configs" / "reid"
PIPELINE = REPO / "configs" / "pipeline"
IDE_CONFIGS = ["market_baseline_paper", "market_camstyle_paper", "duke_baseline_paper", "duke_camstyle_paper"]
HHL_CONFIGS = ["market2duke_hhl_paper", "duke2market_hhl_paper"]


def records(num_ids: int, per_id: int, cams: int = 6, pid0: int = 1) -> list[Record]:
    return [Record(f"/s/{pid:04d}_c{i % cams + 1}s1_{i:06d}_01.jpg", pid, i % cams)
            for pid in range(pid0, pid0 + num_ids) for i in range(per_id)]


def label_map(recs) -> dict[int, int]:
    return {pid: i for i, pid in enumerate(sorted({r.pid for r in recs}))}


# ----------------------------------------------------------------------------- batch composition
def test_ide_camstyle_batch_is_128_random_real_then_46_generated():
    """CamStyle's loaders: 128 real images, shuffled without replacement (drop_last epoch), then 46
    generated ones from the whole CamStyle set, not tied to the real batch's identities."""
    recs = records(60, 5)  # 300 real images: the epoch has floor(300 / 128) = 2 batches
    lab = label_map(recs)
    gen = [CamStyleRecord(f"/g/{Path(r.path).stem}_fake_{r.camid + 1}to{d + 1}.jpg", r.pid, r.camid, d, r.path)
           for r in recs for d in range(6) if d != r.camid]
    cfg = load_config(ReidConfig, REID / "market_camstyle_paper.yaml")
    s = cfg.sampler
    builder = CamStyleBatchBuilder(recs, gen, lab, s.num_ids, s.num_instances, cfg.camstyle.share, seed=3,
                                   same_ids=cfg.camstyle.same_ids, real_batch=s.batch_size)
    assert (builder.real_size, builder.G, builder.batch_size) == (128, 46, 174)
    batches = builder.epoch_batches(0, 2)
    label_of_path = {r.path: lab[r.pid] for r in recs} | {g.path: lab[g.pid] for g in gen}
    real_paths = []
    for batch in batches:
        d = describe_batch(batch)
        assert (d["size"], d["real"], d["generated"], d["target"]) == (174, 128, 46, 0)
        assert [s.generated for s in batch] == [False] * 128 + [True] * 46  # real first: chunks=[128]
        assert all(label_of_path[s.path] == s.label and s.labelled for s in batch)
        real_paths += [s.path for s in batch[:128]]
        assert len({s.aug_seed for s in batch}) == 174
    assert len(set(real_paths)) == 256  # without replacement within the epoch
    # Not P x K: a random batch of 128 from 60 identities x 5 holds far more than 16 identities.
    assert describe_batch(batches[0])["ids"] > 40
    # Generated images come from the whole set, not from P = 16 batch identities (46 draws of 60 ids).
    assert all(len({s.label for s in b[128:]}) > 20 for b in batches)
    assert builder.epoch_batches(0, 2) == batches and builder.epoch_batches(1, 2) != batches
    with pytest.raises(ValueError, match="same_ids"):
        CamStyleBatchBuilder(recs, gen, lab, 16, 4, 0.264, seed=3, same_ids=True, real_batch=128)


def test_ide_baseline_batch_is_128_random_images():
    recs = records(60, 5)
    lab = label_map(recs)
    builder = RandomBatchBuilder(recs, lab, 128, seed=0)
    batches = builder.epoch_batches(0, 2)
    assert [len(b) for b in batches] == [128, 128]
    assert len({s.path for b in batches for s in b}) == 256
    assert all(s.labelled and not s.generated and s.label == lab[int(Path(s.path).name[:4])] for b in batches for s in b)


def test_hhl_batch_is_ce_128_then_8x8_source_then_16_targets_with_every_camera():
    """HHL's three loaders: 128 random source images (CE), 8 ids x 8 source images (triplet),
    16 target images each with all 6 of its camera styles (own camera included): 128 + 64 + 112."""
    source = records(100, 10)
    lab = label_map(source)
    target = records(40, 1, pid0=500)
    versions = {t.path: [f"/t/{Path(t.path).stem}_fake_{c}.jpg" for c in range(1, 7)] for t in target}
    cfg = load_config(ReidConfig, REID / "market2duke_hhl_paper.yaml")
    s, h = cfg.sampler, cfg.hhl
    builder = HHLBatchBuilder(source, lab, versions, s.num_ids, s.num_instances, h.num_target, h.num_views,
                              seed=0, ce_batch=h.ce_batch)
    assert builder.batch_size == 128 + 64 + 16 * 7 == 304
    batch = builder.epoch_batches(0, 1)[0]
    assert len(batch) == 304 and len({x.aug_seed for x in batch}) == 304
    ce, pk, tgt = batch[:128], batch[128:192], batch[192:]
    assert all(x.labelled and not x.generated for x in ce + pk) and not any(x.labelled for x in tgt)
    assert len({x.path for x in ce}) == 128 and len({x.label for x in ce}) > 60  # random, not P x K
    assert sorted(Counter(x.label for x in pk).values()) == [8] * 8
    groups = Counter(x.label for x in tgt)
    assert len(groups) == 16 and set(groups.values()) == {7} and min(groups) >= len(lab)
    for label in groups:
        members = [x for x in tgt if x.label == label]
        real = [x.path for x in members if not x.generated]
        assert len(real) == 1 and sorted(x.path for x in members if x.generated) == sorted(versions[real[0]])
    d = describe_batch(batch)
    assert (d["real"], d["generated"], d["target"]) == (192, 0, 112)
    mode = HHLMode(builder, cfg.loss, len(lab), h.triplet_weight, ce_batch=h.ce_batch,
                   separate_forward=h.separate_forward, pk_size=64)
    assert mode.chunks == [128, 64]  # the rest (112 target images) is the third forward pass


# ----------------------------------------------------------------------------- losses, by hand
def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


def test_camstyle_loss_is_plain_ce_on_real_plus_lsr_on_generated():
    """CamStyleTrainer._forward: nn.CrossEntropyLoss(real) + _lsr_loss(generated), targets 0.9 / 0.1 / N."""
    cfg = load_config(ReidConfig, REID / "market_camstyle_paper.yaml")
    rng = np.random.default_rng(0)
    n_cls, real, fake = 751, 128, 46
    logits = rng.normal(0, 3, (real + fake, n_cls))
    labels = rng.integers(0, n_cls, real + fake)
    logp = _log_softmax(logits)
    ce = -np.mean([logp[i, labels[i]] for i in range(real)])
    q = np.full((fake, n_cls), 0.1 / n_cls)
    q[np.arange(fake), labels[real:]] += 0.9
    lsr = -np.mean((q * logp[real:]).sum(axis=1))
    mode = CamStyleMode(None, cfg.loss, n_cls, cfg.camstyle.lsr_epsilon, cfg.camstyle.triplet, cfg.camstyle.loss_form,
                        cfg.camstyle.generated_weight)
    gen = torch.tensor([False] * real + [True] * fake)
    out = mode.compute_loss(torch.zeros(real + fake, 4), torch.tensor(logits, dtype=torch.float32),
                            torch.tensor(labels), gen, torch.ones_like(gen))
    assert out["id_real"].item() == pytest.approx(ce, rel=1e-5)
    assert out["id_generated"].item() == pytest.approx(lsr, rel=1e-5)
    assert out["loss"].item() == pytest.approx(ce + lsr, rel=1e-5)
    assert "triplet" not in out
    # torch's own CE on the real images agrees with the hand value
    ref = torch.nn.functional.cross_entropy(torch.tensor(logits[:real]), torch.tensor(labels[:real])).item()
    assert ref == pytest.approx(ce, rel=1e-9)


def _official_batch_hard(feats: np.ndarray, labels: np.ndarray, margin: float) -> float:
    """HHL reid/loss/triplet.py: sqrt(clamp(d2, 1e-12)), max over same label (self included), min over
    the others, MarginRankingLoss(d_an, d_ap, 1) = mean(max(0, d_ap - d_an + margin))."""
    d2 = (feats ** 2).sum(1)[:, None] + (feats ** 2).sum(1)[None, :] - 2 * feats @ feats.T
    dist = np.sqrt(np.clip(d2, 1e-12, None))
    losses = []
    for i in range(len(labels)):
        same = labels == labels[i]
        losses.append(max(0.0, dist[i][same].max() - dist[i][~same].min() + margin))
    return float(np.mean(losses))


def test_hhl_loss_is_ce_on_its_own_batch_plus_half_the_triplet():
    """HHLTrainer._forward: CE(source batch) + 0.5 x triplet(cat(source triplet batch, target))."""
    cfg = load_config(ReidConfig, REID / "duke2market_hhl_paper.yaml")
    rng = np.random.default_rng(1)
    n_cls, n_ce, p, k, t, v = 702, 128, 8, 8, 16, 6
    ce_labels = rng.integers(0, n_cls, n_ce)
    pk_labels = np.repeat(rng.choice(n_cls, p, replace=False), k)
    tgt_labels = np.repeat(n_cls + np.arange(t), 1 + v)
    labels = np.concatenate([ce_labels, pk_labels, tgt_labels])
    b = len(labels)
    feats = rng.normal(0, 1, (b, 128)) * 0.3
    feats[n_ce:] += np.eye(128)[labels[n_ce:] % 128] * 1.0  # some structure, so the hinge is active for part
    logits = rng.normal(0, 2, (b, n_cls))
    ce = -np.mean(_log_softmax(logits[:n_ce])[np.arange(n_ce), ce_labels])
    trip = _official_batch_hard(feats[n_ce:], labels[n_ce:], 0.3)
    assert 0 < trip  # the numbers are not trivially zero
    mode = HHLMode(None, cfg.loss, n_cls, cfg.hhl.triplet_weight, ce_batch=cfg.hhl.ce_batch,
                   separate_forward=True, pk_size=p * k)
    labelled = torch.tensor([True] * (n_ce + p * k) + [False] * (t * (1 + v)))
    generated = torch.tensor([False] * (n_ce + p * k) + ([False] + [True] * v) * t)
    f32 = dict(dtype=torch.float32)
    out = mode.compute_loss(torch.tensor(feats, **f32), torch.tensor(logits, **f32), torch.tensor(labels),
                            generated, labelled)
    assert out["id"].item() == pytest.approx(ce, rel=1e-5)
    assert out["triplet"].item() == pytest.approx(trip, rel=1e-4)
    assert out["loss"].item() == pytest.approx(ce + 0.5 * trip, rel=1e-5)
    # The CE sees only the CE batch, the triplet only the rest: moving the others changes nothing.
    logits2, feats2 = logits.copy(), feats.copy()
    logits2[n_ce:] += 50.0
    feats2[:n_ce] = 0.0
    again = mode.compute_loss(torch.tensor(feats2, **f32), torch.tensor(logits2, **f32), torch.tensor(labels),
                              generated, labelled)
    assert again["loss"].item() == pytest.approx(out["loss"].item(), rel=1e-6)


# ----------------------------------------------------------------------------- model, optimiser, input
def _tiny_model_cfg(name: str, *extra: str) -> ReidConfig:
    return load_config(ReidConfig, REID / f"{name}.yaml", ["model.backbone=small", "model.pretrained=none",
                                                           "input.height=64", "input.width=32", *extra])


def test_ide_head_and_hhl_triplet_head():
    torch.manual_seed(0)
    model = model_from_config(_tiny_model_cfg("market2duke_hhl_paper"), num_classes=10)
    assert isinstance(model.embedding, torch.nn.Linear) and model.embedding.out_features == 1024
    assert isinstance(model.neck[0], torch.nn.BatchNorm1d) and isinstance(model.neck[1], torch.nn.ReLU)
    assert model.neck[0].bias.requires_grad  # a plain BN, not the BNNeck's fixed shift
    assert model.dropout.p == 0.5 and model.classifier.bias is not None
    assert (model.triplet.in_features, model.triplet.out_features) == (1024, 128)
    x = torch.randn(6, 3, 64, 32)
    model.train()
    feats, logits = model(x)
    assert feats.shape == (6, 128) and logits.shape == (6, 10)
    # The triplet head sees the ReLU output before dropout (HHL's resnet.py): recompute by hand.
    torch.manual_seed(1)
    feats, _ = model(x)
    relu = torch.relu(model.neck[0](model.embedding(model.backbone(x).mean(dim=(2, 3)))))
    assert torch.allclose(feats, model.triplet(relu), atol=1e-5)
    model.eval()
    pool5 = torch.nn.functional.normalize(model.backbone(x).mean(dim=(2, 3)), dim=1)
    assert model.out_dim == 128 and torch.allclose(model(x), pool5, atol=1e-6)  # test: normalised pool5


def test_chunks_run_each_sub_batch_on_its_own():
    """Separate forward passes: BN statistics per sub-batch, exactly as three calls of the model."""
    torch.manual_seed(0)
    model = model_from_config(_tiny_model_cfg("market2duke_hhl_paper", "model.dropout=0.0"), num_classes=5)
    model.train()
    x = torch.randn(10, 3, 64, 32)
    x[6:] = x[6:] * 3 + 2  # a "target" domain with other statistics
    state = {k: v.clone() for k, v in model.state_dict().items()}
    feats, logits = model(x, chunks=[4, 2])
    model.load_state_dict(state)
    parts = [model(x[:4]), model(x[4:6]), model(x[6:])]
    assert torch.allclose(feats, torch.cat([f for f, _ in parts]), atol=1e-5)
    assert torch.allclose(logits, torch.cat([g for _, g in parts]), atol=1e-5)
    model.load_state_dict(state)
    mixed, _ = model(x)
    assert (mixed - feats).abs().max() > 1e-3  # one mixed forward is a different computation


def test_imagenet_v1_asks_torchvision_for_the_2018_weights(monkeypatch):
    """`pretrained=True` of 2018 is IMAGENET1K_V1; torchvision's DEFAULT for ResNet-50 is V2 now."""
    import torchvision

    from reid_stargan.reid.models import BACKBONES

    asked = []
    real = torchvision.models.resnet50

    def fake(weights=None):
        asked.append(weights)
        return real(weights=None)

    monkeypatch.setattr(torchvision.models, "resnet50", fake)
    BACKBONES.get("resnet50")(pretrained="imagenet_v1", last_stride=2)
    BACKBONES.get("resnet50")(pretrained="imagenet", last_stride=2)
    assert asked == [torchvision.models.ResNet50_Weights.IMAGENET1K_V1, torchvision.models.ResNet50_Weights.IMAGENET1K_V2]


def test_sgd_with_nesterov_and_the_two_lrs():
    cfg = _tiny_model_cfg("market2duke_hhl_paper")
    model = model_from_config(cfg, num_classes=10)
    opt, sched = make_optimizer(model, cfg)
    assert isinstance(opt, torch.optim.SGD)
    body, head = opt.param_groups
    assert (body["lr"], head["lr"]) == (pytest.approx(0.01), pytest.approx(0.1))
    for g in (body, head):
        assert g["momentum"] == 0.9 and g["nesterov"] and g["weight_decay"] == 5e-4
    # Every layer is trained: the IDE FC, its BN and the triplet head too (the official code leaves them out).
    in_head = {id(p) for p in head["params"]}
    for module in (model.embedding, model.neck, model.triplet, model.classifier):
        assert all(id(p) in in_head for p in module.parameters())
    assert len(body["params"]) + len(head["params"]) == len(list(model.parameters()))
    lrs = []
    for _ in range(60):
        lrs.append(opt.param_groups[1]["lr"])
        opt.step()
        sched.step()
    assert lrs[39] == pytest.approx(0.1) and lrs[40] == pytest.approx(0.01) and lrs[59] == pytest.approx(0.01)


def test_sized_rect_crop_replays_the_official_draws():
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (128, 64, 3), dtype=np.uint8))
    for seed in range(20):
        got = sized_rect_crop(img, (256, 128), np.random.default_rng(seed))
        rng = np.random.default_rng(seed)
        want = img.resize((128, 256), Image.BILINEAR)  # the fallback after 10 misses
        for _ in range(10):
            area, ratio = rng.uniform(0.64, 1.0) * 64 * 128, rng.uniform(2, 3)
            h, w = int(round(np.sqrt(area * ratio))), int(round(np.sqrt(area / ratio)))
            if w <= 64 and h <= 128:
                left, top = rng.integers(0, 64 - w + 1), rng.integers(0, 128 - h + 1)
                want = img.crop((left, top, left + w, top + h)).resize((128, 256), Image.BILINEAR)
                break
        assert got.size == (128, 256) and np.array_equal(np.asarray(got), np.asarray(want)), seed
    # An image too wide for any aspect in 2-3 is resized.
    wide = img.resize((200, 50))
    assert np.array_equal(np.asarray(sized_rect_crop(wide, (256, 128), np.random.default_rng(0))),
                          np.asarray(wide.resize((128, 256), Image.BILINEAR)))
    # The default input path draws nothing extra: identical to before the option existed.
    a = augment(img, InputConfig(), np.random.default_rng(5))
    b = augment(img, InputConfig(sized_rect_crop=False), np.random.default_rng(5))
    assert torch.equal(a, b) and augment(img, InputConfig(sized_rect_crop=True, pad=0, erasing=0.0),
                                         np.random.default_rng(5)).shape == (3, 256, 128)


# ----------------------------------------------------------------------------- configs
@pytest.mark.parametrize("name", IDE_CONFIGS)
def test_ide_paper_configs(name):
    cfg = load_config(ReidConfig, REID / f"{name}.yaml")
    m, o, i, s, c, e = cfg.model, cfg.optim, cfg.input, cfg.sampler, cfg.camstyle, cfg.eval
    assert (m.backbone, m.pretrained, m.last_stride, m.head, m.embed_dim, m.dropout, m.triplet_dim,
            m.test_feature) == ("resnet50", "imagenet_v1", 2, "ide", 1024, 0.5, 0, "pool5")
    assert (o.name, o.lr, o.head_lr_mult, o.momentum, o.nesterov, o.weight_decay) == ("sgd", 0.01, 10.0, 0.9, True, 5e-4)
    assert (o.epochs, o.warmup_epochs, o.milestones, o.gamma) == (50, 0, [40], 0.1)
    assert o.iters_per_epoch == (12936 if name.startswith("market") else 16522) // 128
    assert (s.kind, s.batch_size) == ("random", 128)
    assert (cfg.loss.label_smoothing, cfg.loss.triplet_weight, cfg.loss.id_weight) == (0.0, 0.0, 1.0)
    assert (c.lsr_epsilon, c.loss_form, c.generated_weight, c.same_ids, c.triplet, c.own_camera,
            c.separate_forward) == (0.1, "paper", 1.0, False, False, False, True)
    assert round(128 * c.share / (1 - c.share)) == 46
    assert (i.height, i.width, i.sized_rect_crop, i.flip, i.pad, i.erasing) == (256, 128, True, 0.5, 0, 0.0)
    assert (e.metric, e.flip, e.rerank) == ("euclidean", False, False)
    assert cfg.train.mode == ("camstyle" if "camstyle" in name else "baseline") and cfg.train.amp is False
    # The baseline and +CamStyle arms differ in the mode only.
    pair = load_config(ReidConfig, REID / f"{name.replace('camstyle', 'X').replace('baseline', 'camstyle').replace('X', 'baseline')}.yaml")
    assert (pair.optim, pair.model, pair.input, pair.sampler, pair.camstyle, pair.train.seed) == (
        cfg.optim, cfg.model, cfg.input, cfg.sampler, cfg.camstyle, cfg.train.seed)


@pytest.mark.parametrize("name", HHL_CONFIGS)
def test_hhl_paper_configs(name):
    cfg = load_config(ReidConfig, REID / f"{name}.yaml")
    m, o, h, s = cfg.model, cfg.optim, cfg.hhl, cfg.sampler
    assert (m.head, m.embed_dim, m.dropout, m.triplet_dim, m.test_feature, m.last_stride) == ("ide", 1024, 0.5, 128, "pool5", 2)
    assert (h.ce_batch, h.num_target, h.num_views, h.triplet_weight, h.separate_forward) == (128, 16, 0, 0.5, True)
    assert (s.kind, s.num_ids, s.num_instances) == ("pk", 8, 8)
    assert (cfg.loss.triplet_margin, cfg.loss.soft_margin, cfg.loss.label_smoothing) == (0.3, False, 0.0)
    assert (o.name, o.lr, o.head_lr_mult, o.nesterov, o.epochs, o.milestones, o.warmup_epochs) == (
        "sgd", 0.01, 10.0, True, 60, [40], 0)
    source, target = name.split("_")[0].split("2")
    assert o.iters_per_epoch == (12936 if source == "market" else 16522) // 128
    assert cfg.data.name.startswith(source[:4]) and cfg.hhl.target.name.startswith(target[:4])
    assert cfg.train.mode == "hhl" and cfg.eval.metric == "euclidean" and not cfg.eval.flip


@pytest.mark.parametrize("name", ["market", "duke"])
def test_pipeline_paper_configs_follow_stargan4reid(name):
    path = PIPELINE / f"{name}_gpu_paper.yaml"
    cfg = load_config(PipelineConfig, path)
    g = cfg.generate
    assert (g.naming, g.include_own, g.targets_per_image, g.resize_back, g.keep_detail, g.amp, g.jpeg_quality) == (
        "hhl", True, 0, False, False, False, 75)
    gan = load_config(StarGANConfig, path.parent / cfg.stargan.config, cfg.stargan.overrides)
    assert (gan.runtime.amp, gan.train.lr_schedule, gan.train.lr_update_step) == (False, "official", 1000)
    assert (gan.train.num_iters, gan.train.num_iters_decay, gan.train.batch_size, gan.gan.image_size) == (
        220000, 110000, 16, (256, 128))
    assert cfg.reid_baseline.config.endswith(f"{name}_baseline_paper.yaml")
    assert cfg.reid_camstyle.config.endswith(f"{name}_camstyle_paper.yaml")
    for stage in (cfg.reid_baseline, cfg.reid_camstyle):
        load_config(ReidConfig, path.parent / stage.config, stage.overrides)


def test_new_options_refuse_what_would_run_wrongly():
    base = REID / "market_camstyle_paper.yaml"
    for override, message in [("optim.iters_per_epoch=0", "iters_per_epoch"),
                              ("loss.triplet_weight=1.0", "triplet"),
                              ("camstyle.same_ids=true", "same_ids"),
                              ("model.embed_dim=0", "embed_dim"),
                              ("model.dropout=1.0", "dropout"),
                              ("optim.name=rmsprop", "optim.name")]:
        with pytest.raises(ConfigError, match=message):
            load_config(ReidConfig, base, [override])
    with pytest.raises(ConfigError, match="sampler.kind must be pk"):
        load_config(ReidConfig, REID / "market2duke_hhl_paper.yaml", ["sampler.kind=random"])
    with pytest.raises(ConfigError, match="hhl.ce_batch"):
        load_config(ReidConfig, REID / "market2duke_hhl_paper.yaml", ["optim.iters_per_epoch=0"])


# ----------------------------------------------------------------------------- a few CPU iterations
SIZES = dict(num_train_ids=12, num_test_ids=8, num_cameras=3, images_per_id_cam=3, min_cameras_per_id=2,
             max_cameras_per_id=3, height=64, width=32)


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("paper")
    make_synthetic(root / "src", seed=0, **SIZES)
    make_synthetic(root / "tgt", seed=1, **SIZES)
    write_oracle_camstyle(root / "src", root / "src_oracle")
    write_oracle_camstyle(root / "tgt", root / "tgt_oracle", naming="hhl")
    # Own-camera renderings next to the others, as generation with include_own writes them: the
    # CamStyle recipe must not train on them.
    manifest = root / "src_oracle" / "manifest.jsonl"
    entries = [json.loads(line) for line in manifest.read_text().splitlines()]
    for source in sorted({e["source"] for e in entries}):
        e = next(x for x in entries if x["source"] == source)
        name = output_name(Path(source).name, e["src_cam"], e["src_cam"])
        (root / "src_oracle" / name).write_bytes((root / "src_oracle" / e["output"]).read_bytes())
        entries.append(manifest_entry(source, e["pid"], e["src_cam"], e["src_cam"], name))
    manifest.write_text("".join(json.dumps(e) + "\n" for e in entries))
    return root


TINY = ["model.backbone=small", "model.pretrained=none", "input.height=64", "input.width=32",
        "optim.iters_per_epoch=2", "optim.epochs=1", "train.device=cpu", "train.threads=1", "train.num_workers=0",
        "train.channels_last=false", "train.tensorboard=false", "train.log_every=1", "train.seed=3",
        "eval.batch_size=128", "data.name=market_layout"]


@pytest.mark.parametrize("name", IDE_CONFIGS + HHL_CONFIGS)
def test_paper_recipe_runs_a_few_cpu_iterations(sets, tmp_path, name, monkeypatch):
    from reid_stargan.reid.models import ReidModel

    seen_chunks = []
    forward = ReidModel.forward

    def spy(self, x, chunks=None):
        if self.training:
            seen_chunks.append(chunks)
        return forward(self, x, chunks)

    monkeypatch.setattr(ReidModel, "forward", spy)
    overrides = [*TINY, f"data.root={sets / 'src'}"]
    camstyle = None
    if "hhl" in name:
        overrides += ["hhl.ce_batch=16", "sampler.num_ids=4", "sampler.num_instances=4", "hhl.num_target=4",
                      f"hhl.target.root={sets / 'tgt'}", "hhl.target.name=market_layout"]
        camstyle = sets / "tgt_oracle"
    else:
        overrides += ["sampler.batch_size=16"]
        camstyle = sets / "src_oracle" if "camstyle" in name else None
    cfg = load_config(ReidConfig, REID / f"{name}.yaml", overrides)
    metrics = train_reid(cfg, tmp_path / "run", camstyle=None if camstyle is None else str(camstyle), progress=False)
    sched = metrics["schedule"]
    assert sched["total_iterations"] == 2 and 0.0 <= metrics["mAP"] <= 100.0
    stats = [json.loads(line) for line in (tmp_path / "run" / "stats.jsonl").read_text().splitlines()]
    steps = [s for s in stats if "step" in s]
    assert len(steps) == 2 and all(np.isfinite(s["loss"]) for s in steps)
    assert steps[0]["lr"] == pytest.approx(0.01)  # SGD, base lr; epoch 0 of no warm-up
    # separate forward passes: [CE | source triplet | target] and [real | generated]
    want = [16, 16] if "hhl" in name else [16] if "camstyle" in name else None
    assert seen_chunks == [want, want]
    if "hhl" in name:
        # 16 CE + 4 x 4 triplet source + 4 targets x (1 + both other cameras of the 3)
        assert (sched["real_per_batch"], sched["target_per_batch"], sched["batch_size"]) == (32, 12, 44)
        assert set(steps[0]) >= {"id", "triplet"} and steps[0]["loss"] == pytest.approx(
            steps[0]["id"] + 0.5 * steps[0]["triplet"], abs=1e-4)
    elif "camstyle" in name:
        assert (sched["real_per_batch"], sched["generated_per_batch"]) == (16, 6)  # round(16 x 0.264 / 0.736)
        # the own-camera renderings were left out: only the oracle's other-camera images count
        other = [g for g in read_camstyle(sets / "src_oracle") if g.src_camid != g.dst_camid]
        assert metrics["camstyle_images"] == len(other) < len(read_camstyle(sets / "src_oracle"))
        assert set(steps[0]) >= {"id_real", "id_generated"} and "triplet" not in steps[0]
    else:
        assert (sched["real_per_batch"], sched["batch_size"]) == (16, 16) and "triplet" not in steps[0]
