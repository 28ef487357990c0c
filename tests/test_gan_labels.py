"""Domain label layouts: cameras, CelebA hair exclusivity, the multi-data-set mask vector and slicing."""

from __future__ import annotations

import pytest
import torch

from reid_stargan.gan.labels import DomainSpec, LabelLayout, linked_targets, permute_targets
from reid_stargan.gan.losses import classification_loss

CELEBA = DomainSpec("celeba", 5, "multi", ("Black_Hair", "Blond_Hair", "Brown_Hair", "Male", "Young"))
RAFD = DomainSpec("rafd", 8, "single")


def test_single_camera_layout_is_plain_one_hot():
    layout = LabelLayout([DomainSpec("market", 6, "single")])
    assert (layout.g_dim, layout.d_dim, layout.mask_dim) == (6, 6, 0)
    c = layout.condition(0, torch.tensor([0, 5, 2]))
    assert torch.equal(c, torch.eye(6)[[0, 5, 2]])
    with pytest.raises(ValueError, match="outside 0..5"):
        layout.condition(0, torch.tensor([6]))


def test_two_reid_sets_mask_vector_layout():
    layout = LabelLayout([DomainSpec("market", 6, "single"), DomainSpec("duke", 8, "single")])
    assert (layout.g_dim, layout.d_dim) == (16, 14)
    assert layout.cls_slice(0) == slice(0, 6) and layout.cls_slice(1) == slice(6, 14)
    c = layout.condition(1, torch.tensor([2, 7]))  # duke cameras 3 and 8
    expect = torch.zeros(2, 16)
    expect[0, 6 + 2] = expect[1, 6 + 7] = 1
    expect[:, 15] = 1  # mask [0, 1]: the duke block is valid
    assert torch.equal(c, expect)
    c0 = layout.condition(0, torch.tensor([4]))
    assert c0[0, 4] == 1 and c0[0, 14] == 1 and c0.sum() == 2
    # A Market image rendered in every camera of both data sets: 6 + 8 columns of the grid.
    conds = layout.all_fixed_conditions(0, torch.tensor([1, 3]))
    assert len(conds) == 14 and torch.equal(conds[9][0, 6:14], torch.eye(8)[3]) and conds[9][0, 15] == 1


def test_celeba_rafd_layout_and_hair_exclusivity():
    layout = LabelLayout([CELEBA, RAFD])
    assert (layout.g_dim, layout.d_dim) == (15, 13)
    raw = torch.tensor([[1.0, 0, 0, 1, 0], [0, 0, 1, 0, 1]])
    targets = layout.fixed_targets(0, raw)
    assert len(targets) == 5
    assert torch.equal(targets[1], torch.tensor([[0.0, 1, 0, 1, 0], [0, 1, 0, 0, 1]]))  # blond only
    assert torch.equal(targets[3], torch.tensor([[1.0, 0, 0, 0, 0], [0, 0, 1, 1, 1]]))  # Male flipped
    for t in targets[:3]:
        assert torch.all(t[:, :3].sum(1) == 1)  # exactly one hair colour
    c = layout.condition(0, raw)
    assert torch.equal(c[:, :5], raw) and torch.all(c[:, 5:13] == 0) and torch.equal(c[:, 13:], torch.tensor([[1.0, 0]] * 2))


def test_sliced_classification_loss_sees_only_its_block():
    layout = LabelLayout([CELEBA, RAFD])
    logits = torch.randn(4, 13, requires_grad=True)
    labels = torch.tensor([0, 3, 7, 1])
    loss = classification_loss(logits[:, layout.cls_slice(1)], labels, "single")
    assert loss.item() == pytest.approx(torch.nn.functional.cross_entropy(logits[:, 5:], labels).item())
    loss.backward()
    assert torch.all(logits.grad[:, :5] == 0) and logits.grad[:, 5:].abs().sum() > 0


def test_permuted_targets_are_the_batch_labels():
    g = torch.Generator().manual_seed(0)
    raw = torch.tensor([0, 1, 1, 2, 5, 5, 5, 3])
    t = permute_targets(raw, g)
    assert sorted(t.tolist()) == sorted(raw.tolist()) and not torch.equal(t, raw)
    assert torch.equal(permute_targets(raw, torch.Generator().manual_seed(0)), t)  # seeded


def test_linked_targets_stay_in_the_camera_group_and_leave_the_own_camera():
    links = torch.zeros(5, 5, dtype=torch.bool)
    for group in ([0, 1], [2, 3, 4]):
        for cam in group:
            links[cam, group] = True
    raw = torch.tensor([0, 1, 2, 3, 4] * 200)
    t = linked_targets(raw, links, torch.Generator().manual_seed(0))
    assert torch.equal(t, linked_targets(raw, links, torch.Generator().manual_seed(0)))  # seeded
    assert bool(links[raw, t].all()) and bool((t != raw).all())
    assert set(t[raw == 0].tolist()) == {1} and set(t[raw == 2].tolist()) == {3, 4}  # both partners drawn
    alone = torch.eye(2, dtype=torch.bool)  # a camera that shares no identity keeps its own label
    assert linked_targets(torch.tensor([0, 1]), alone).tolist() == [0, 1]


def test_camera_sets_carry_their_links_to_the_trainer(tmp_path):
    from conftest import write_image

    from reid_stargan.data.config import DataConfig
    from reid_stargan.gan.data import build_domain_data

    for pid, cams in ((1, (1, 2)), (2, (1, 2)), (3, (3, 4))):
        for cam in cams:
            write_image(tmp_path / "bounding_box_train" / f"{pid:04d}_c{cam}s1_000000_00.jpg")
    data = build_domain_data(DataConfig(name="market_layout", root=str(tmp_path)))
    expected = torch.tensor([[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]], dtype=torch.bool)
    assert torch.equal(data.links, expected)
