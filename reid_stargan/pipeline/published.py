"""Published reference numbers (NOT measured by this toolkit), each with where it was read.

These rows give the reader a scale for the measured table; they are never mixed into it. Every
number was checked against the source named in its row; numbers that could not be checked are left
out rather than recalled from memory. Left out for that reason: TriNet on DukeMTMC-reID (72.44 / 53.50
is listed on paperswithcode, but the paper's own table could not be checked; the data set postdates
the paper's first version) and TriNet cross-domain numbers. CamStyle's and HHL's rows are the
authors' README tables (one decimal).

Example::

    from reid_stargan.pipeline.published import published_table_markdown
    print(published_table_markdown())
"""

from __future__ import annotations

from typing import NamedTuple

HEADING = "Published reference numbers (from the papers' authors; not measured here)"


class PublishedResult(NamedTuple):
    method: str
    paper: str
    setting: str  # data set, or "source -> target" for cross-domain
    rank1: float  # percent
    mAP: float  # percent
    notes: str
    source: str  # where the number was read


_CAMSTYLE = "Zhong et al., Camera Style Adaptation for Person Re-identification, CVPR 2018"
_CAMSTYLE_SRC = "github.com/zhunzhong07/CamStyle README, Results table"
_HHL = "Zhong et al., Generalizing A Person Retrieval Model Hetero- and Homogeneously (HHL), ECCV 2018"
_HHL_SRC = "github.com/zhunzhong07/HHL README, Results table"
_TRINET = "Hermans, Beyer & Leibe, In Defense of the Triplet Loss for Person Re-Identification, arXiv:1703.07737"
_TRINET_MARKET_SRC = ("paper's results as listed on paperswithcode.com/paper/in-defense-of-the-triplet-loss-for-person-re "
                      "(rank-1 also on L. Zheng's Market-1501 state-of-the-art page)")

PUBLISHED: tuple[PublishedResult, ...] = (
    PublishedResult("IDE (CamStyle's baseline)", _CAMSTYLE, "Market-1501", 85.6, 65.8,
                    "ResNet-50, cross-entropy", _CAMSTYLE_SRC),
    PublishedResult("IDE + CamStyle", _CAMSTYLE, "Market-1501", 88.1, 68.7,
                    "CycleGAN camera styles, LSR on generated images", _CAMSTYLE_SRC),
    PublishedResult("IDE + CamStyle + Random Erasing", _CAMSTYLE, "Market-1501", 89.4, 71.5, "", _CAMSTYLE_SRC),
    PublishedResult("IDE (CamStyle's baseline)", _CAMSTYLE, "DukeMTMC-reID", 72.3, 51.8,
                    "ResNet-50, cross-entropy", _CAMSTYLE_SRC),
    PublishedResult("IDE + CamStyle", _CAMSTYLE, "DukeMTMC-reID", 75.2, 53.4,
                    "CycleGAN camera styles, LSR on generated images", _CAMSTYLE_SRC),
    PublishedResult("IDE + CamStyle + Random Erasing", _CAMSTYLE, "DukeMTMC-reID", 78.3, 57.6, "", _CAMSTYLE_SRC),
    PublishedResult("Baseline (HHL's, source only)", _HHL, "DukeMTMC-reID -> Market-1501", 44.6, 20.6,
                    "trained on source, tested on target", _HHL_SRC),
    PublishedResult("HHL", _HHL, "DukeMTMC-reID -> Market-1501", 62.2, 31.4,
                    "StarGAN camera styles of the target set", _HHL_SRC),
    PublishedResult("Baseline (HHL's, source only)", _HHL, "Market-1501 -> DukeMTMC-reID", 32.9, 16.9,
                    "trained on source, tested on target", _HHL_SRC),
    PublishedResult("HHL", _HHL, "Market-1501 -> DukeMTMC-reID", 46.9, 27.2,
                    "StarGAN camera styles of the target set", _HHL_SRC),
    PublishedResult("TriNet", _TRINET, "Market-1501", 84.92, 69.14,
                    "ResNet-50, batch-hard triplet, no re-ranking", _TRINET_MARKET_SRC),
)


def _fmt(x: float) -> str:
    return f"{x:.2f}" if round(x, 1) != x else f"{x:.1f}"


def published_table_markdown(results: tuple[PublishedResult, ...] = PUBLISHED) -> str:
    """Markdown section: heading, a warning line, the table (single query, no re-ranking, percent),
    and the numbered sources. Ready to paste into ``report.md`` below the measured table."""
    sources = list(dict.fromkeys(r.source for r in results))  # first-seen order, numbered [1], [2], ...
    papers = list(dict.fromkeys(r.paper for r in results))
    lines = [f"## {HEADING}", "",
             "Copied from the cited sources for scale only: different backbones, input sizes and schedules "
             "than the runs above, so do not read differences as this toolkit's gain or loss. "
             "Single query, no re-ranking, percent.", "",
             "| method | setting | rank-1 | mAP | notes | source |", "|---|---|---:|---:|---|---|"]
    for r in results:
        lines.append(f"| {r.method} | {r.setting} | {_fmt(r.rank1)} | {_fmt(r.mAP)} | {r.notes} | "
                     f"[{sources.index(r.source) + 1}] |")
    lines.append("")
    lines += [f"[{i}] {s}  " for i, s in enumerate(sources, 1)]
    lines += ["", "Papers: " + "; ".join(papers) + "."]
    return "\n".join(lines) + "\n"
