"""How CamStyle images are named and listed, shared by the generator and the re-ID reader.

Two naming conventions, cameras written 1-based as in Market-1501 names:

* ``camstyle`` (CamStyle, Zhong et al. CVPR 2018): ``<stem>_fake_<src>to<dst>.jpg``
* ``hhl`` (HHL, Zhong et al. ECCV 2018):              ``<stem>_fake_<dst>.jpg``

``<stem>`` is the source image's file name without suffix, so the identity and source camera stay
readable by the Market-1501 pattern. Next to the images, ``manifest.jsonl`` lists one output per
line (so training never has to parse names) and ``camstyle_info.json`` records which generator
checkpoint wrote the folder. A run holds ``.generate.lock`` (per shard: ``.generate.shard-I-of-N.lock``)
while it writes, and writes ``summary.json`` last. `camstyle_status` says whether a folder is complete.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import NamedTuple

from reid_stargan.data.datasets import MARKET_NAME
from reid_stargan.data.imageio import IMAGE_SUFFIXES
from reid_stargan.utils.io import atomic_write_text
from reid_stargan.utils.lock import read_lock

NAMINGS = ("camstyle", "hhl")
MANIFEST_NAME = "manifest.jsonl"
INFO_NAME = "camstyle_info.json"
SUMMARY_NAME = "summary.json"
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


def source_stem(g: CamStyleRecord) -> str:
    """File stem of the real image `g` was translated from (from the manifest, else from its name)."""
    return Path(g.source).stem if g.source else _FAKE_NAME.match(Path(g.path).stem).group("stem")


def has_generated_images(folder: str | os.PathLike) -> bool:
    """Whether `folder` holds at least one image named as a generated one (either convention)."""
    folder = Path(folder)
    return folder.is_dir() and any(_FAKE_NAME.match(p.stem) for p in folder.iterdir() if p.is_file())


def manifest_entry(source: str, pid: int, src_camid: int, dst_camid: int, output: str) -> dict:
    return {"source": source, "pid": pid, "src_cam": src_camid, "dst_cam": dst_camid, "output": output}


def write_manifest(folder: str | os.PathLike, entries: list[dict]) -> None:
    """`manifest.jsonl` of `manifest_entry` dicts, written atomically (readers take it as "finished")."""
    atomic_write_text(Path(folder) / MANIFEST_NAME, "".join(json.dumps(e) + "\n" for e in entries))


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
    records = [rec._replace(path=str(location / name)) for name in sorted(os.listdir(location))
               if name.lower().endswith(IMAGE_SUFFIXES) and (rec := parse_output_name(name)) is not None]
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


# ----------------------------------------------------------------------------- completeness
def lock_name(shard_index: int = 0, num_shards: int = 1) -> str:
    """The lock file a generate_camstyle run (or one shard of it) holds in its output folder."""
    return ".generate.lock" if num_shards == 1 else f".generate.shard-{shard_index}-of-{num_shards}.lock"


class CamStyleStatus(NamedTuple):
    complete: bool | None  # None: not a folder of this toolkit, completeness cannot be judged
    planned: int  # outputs the manifest lists (0 without one)
    present: int  # of those, on disk
    reason: str  # why it is not complete (or cannot be judged); "" when complete


def camstyle_status(location: str | os.PathLike) -> CamStyleStatus:
    """Whether a CamStyle folder (or manifest) holds every image it should.

    A generate_camstyle folder (it has ``camstyle_info.json``) is complete when no run holds its
    lock, its manifest and a summary of the current checkpoint exist (both are written at the end of
    a run), and every output the manifest lists is on disk, except outputs of source images the
    run could not read (counted in the summary). A folder with a manifest but no info file (the
    synthetic oracle set) is complete when every listed output exists. Anything else (images
    only, e.g. a downloaded CamStyle release) cannot be judged: `complete` is None.
    """
    location = Path(location)
    folder, manifest = (location.parent, location) if location.is_file() else (location, location / MANIFEST_NAME)
    info_path = folder / INFO_NAME
    ours = info_path.is_file()
    locks = sorted(folder.glob(".generate*.lock"))
    if locks:
        holder = read_lock(locks[0])
        who = "unreadable holder" if holder is None else f"pid {holder.get('pid')} on {holder.get('host')}"
        return CamStyleStatus(False, 0, 0, f"a generate_camstyle run is writing it or was stopped ({locks[0].name}: "
                                           f"{who}); rerun generate_camstyle into it to finish it")
    if not manifest.is_file():
        if ours:
            return CamStyleStatus(False, 0, 0, f"no {MANIFEST_NAME}: the generate_camstyle run was stopped before "
                                               "it finished; rerun it into this folder to finish it")
        return CamStyleStatus(None, 0, 0, f"no {INFO_NAME} or {MANIFEST_NAME}: not written by generate_camstyle, "
                                          "completeness not checked")
    entries = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
    present = sum((manifest.parent / e["output"]).is_file() for e in entries)
    missing = len(entries) - present
    if not ours:
        ok = missing == 0 and bool(entries)
        return CamStyleStatus(ok, len(entries), present,
                              "" if ok else f"{missing} of the {len(entries)} images {manifest} lists are missing")
    sha = json.loads(info_path.read_text()).get("checkpoint_sha256")

    def finished(path: Path) -> dict | None:  # the summary of a finished run with the current checkpoint
        summary = json.loads(path.read_text()) if path.is_file() else {}
        return summary if summary.get("checkpoint_sha256") == sha else None

    whole = finished(folder / SUMMARY_NAME)
    done = [whole] if whole else [s for p in sorted(folder.glob("summary.shard-*.json")) if (s := finished(p))]
    if not done:
        return CamStyleStatus(False, len(entries), present,
                              f"no summary of a finished run with the current checkpoint ({INFO_NAME}): the last "
                              "run was stopped before it finished; rerun generate_camstyle into it to finish it")
    targets = len({e["dst_cam"] for e in entries}) or 1
    # Outputs that cannot be made (unreadable sources; older summaries count the sources only).
    excused = sum(s.get("unmade_outputs", s.get("failed", 0) * targets) for s in done)
    ok = missing <= excused and bool(entries)
    reason = "" if ok else (f"{missing} of the {len(entries)} images {manifest} lists are missing "
                            f"({excused} of them from unreadable sources)")
    return CamStyleStatus(ok, len(entries), present, reason)
