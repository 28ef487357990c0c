"""Rank a saved gallery (.npz of tools/extract_features.py) for a few query features.

Example::

    from reid_stargan.eval.query import load_gallery, rank_gallery
    gallery = load_gallery("gallery.npz")                     # g_feats (G, D), g_paths, g_pids, g_camids
    dist, idx = rank_gallery(query_feats, gallery, k=10)      # (Q, 10) cosine distances, gallery rows
    print([gallery.paths[i] for i in idx[0]])

Distances are cosine distances ``1 - <q/|q|, g/|g|>``, ascending. The default backend is FAISS: an exact
``IndexFlatIP`` over the L2-normalised gallery (the kNN search it is built for; on GPU with faiss-gpu).
``backend="numpy"`` is the brute-force reference (the full (Q, G) product, stable argsort) and
``"torch"`` the streaming exact path of `reid_stargan.eval.retrieval`.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

QUERY_BACKENDS = ("faiss", "numpy", "torch")


class Gallery(NamedTuple):
    feats: np.ndarray  # (G, D) float32
    paths: list[str]  # G image paths ("" when the file holds none)
    pids: np.ndarray  # (G,) int64, -1 where unknown
    camids: np.ndarray  # (G,) int64, 0-based, -1 where unknown
    meta: dict  # image_size, flip, checkpoint when the file records them


def load_gallery(path: str | os.PathLike) -> Gallery:
    """The gallery arrays of an .npz (``g_feats`` and, when present, ``g_paths``, ``g_pids``, ``g_camids``).

    No pickles are loaded; a file without ``g_feats`` raises ValueError naming the arrays it holds.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"gallery file not found: {path}")
    try:
        data = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise ValueError(f"{path}: not a readable .npz archive ({exc})") from exc
    with data:
        if "g_feats" not in data:
            raise ValueError(f"{path}: no g_feats array (it holds {', '.join(data.files) or 'nothing'}); write a "
                             "gallery with tools/extract_features.py")
        try:
            feats = np.ascontiguousarray(data["g_feats"], dtype=np.float32)
            n = len(feats)
            paths = [str(p) for p in data["g_paths"]] if "g_paths" in data else [""] * n
            pids = data["g_pids"].astype(np.int64) if "g_pids" in data else np.full(n, -1, np.int64)
            camids = data["g_camids"].astype(np.int64) if "g_camids" in data else np.full(n, -1, np.int64)
            meta = {k: data[k].tolist() for k in ("image_size", "flip", "checkpoint") if k in data}
        except ValueError as exc:  # object arrays need pickles, which are never loaded
            raise ValueError(f"{path}: {exc}") from exc
    if feats.ndim != 2 or n == 0:
        raise ValueError(f"{path}: g_feats must be a non-empty (G, D) array, got shape {feats.shape}")
    if not (len(paths) == len(pids) == len(camids) == n):
        raise ValueError(f"{path}: g_feats has {n} rows but g_paths / g_pids / g_camids have "
                         f"{len(paths)} / {len(pids)} / {len(camids)}")
    return Gallery(feats, paths, pids, camids, meta)


def _normalized(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


def rank_numpy(query_feats: np.ndarray, gallery_feats: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Brute-force reference: (dist (Q, k) float32, idx (Q, k) int64), cosine distance ascending."""
    dist = 1.0 - _normalized(query_feats) @ _normalized(gallery_feats).T  # (Q, G)
    idx = np.argsort(dist, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(dist, idx, axis=1).astype(np.float32), idx.astype(np.int64)


def rank_gallery(query_feats, gallery, k: int = 10, backend: str = "faiss") -> tuple[np.ndarray, np.ndarray]:
    """Top-k gallery rows of each query: (dist (Q, k) float32 in [0, 2], idx (Q, k) int64), ascending
    cosine distance.

    query_feats: (Q, D) or (D,) features of the same model as the gallery. gallery: an .npz path, a
    `Gallery`, or a (G, D) array. k is capped at the gallery size. backend: one of `QUERY_BACKENDS`.
    """
    if isinstance(gallery, (str, os.PathLike)):
        gallery = load_gallery(gallery)
    g = gallery.feats if isinstance(gallery, Gallery) else np.ascontiguousarray(gallery, dtype=np.float32)
    q = np.asarray(query_feats, dtype=np.float32)
    q = q[None] if q.ndim == 1 else q
    if q.ndim != 2 or g.ndim != 2 or q.shape[1] != g.shape[1]:
        raise ValueError(f"query features {q.shape} and gallery features {g.shape} must be (Q, D) and (G, D) "
                         "with the same D (the same model)")
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    k = min(k, len(g))
    if backend == "numpy":
        dist, idx = rank_numpy(q, g, k)
    elif backend == "torch":
        from reid_stargan.eval.retrieval import torch_topk

        dist, idx = torch_topk(q, g, k, metric="cosine")
    elif backend == "faiss":
        from reid_stargan.eval.retrieval import build_faiss_index, faiss_available, faiss_search

        if not faiss_available():
            raise ImportError("backend 'faiss' needs the faiss module (pip install faiss-cpu); or use backend='numpy'")
        index = build_faiss_index(g, metric="cosine", index="flat")  # IndexFlatIP over normalised rows
        dist, idx = faiss_search(index, q, k, metric="cosine")
    else:
        raise ValueError(f"backend must be one of {', '.join(QUERY_BACKENDS)}, got {backend!r}")
    return np.clip(dist, 0.0, 2.0), idx  # rounding puts a near-duplicate a hair below 0


def draw_ranking(query_paths, gallery: Gallery, dist: np.ndarray, idx: np.ndarray, out_path: str | os.PathLike,
                 query_pids=None, tile_size: tuple[int, int] = (128, 64)) -> Path:
    """One PNG: a row per query (its image, then its top k with rank and distance under each).

    Frames are green / red where both the query's and the gallery image's pid are known (>= 0), none
    otherwise. Written atomically; returns the path.
    """
    from PIL import Image, ImageDraw

    from reid_stargan.eval.visualize import GREEN, RED, framed_tile
    from reid_stargan.utils.io import atomic_write_bytes

    h, w = tile_size
    gap, text_h = 6, 24
    k = idx.shape[1]
    canvas = Image.new("RGB", (gap + (k + 1) * (w + gap) + gap, gap + len(query_paths) * (h + text_h + gap)),
                       (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for row, qpath in enumerate(query_paths):
        y = gap + row * (h + text_h + gap)
        canvas.paste(framed_tile(str(qpath), tile_size, None), (gap, y))
        draw.text((gap, y + h + 2), "query", fill=(0, 0, 0))
        draw.text((gap, y + h + 12), Path(qpath).name[:12], fill=(0, 0, 0))
        q_pid = -1 if query_pids is None else int(query_pids[row])
        for slot in range(k):
            gi = int(idx[row, slot])
            if gi < 0:
                continue
            g_pid = int(gallery.pids[gi])
            frame = None if q_pid < 0 or g_pid < 0 else (GREEN if g_pid == q_pid else RED)
            x = gap + (slot + 1) * (w + gap) + gap
            canvas.paste(framed_tile(gallery.paths[gi], tile_size, frame), (x, y))
            draw.text((x, y + h + 2), f"#{slot + 1} d={dist[row, slot]:.3f}", fill=(0, 0, 0))
            draw.text((x, y + h + 12), Path(gallery.paths[gi]).name[:12], fill=(90, 90, 90))
    buffer = io.BytesIO()
    canvas.save(buffer, format="PNG")
    return atomic_write_bytes(Path(out_path), buffer.getvalue())
