"""Reading a CamStyle set for training, and refusing one that belongs to another data set.

(The synthetic benchmark's oracle set, `write_oracle_camstyle`, lives in `reid_stargan.camstyle.oracle`.)
"""

from __future__ import annotations

import os
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from reid_stargan.camstyle.naming import CamStyleRecord, camstyle_status, read_camstyle, source_stem
from reid_stargan.camstyle.oracle import write_oracle_camstyle  # noqa: F401  (its old home; tests import it here)
from reid_stargan.data.records import Record


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


def target_versions(location: str | os.PathLike, target_train: Sequence[Record], num_cameras: int,
                    dataset: str) -> dict[str, list[str]]:
    """HHL: target training image path -> paths of its camera-style versions (checked like above)."""
    generated = load_camstyle(location, target_train, num_cameras, dataset)
    by_stem = {Path(r.path).stem: r.path for r in target_train}
    versions: dict[str, list[str]] = defaultdict(list)
    orphans = 0
    for g in generated:
        real = by_stem.get(source_stem(g))
        if real is None:
            orphans += 1
        else:
            versions[real].append(g.path)
    if not versions:
        raise CamStyleMismatchError(f"CamStyle set {location}: none of its images comes from a training "
                                    f"image of {dataset} ({orphans} orphans)")
    return dict(versions)
