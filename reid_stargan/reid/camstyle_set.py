"""Reading a CamStyle set for training, and refusing one that belongs to another data set.

Also writes the "oracle" CamStyle set of the synthetic benchmark: every training image rendered
exactly in every other camera (`true_rendering`), named as generate_camstyle names its outputs.
It bounds what a perfect camera-style translator could add::

    write_oracle_camstyle("data/synthetic", "data/synthetic_oracle")   # then --camstyle data/synthetic_oracle
"""

from __future__ import annotations

import io
import json
import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from reid_stargan.camstyle.naming import (
    MANIFEST_NAME,
    CamStyleRecord,
    camstyle_status,
    manifest_entry,
    output_name,
    read_camstyle,
)
from reid_stargan.data.records import Record
from reid_stargan.utils.io import atomic_write_bytes, atomic_write_text


class CamStyleMismatchError(ValueError):
    """A CamStyle set whose identities or cameras do not belong to the training set."""


class CamStyleIncompleteError(ValueError):
    """A CamStyle folder that generate_camstyle did not finish (a killed or running generation)."""


def check_camstyle_complete(location: str | os.PathLike, allow_incomplete: bool, log) -> bool | None:
    """Refuse a CamStyle folder that is not complete (`camstyle_status`) unless `allow_incomplete`,
    then say so through `log.info`; returns the status's `complete` (None: cannot be judged)."""
    if not Path(location).exists():
        return None  # load_camstyle names the missing folder
    status = camstyle_status(location)
    if status.complete is False:
        counts = f" ({status.present} of {status.planned} listed images on disk)" if status.planned else ""
        if not allow_incomplete:
            raise CamStyleIncompleteError(
                f"CamStyle set {location} is incomplete{counts}: {status.reason}; or set "
                "camstyle.allow_incomplete=true to train on the images it has")
        log.info(f"warning: CamStyle set {location} is incomplete{counts}: {status.reason}; "
                 "training on the images it has (camstyle.allow_incomplete=true)")
    elif status.complete is None:
        log.info(f"CamStyle set {location}: {status.reason}")
    return status.complete


def _examples(values, limit: int = 5) -> str:
    values = sorted(values)
    more = f", ... ({len(values)} in all)" if len(values) > limit else ""
    return ", ".join(str(v) for v in values[:limit]) + more


def check_camstyle_matches(generated: Sequence[CamStyleRecord], train: Sequence[Record], num_cameras: int,
                           location: str, dataset: str) -> None:
    """Raise `CamStyleMismatchError` unless every generated image is a training identity, translated
    from a camera where the training set has that identity, into one of its `num_cameras` cameras."""
    if not generated:
        raise CamStyleMismatchError(f"CamStyle set {location}: no generated images found")
    train_pids = {r.pid for r in train}
    seen = {(r.pid, r.camid) for r in train}
    problems = []
    foreign = {g.pid for g in generated} - train_pids
    if foreign:
        problems.append(f"{len(foreign)} identities are not training identities of {dataset} ({_examples(foreign)})")
    bad_cams = {c for g in generated for c in (g.src_camid, g.dst_camid) if not 0 <= c < num_cameras}
    if bad_cams:
        problems.append(f"camera(s) {_examples(c + 1 for c in bad_cams)} (1-based) outside c1..c{num_cameras} "
                        f"of {dataset}")
    unseen = {(g.pid, g.src_camid) for g in generated if g.pid in train_pids} - seen
    if unseen:
        problems.append(f"{len(unseen)} (identity, source camera) pairs never occur in the training set "
                        f"(e.g. {_examples(f'{p}/c{c + 1}' for p, c in unseen)})")
    if problems:
        raise CamStyleMismatchError(
            f"CamStyle set {location} does not match the training set {dataset}: " + "; ".join(problems)
            + ". Generate it from this data set (tools/generate_camstyle.py) or point --camstyle elsewhere."
        )


def load_camstyle(location: str | os.PathLike, train: Sequence[Record], num_cameras: int,
                  dataset: str) -> list[CamStyleRecord]:
    """The generated images of `location` (folder or manifest), checked against the training set."""
    generated = read_camstyle(location)
    check_camstyle_matches(generated, train, num_cameras, str(location), dataset)
    return generated


def _source_stem(g: CamStyleRecord) -> str:
    return Path(g.source).stem if g.source else Path(g.path).stem.split("_fake_")[0]


def target_versions(location: str | os.PathLike, target_train: Sequence[Record], num_cameras: int,
                    dataset: str) -> dict[str, list[str]]:
    """HHL: target training image path -> paths of its camera-style versions (checked like above)."""
    generated = load_camstyle(location, target_train, num_cameras, dataset)
    by_stem = {Path(r.path).stem: r.path for r in target_train}
    versions: dict[str, list[str]] = defaultdict(list)
    orphans = 0
    for g in generated:
        real = by_stem.get(_source_stem(g))
        if real is None:
            orphans += 1
        else:
            versions[real].append(g.path)
    if not versions:
        raise CamStyleMismatchError(f"CamStyle set {location}: none of its images comes from a training "
                                    f"image of {dataset} ({orphans} orphans)")
    return dict(versions)


def write_oracle_camstyle(synthetic_root: str | os.PathLike, out_dir: str | os.PathLike,
                          naming: str = "camstyle", jpeg_quality: int = 95) -> int:
    """Render every training image of a synthetic set in each of the other cameras; returns the count.

    Writes `<stem>_fake_<src>to<dst>.jpg` files and a manifest.jsonl (atomically, last), the same
    layout as tools/generate_camstyle.py; skips the work when the manifest already exists.
    """
    from PIL import Image

    from reid_stargan.data.synthetic import read_image_meta, read_meta, true_rendering

    out_dir = Path(out_dir)
    if (out_dir / MANIFEST_NAME).is_file():
        return len(read_camstyle(out_dir))
    out_dir.mkdir(parents=True, exist_ok=True)
    num_cameras = read_meta(synthetic_root)["params"]["num_cameras"]
    lines = []
    # The set's own metadata lists its training images (files added to the folder later are not ours).
    for name, rec in sorted(read_image_meta(synthetic_root).items()):
        if rec["split"] != "train":
            continue
        pid, src = rec["pid"], rec["camid"]
        for dst in range(num_cameras):
            if dst == src:
                continue
            image, _ = true_rendering(synthetic_root, name, dst, noise=True)
            out = output_name(name, src, dst, naming)
            buf = io.BytesIO()
            Image.fromarray(image).save(buf, format="JPEG", quality=jpeg_quality, subsampling=0)
            atomic_write_bytes(out_dir / out, buf.getvalue())
            source = Path(synthetic_root) / rec["file"]
            lines.append(json.dumps(manifest_entry(str(source), pid, src, dst, out)))
    atomic_write_text(out_dir / MANIFEST_NAME, "\n".join(lines) + "\n")
    return len(lines)
