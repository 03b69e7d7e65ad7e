"""Fusion of the dense and BM25 candidate lists, and the per-municipality diversity re-rank.

Every function is pure and works on ``{id: score}`` dicts (higher is better), so the same code
serves the engine, the measurement grid (``search.evaluate.fusion_grid``) and the unit tests.

Methods (see docs/quality.md for the measurements that chose the default):

- ``"rrf"``      — reciprocal rank fusion, ``Σ w_i / (k + rank_i)``; equal weights = plain RRF.
- ``"minmax"``   — weighted sum of min-max normalised scores (each list scaled to [0, 1]).
- ``"zscore"``   — weighted sum of z-scored scores (each list: mean 0, standard deviation 1).

A candidate missing from a list contributes that list's floor: 0 for RRF and min-max, and the
list's minimum z-score for ``"zscore"``. The engine scores every candidate in *both* lists
(exact dense and BM25 scores of the union), so in practice nothing is missing.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import TypeVar

import numpy as np

K = TypeVar("K", bound=Hashable)

METHODS = ("rrf", "minmax", "zscore")
#: The RRF constant of Cormack et al. (2009).
RRF_K = 60


def ranks(scores: Mapping[K, float]) -> dict[K, int]:
    """1-based ranks of ``scores`` (higher score = better rank; ties keep insertion order)."""
    order = sorted(scores, key=lambda key: -scores[key])
    return {key: i + 1 for i, key in enumerate(order)}


def minmax(scores: Mapping[K, float]) -> dict[K, float]:
    """Scores scaled to [0, 1]; a constant list maps to 1.0 (every candidate equally good)."""
    if not scores:
        return {}
    lo, hi = min(scores.values()), max(scores.values())
    if hi - lo <= 1e-12:
        return {key: 1.0 for key in scores}
    return {key: (v - lo) / (hi - lo) for key, v in scores.items()}


def zscore(scores: Mapping[K, float]) -> dict[K, float]:
    """Scores standardised to mean 0, standard deviation 1; a constant list maps to 0.0."""
    if not scores:
        return {}
    vals = list(scores.values())
    mean = sum(vals) / len(vals)
    sd = math.sqrt(sum((v - mean) ** 2 for v in vals) / len(vals))
    if sd <= 1e-12:
        return {key: 0.0 for key in scores}
    return {key: (v - mean) / sd for key, v in scores.items()}


def rrf(lists: Sequence[Mapping[K, float]], weights: Sequence[float], k: int = RRF_K) -> dict[K, float]:
    """Weighted reciprocal rank fusion: ``Σ_i w_i / (k + rank_i(d))`` over the lists holding d."""
    out: dict[K, float] = {}
    for scores, w in zip(lists, weights):
        for key, r in ranks(scores).items():
            out[key] = out.get(key, 0.0) + w / (k + r)
    return out


def weighted_sum(
    lists: Sequence[Mapping[K, float]], weights: Sequence[float], norm: str = "minmax"
) -> dict[K, float]:
    """``Σ_i w_i · norm(list_i)(d)``; a list not holding d contributes its floor (see module doc)."""
    f: Callable[[Mapping[K, float]], dict[K, float]] = minmax if norm == "minmax" else zscore
    normed = [f(s) for s in lists]
    keys: dict[K, None] = {}
    for s in lists:
        keys.update(dict.fromkeys(s))
    out: dict[K, float] = {}
    for key in keys:
        total = 0.0
        for n, w in zip(normed, weights):
            floor = min(n.values()) if (norm == "zscore" and n) else 0.0
            total += w * n.get(key, floor)
        out[key] = total
    return out


def fuse(
    dense: Mapping[K, float],
    bm25: Mapping[K, float],
    method: str = "zscore",
    dense_weight: float = 0.45,
    bm25_weight: float = 0.55,
    rrf_k: int = RRF_K,
) -> dict[K, float]:
    """Fuse the dense and BM25 scores of the candidates with ``method`` (one of :data:`METHODS`)."""
    if method == "rrf":
        return rrf([dense, bm25], [dense_weight, bm25_weight], k=rrf_k)
    if method in ("minmax", "zscore"):
        return weighted_sum([dense, bm25], [dense_weight, bm25_weight], norm=method)
    raise ValueError(f"unknown fusion method {method!r}; use one of {', '.join(METHODS)}")


def sort_scores(scores: Mapping[K, float]) -> list[K]:
    """Keys by descending score; ties broken by the key itself (ids: lower first) for stability."""
    return sorted(scores, key=lambda key: (-scores[key], key))  # type: ignore[operator]


def cap_per_group(ranked: Sequence[K], group_of: Callable[[K], str], cap: int,
                  placed: Mapping[str, int] | None = None) -> list[K]:
    """Re-rank so that no group (municipality) has more than ``cap`` items before every other
    item has been placed.

    Items over the cap are deferred, not dropped: they follow all within-cap items, in their
    original order (and, among themselves, again capped round by round), so a question whose
    answers all come from one document still gets a full list. ``cap <= 0`` disables the re-rank.
    ``placed``: items per group already placed before ``ranked`` (they count in the first round).
    """
    if cap <= 0:
        return list(ranked)
    out: list[K] = []
    rest = list(ranked)
    first_round = True
    while rest:
        counts: dict[str, int] = dict(placed or {}) if first_round else {}
        first_round = False
        deferred: list[K] = []
        for key in rest:
            g = group_of(key)
            if counts.get(g, 0) < cap:
                counts[g] = counts.get(g, 0) + 1
                out.append(key)
            else:
                deferred.append(key)
        rest = deferred
    return out


def spread_groups(
    ranked: Sequence[K],
    scores: Mapping[K, float],
    group_of: Callable[[K], str],
    floor: float,
    cap: int = 0,
    cap_group_of: Callable[[K], str] | None = None,
) -> list[K]:
    """Re-rank for "which"/"compare" questions: every group's (municipality's) best item whose score
    reaches the relevance ``floor`` comes before any group's second item.

    ``floor`` is a share of the candidates' score range, so it means the same for every retrieval
    mode: an item counts as relevant when ``(score − min) / (top − min) ≥ floor`` over ``ranked``.
    The groups' best items above the floor keep their relative order; everything else follows in
    its original order, re-ranked by :func:`cap_per_group` with ``cap`` per ``cap_group_of``
    (default: ``group_of``; the engine caps per document, so that a municipality with many
    documents shows more than one of them).
    """
    if not ranked:
        return []
    vals = [scores[key] for key in ranked]
    top, lo = max(vals), min(vals)
    span = top - lo

    def rel(key: K) -> float:
        return 1.0 if span <= 1e-12 else (scores[key] - lo) / span

    first: list[K] = []
    seen: set[str] = set()
    for key in ranked:
        g = group_of(key)
        if g in seen:
            continue
        seen.add(g)
        if rel(key) >= floor:
            first.append(key)
    taken = set(first)
    rest = [key for key in ranked if key not in taken]
    cg = cap_group_of or group_of
    placed: dict[str, int] = {}
    for key in first:
        placed[cg(key)] = placed.get(cg(key), 0) + 1
    return first + cap_per_group(rest, cg, cap, placed=placed)


def demote_near_duplicates(
    ranked: Sequence[K],
    scores: Mapping[K, float],
    group_of: Callable[[K], str],
    vectors: np.ndarray,
    sim_from: float,
    weight: float,
) -> list[K]:
    """Greedy MMR inside groups: re-rank ``ranked`` so that an item nearly repeating a passage of
    its own group (municipality) already placed follows items that add something new.

    Each step places the item with the highest ``score − weight · span · dup``, where ``span`` is
    the score range of ``ranked`` (so ``weight`` means the same in every retrieval mode) and
    ``dup = max(0, (s − sim_from) / (1 − sim_from))`` for ``s`` the highest cosine between the
    item's ``vectors`` row (L2-normalised, one per item of ``ranked``) and the items of its group
    placed before it. Items of other groups never penalise each other, and a group's best item
    keeps its score. ``weight <= 0`` returns ``ranked`` unchanged.
    """
    n = len(ranked)
    if weight <= 0 or n < 2:
        return list(ranked)
    base = np.array([scores[key] for key in ranked], dtype=np.float64)
    span = float(base.max() - base.min())
    if span <= 1e-12:
        return list(ranked)
    groups = np.array([group_of(key) for key in ranked])
    sims = np.asarray(vectors, dtype=np.float32) @ np.asarray(vectors, dtype=np.float32).T
    same = groups[:, None] == groups[None, :]
    dup = np.where(same, np.clip((sims - sim_from) / max(1e-6, 1.0 - sim_from), 0.0, 1.0), 0.0)
    worst = np.zeros(n)  # highest dup against a placed item of the same group
    left = np.ones(n, dtype=bool)
    order: list[int] = []
    for _ in range(n):
        val = np.where(left, base - weight * span * worst, -np.inf)
        j = int(np.argmax(val))  # ties: the earlier item
        order.append(j)
        left[j] = False
        worst = np.maximum(worst, dup[j])
    return [ranked[j] for j in order]
