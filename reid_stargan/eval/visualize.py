"""Ranked-list pictures: a query, then its top-k gallery images in the order that was actually ranked.

Draw the distances the metrics used (re-ranked ones when re-ranking is on): :func:`rank_gallery`
takes a (Q, G) distance matrix or the (start, end, dist) chunks that
:func:`~reid_stargan.eval.retrieval.iter_distance_chunks` and
:func:`~reid_stargan.eval.rerank.rerank_distance_chunks` yield, and keeps each query's top k and AP.
A caller with its own ranking can build a :class:`Ranking` directly.

Each PNG is named after the query's file (``0001_c1s1_001051_00.png``). Its title gives the query's
file name, person id, camera (1-based, as in Market-1501 names) and AP (finite sum, the tool's
``mAP`` form); each gallery tile its rank, distance, person id and camera, framed green for a true
match and red for a wrong one (the re-ID convention). Gallery items the protocol removes (same id in
the same camera, and pid -1 junk) are skipped, as in fast-reid's visualizer and in the metrics, so the
rank drawn is the rank CMC counts; the title says how many were skipped ahead of the last tile.

Queries are chosen by :func:`select_queries`: by file name, ``worst`` (lowest AP first, fast-reid's
``rank_sort='ascending'``), ``best``, or ``random`` with a seed.

Example::

    from reid_stargan.eval.retrieval import pairwise_distance
    from reid_stargan.eval.visualize import rank_gallery, save_ranked_lists, select_queries
    ranking = rank_gallery(pairwise_distance(q_feats, g_feats), q_pids, g_pids, q_camids, g_camids)
    chosen = select_queries(ranking, q_paths, "worst", num=10)
    save_ranked_lists(ranking, chosen, q_paths, g_paths, "runs/vis", note="cosine distance")
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from reid_stargan.utils.io import atomic_write_bytes

GREEN, RED, GREY = (0, 170, 0), (220, 0, 0), (128, 128, 128)
SELECTIONS = ("worst", "best", "random")
MARGIN, COL_GAP, LINE_GAP = 8, 12, 3  # pixels


@dataclass(frozen=True)
class Ranking:
    """Each query's top k after the protocol's removals, its AP, and the labels to draw them with.

    idx (Q, k): gallery indices, best first, -1 past the end of a short list; dist (Q, k): their
    distances (inf past the end); ap (Q,): finite-sum AP in [0, 1] over the whole ranking, NaN for a
    query without a true match; skipped (Q,): removed gallery items ranked ahead of the k-th tile
    (all of them when fewer than k remain).
    """

    idx: np.ndarray
    dist: np.ndarray
    ap: np.ndarray
    skipped: np.ndarray
    q_pids: np.ndarray
    q_camids: np.ndarray
    g_pids: np.ndarray
    g_camids: np.ndarray


def framed_tile(path: str, size: tuple[int, int], frame: tuple[int, int, int] | None, border: int = 4) -> Image.Image:
    h, w = size
    try:
        with Image.open(path) as img:
            tile = img.convert("RGB").resize((w, h))
    except OSError:  # a missing image must not cost the whole picture: a grey placeholder instead
        tile = Image.new("RGB", (w, h), GREY)
    if frame is not None:
        ImageDraw.Draw(tile).rectangle([0, 0, w - 1, h - 1], outline=frame, width=border)
    return tile


def _rank_row(row: np.ndarray, pid: int, camid: int, g_pids: np.ndarray, g_camids: np.ndarray, topk: int):
    """One query's (top-k indices, their distances, AP, skipped) from its (G,) distance row."""
    order = np.argsort(row, kind="stable")  # ties: lower gallery index first, as in the metrics
    removed = (g_pids[order] == -1) | ((g_pids[order] == pid) & (g_camids[order] == camid))
    kept = order[~removed]
    top = kept[:topk]
    hits = np.flatnonzero(g_pids[kept] == pid)  # 0-based ranks of the true matches
    ap = float(np.mean(np.arange(1, len(hits) + 1) / (hits + 1.0))) if len(hits) else math.nan
    # Removed items ranked ahead of the k-th tile; all of them when the filtered list has fewer than k.
    last = np.flatnonzero(~removed)[topk - 1] if len(kept) >= topk else len(order) - 1
    skipped = int(removed[:last + 1].sum())
    return top, row[top], ap, skipped


