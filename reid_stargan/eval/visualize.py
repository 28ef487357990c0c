"""Ranked-list pictures: each query with its top-k gallery images, true matches framed green, false red.

Example::

    from reid_stargan.eval.visualize import save_ranked_lists
    save_ranked_lists(q_feats, g_feats, q_pids, g_pids, q_camids, g_camids, q_paths, g_paths,
                      out_dir="runs/vis", num_queries=10)
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from reid_stargan.utils.io import atomic_write_bytes

from .retrieval import DistanceComputer

GREEN, RED, GREY = (0, 170, 0), (220, 0, 0), (128, 128, 128)


def _tile(path: str, size: tuple[int, int], frame: tuple[int, int, int] | None, border: int = 4) -> Image.Image:
    h, w = size
    try:
        with Image.open(path) as img:
            tile = img.convert("RGB").resize((w, h))
    except OSError:
        tile = Image.new("RGB", (w, h), GREY)
    if frame is not None:
        ImageDraw.Draw(tile).rectangle([0, 0, w - 1, h - 1], outline=frame, width=border)
    return tile


def ranked_gallery(q_feat: np.ndarray, computer: DistanceComputer, q_pid: int, q_camid: int,
                   g_pids: np.ndarray, g_camids: np.ndarray, topk: int = 10):
    """Top-k gallery indices of one query under the protocol (junk and same-camera matches removed)."""
    dist = computer(q_feat[None])[0].cpu().numpy()  # (G,)
    removed = (g_pids == -1) | ((g_pids == q_pid) & (g_camids == q_camid))
    dist[removed] = np.inf
    order = np.argsort(dist, kind="stable")[:topk]
    return order[np.isfinite(dist[order])]


def save_ranked_lists(q_feats, g_feats, q_pids, g_pids, q_camids, g_camids, q_paths, g_paths, out_dir,
                      num_queries: int = 10, topk: int = 10, metric: str = "cosine", tile_size=(128, 64),
                      seed: int = 0) -> list[Path]:
    """Write ``num_queries`` PNGs (queries drawn with ``seed``) of query + top-k; returns the paths."""
    q_pids, g_pids = np.asarray(q_pids), np.asarray(g_pids)
    q_camids, g_camids = np.asarray(q_camids), np.asarray(g_camids)
    computer = DistanceComputer(g_feats, metric)
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(len(q_pids), size=min(num_queries, len(q_pids)), replace=False))
    h, w = tile_size
    gap = 8
    written = []
    for qi in chosen:
        ranked = ranked_gallery(np.asarray(q_feats[qi]), computer, int(q_pids[qi]), int(q_camids[qi]),
                                g_pids, g_camids, topk)
        canvas = Image.new("RGB", ((topk + 1) * (w + gap) + gap, h + 2 * gap), (255, 255, 255))
        canvas.paste(_tile(q_paths[qi], tile_size, None), (gap, gap))
        for slot, gi in enumerate(ranked, start=1):
            frame = GREEN if g_pids[gi] == q_pids[qi] else RED
            canvas.paste(_tile(g_paths[gi], tile_size, frame), (gap + slot * (w + gap) + gap, gap))
        buffer = io.BytesIO()
        canvas.save(buffer, format="PNG")
        written.append(atomic_write_bytes(Path(out_dir) / f"query_{qi:06d}.png", buffer.getvalue()))
    return written
