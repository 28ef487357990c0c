"""How CamStyle images are named and listed, shared by the generator and the re-ID reader.

Two naming conventions, cameras written 1-based as in Market-1501 names:

* ``camstyle`` (CamStyle, Zhong et al. CVPR 2018): ``<stem>_fake_<src>to<dst>.jpg``
* ``hhl`` (HHL, Zhong et al. ECCV 2018):              ``<stem>_fake_<dst>.jpg``

``<stem>`` is the source image's file name without suffix, so the identity and source camera stay
readable by the Market-1501 pattern. Next to the images, ``manifest.jsonl`` lists one output per
line (so training never has to parse names) and ``camstyle_info.json`` records which generator
checkpoint wrote the folder.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import NamedTuple

from reid_stargan.data.datasets import MARKET_NAME
from reid_stargan.data.imageio import IMAGE_SUFFIXES

NAMINGS = ("camstyle", "hhl")
MANIFEST_NAME = "manifest.jsonl"
INFO_NAME = "camstyle_info.json"
_FAKE_NAME = re.compile(r"^(?P<stem>.+)_fake_(?:(?P<src>\d+)to)?(?P<dst>\d+)$")


class CamStyleRecord(NamedTuple):
    path: str  # the generated image
    pid: int  # the source image's identity
    src_camid: int  # 0-based
    dst_camid: int  # 0-based
    source: str  # the real image it was translated from ("" when only the name is known)


def output_name(source_name: str, src_camid: int, dst_camid: int, naming: str = "camstyle",
                suffix: str = ".jpg") -> str:
    """File name of `source_name` rendered in camera `dst_camid` (both camids 0-based)."""
    stem = Path(source_name).stem
    if naming == "camstyle":
        return f"{stem}_fake_{src_camid + 1}to{dst_camid + 1}{suffix}"
    if naming == "hhl":
        return f"{stem}_fake_{dst_camid + 1}{suffix}"
    raise ValueError(f"unknown naming '{naming}'; valid: {', '.join(NAMINGS)}")


def parse_output_name(name: str) -> CamStyleRecord | None:
    """(pid, src_camid, dst_camid) from a generated file name in either convention, else None."""
    stem = Path(name).stem
    fake = _FAKE_NAME.match(stem)
    if fake is None:
        return None
    market = MARKET_NAME.match(fake.group("stem"))
    if market is None:
        return None
    pid, src = int(market.group(1)), int(market.group(2)) - 1
    if fake.group("src") is not None and int(fake.group("src")) - 1 != src:
        return None  # the two camera fields disagree: not a name this toolkit writes
    return CamStyleRecord(name, pid, src, int(fake.group("dst")) - 1, "")


def manifest_entry(source: str, pid: int, src_camid: int, dst_camid: int, output: str) -> dict:
    return {"source": source, "pid": pid, "src_cam": src_camid, "dst_cam": dst_camid, "output": output}


def read_camstyle(location: str | os.PathLike) -> list[CamStyleRecord]:
    """All generated images of a CamStyle folder or manifest file.

    `location` is a ``manifest.jsonl`` file, or a folder: its manifest is used when present,
    otherwise every image whose name follows either convention. Output paths in a manifest are
    relative to the manifest's folder. Only files that exist are returned.
    """
    location = Path(location)
    if location.is_file():
        return _read_manifest(location)
    if not location.is_dir():
        raise FileNotFoundError(f"CamStyle location {location} is neither a folder nor a manifest file")
    if (location / MANIFEST_NAME).is_file():
        return _read_manifest(location / MANIFEST_NAME)
    records = []
    for name in sorted(os.listdir(location)):
        if name.lower().endswith(IMAGE_SUFFIXES) and (rec := parse_output_name(name)) is not None:
            records.append(rec._replace(path=str(location / name)))
    if not records:
        raise ValueError(f"{location}: no CamStyle images (names like <stem>_fake_<src>to<dst>.jpg "
                         "or <stem>_fake_<dst>.jpg) and no manifest.jsonl")
    return records


def _read_manifest(path: Path) -> list[CamStyleRecord]:
    records = []
    for line_no, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        try:
            e = json.loads(line)
            out = path.parent / e["output"]
            rec = CamStyleRecord(str(out), int(e["pid"]), int(e["src_cam"]), int(e["dst_cam"]), e["source"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{line_no}: bad manifest line ({exc})") from exc
        if out.is_file():
            records.append(rec)
    return records