def rank_gallery(distances, q_pids, g_pids, q_camids, g_camids, topk: int = 10) -> Ranking:
    """Rank the gallery for every query from the distances that were evaluated.

    distances: a (Q, G) matrix (numpy or torch; smaller = closer) or an iterable of
    (start, end, (end - start, G) dist) chunks covering all Q queries. Returns a :class:`Ranking`.
    """
    q_pids, g_pids, q_camids, g_camids = (np.asarray(a, np.int64) for a in (q_pids, g_pids, q_camids, g_camids))
    num_q, num_g = len(q_pids), len(g_pids)
    idx = np.full((num_q, topk), -1, np.int64)
    dist = np.full((num_q, topk), np.inf, np.float64)
    ap = np.full(num_q, np.nan)
    skipped = np.zeros(num_q, np.int64)
    seen = np.zeros(num_q, bool)
    if hasattr(distances, "ndim") and distances.ndim == 2:  # one (Q, G) matrix: a single chunk
        distances = [(0, num_q, distances)]
    for start, end, chunk in distances:
        chunk = chunk.cpu().numpy() if hasattr(chunk, "cpu") else np.asarray(chunk)
        if chunk.shape != (end - start, num_g):
            raise ValueError(f"distance chunk {start}:{end} has shape {chunk.shape}, expected ({end - start}, {num_g})")
        for r, qi in enumerate(range(start, end)):
            top, d, ap[qi], skipped[qi] = _rank_row(chunk[r], q_pids[qi], q_camids[qi], g_pids, g_camids, topk)
            idx[qi, :len(top)], dist[qi, :len(top)] = top, d
        seen[start:end] = True
    if not seen.all():
        raise ValueError(f"distances cover {int(seen.sum())} of {num_q} queries")
    return Ranking(idx, dist, ap, skipped, q_pids, q_camids, g_pids, g_camids)


def select_queries(ranking: Ranking, q_paths: Sequence[str], how: str = "worst", num: int = 10, seed: int = 0,
                   names: Sequence[str] | None = None) -> list[int]:
    """Query indices to draw, in drawing order.

    ``names`` (file names, stems or paths) wins when given. Otherwise ``how``: ``worst`` = the ``num``
    lowest-AP queries, lowest first; ``best`` = the highest first (both skip queries without a true
    match, which have no AP); ``random`` = ``num`` queries drawn with ``seed``, in query order.
    """
    if len(q_paths) != len(ranking.ap):
        raise ValueError(f"{len(q_paths)} query paths for {len(ranking.ap)} queries")
    if names:  # every query whose path, file name or stem is one of them, in their order
        chosen = []
        for name in names:
            found = [i for i, p in enumerate(q_paths) if name in (str(p), Path(p).name, Path(p).stem)]
            if not found:
                examples = ", ".join(Path(p).name for p in q_paths[:3])
                raise ValueError(f"query {name!r} is not in the query set (its names look like {examples})")
            chosen += [i for i in found if i not in chosen]
        return chosen
    if how not in SELECTIONS:
        raise ValueError(f"query selection must be one of {', '.join(SELECTIONS)}, got {how!r}")
    if how == "random":
        rng = np.random.default_rng(seed)
        return sorted(int(i) for i in rng.choice(len(q_paths), size=min(num, len(q_paths)), replace=False))
    valid = np.flatnonzero(~np.isnan(ranking.ap))
    key = ranking.ap[valid] if how == "worst" else -ranking.ap[valid]
    return [int(i) for i in valid[np.argsort(key, kind="stable")[:num]]]


