"""The "oracle" CamStyle set of the synthetic benchmark: every training image rendered exactly in
every other camera (`true_rendering`), named, encoded and listed as generate_camstyle does. It
bounds what a perfect camera-style translator could add::

    write_oracle_camstyle("data/synthetic", "data/synthetic_oracle")   # then --camstyle data/synthetic_oracle
"""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image

from reid_stargan.camstyle.generate import encode_image
from reid_stargan.camstyle.naming import (
    MANIFEST_NAME,
    manifest_entry,
    output_name,
    read_camstyle,
    write_manifest,
)
from reid_stargan.utils.io import atomic_write_bytes


def write_oracle_camstyle(synthetic_root: str | os.PathLike, out_dir: str | os.PathLike,
                          naming: str = "camstyle", jpeg_quality: int = 95) -> int:
    """Render every training image of a synthetic set in each of the other cameras; returns the count.

    Writes `<stem>_fake_<src>to<dst>.jpg` files and a manifest.jsonl (atomically, last), the same
    layout as tools/generate_camstyle.py; skips the work when the manifest already exists.
    """
    from reid_stargan.data.synthetic import read_image_meta, read_meta, true_rendering

    out_dir = Path(out_dir)
    if (out_dir / MANIFEST_NAME).is_file():
        return len(read_camstyle(out_dir))
    out_dir.mkdir(parents=True, exist_ok=True)
    num_cameras = read_meta(synthetic_root)["params"]["num_cameras"]
    entries = []
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
            # 4:4:4 chroma: the oracle's colours are the truth the measures compare against.
            atomic_write_bytes(out_dir / out, encode_image(Image.fromarray(image), "jpg", jpeg_quality, subsampling=0))
            entries.append(manifest_entry(str(Path(synthetic_root) / rec["file"]), pid, src, dst, out))
    write_manifest(out_dir, entries)
    return len(entries)