def _title(ranking: Ranking, qi: int, q_path: str, note: str, fit: int, measure, font) -> list[str]:
    """The title in one line when it fits in ``fit`` pixels, else in two."""
    ap = ranking.ap[qi]
    ap_text = "AP n/a (no true match in the gallery)" if math.isnan(ap) else f"AP {100 * ap:.1f}%"
    first = f"query {Path(q_path).name}   id {ranking.q_pids[qi]}   cam {ranking.q_camids[qi] + 1}   {ap_text}"
    second = f"{ranking.skipped[qi]} same-id same-camera / junk images skipped"
    second = f"{note}; {second}" if note else second
    one = f"{first}   |   {second}"
    return [one] if measure.textlength(one, font=font) <= fit else [first, second]


def _draw_query(ranking: Ranking, qi: int, q_path: str, g_paths: Sequence[str], tile_size: tuple[int, int],
                note: str) -> Image.Image:
    """One query's picture: title lines, then the query and its tiles, each with two lines under it."""
    font = ImageFont.load_default()
    h, w = tile_size
    shown = [(slot, int(gi)) for slot, gi in enumerate(ranking.idx[qi]) if gi >= 0]
    labels = [(f"rank {slot + 1}  d={ranking.dist[qi, slot]:.3f}",
               f"id {ranking.g_pids[gi]}  cam {ranking.g_camids[gi] + 1}") for slot, gi in shown]
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    line_h = int(measure.textbbox((0, 0), "Ag", font=font)[3]) + LINE_GAP
    col_w = max([w] + [int(measure.textlength(t, font=font)) for pair in labels for t in pair]) + COL_GAP
    width = 2 * MARGIN + (ranking.idx.shape[1] + 1) * col_w
    title = _title(ranking, qi, q_path, note, width - 2 * MARGIN, measure, font)
    width = max(width, 2 * MARGIN + max(int(measure.textlength(t, font=font)) for t in title))
    top = MARGIN + len(title) * line_h + LINE_GAP
    canvas = Image.new("RGB", (width, top + h + 2 * line_h + MARGIN), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for i, text in enumerate(title):
        draw.text((MARGIN, MARGIN + i * line_h), text, fill=(0, 0, 0), font=font)
    canvas.paste(framed_tile(q_path, tile_size, None), (MARGIN, top))
    draw.text((MARGIN, top + h + LINE_GAP), "query", fill=(0, 0, 0), font=font)
    for (slot, gi), (line1, line2) in zip(shown, labels):
        x = MARGIN + (slot + 1) * col_w + COL_GAP  # an extra gap sets the query apart
        frame = GREEN if ranking.g_pids[gi] == ranking.q_pids[qi] else RED
        canvas.paste(framed_tile(g_paths[gi], tile_size, frame), (x, top))
        draw.text((x, top + h + LINE_GAP), line1, fill=(0, 0, 0), font=font)
        draw.text((x, top + h + LINE_GAP + line_h), line2, fill=frame, font=font)
    return canvas


def _png_name(q_path: str, qi: int, used: set[str]) -> str:
    """The query's file stem; two queries with one file name (other folders) get their index added."""
    stem = Path(q_path).stem or f"query_{qi:06d}"
    name = stem if stem not in used else f"{stem}_q{qi:06d}"
    used.add(name)
    return f"{name}.png"


def save_ranked_lists(ranking: Ranking, chosen: Sequence[int], q_paths: Sequence[str], g_paths: Sequence[str],
                      out_dir, tile_size: tuple[int, int] = (128, 64), note: str = "") -> list[Path]:
    """Write one PNG per query in ``chosen`` (indices, e.g. from :func:`select_queries`) into ``out_dir``.

    ``note`` is added to the title (say which distance was ranked, e.g. "cosine distance,
    k-reciprocal re-ranked"). Files are written atomically; returns their paths in ``chosen`` order.
    """
    if len(g_paths) != len(ranking.g_pids):
        raise ValueError(f"{len(g_paths)} gallery paths for {len(ranking.g_pids)} gallery items")
    used: set[str] = set()
    written = []
    for qi in chosen:
        canvas = _draw_query(ranking, int(qi), str(q_paths[qi]), g_paths, tile_size, note)
        buffer = io.BytesIO()
        canvas.save(buffer, format="PNG")
        written.append(atomic_write_bytes(Path(out_dir) / _png_name(str(q_paths[qi]), int(qi), used),
                                          buffer.getvalue()))
    return written
