"""From harvested statistics to a judged map: choose the ridge on held-out rows, solve, measure.

:class:`PairStats` is everything one harvest leaves for a pair of row spaces — training and held-out moments,
the shuffled-row control, a held-out row sample — and can be sliced to any subset of columns (one layer pair of a
sweep, a window of source layers) or transposed (the inverse map). :func:`solve_and_judge` is the one place a map
is solved and judged, for ``lrt fit-map`` (both directions) and ``lrt sweep-layers`` (every pair).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..stats.moments import MomentStats
from .config import FitConfig
from .metrics import evaluate_map
from .solve import select_ridge, solve_affine

MIN_HELDOUT_ROWS = 1000


@dataclass
class PairStats:
    """Statistics of paired rows ``(x, y)`` of one harvest."""

    train: MomentStats
    """Training rows (after the massive-norm exclusion, if any)."""
    held: MomentStats
    """All held-out rows (exact held-out R² and MSE)."""
    held_kept: MomentStats
    """Held-out rows under the massive-norm cut (the ridge is chosen on these)."""
    shuffled: MomentStats | None
    """Training rows with y shuffled across rows (the chance-level control), or None."""
    sample_x: torch.Tensor | None
    """A uniform sample of held-out x rows (cosine, R² below the norm quantile)."""
    sample_y: torch.Tensor | None
    """The y rows of that sample."""

    def select(self, ix: torch.Tensor | None, iy: torch.Tensor | None) -> "PairStats":
        """The same statistics restricted to x columns ``ix`` and y columns ``iy``."""
        cut = lambda s: None if s is None else s.select(ix, iy)  # noqa: E731
        sx = None if self.sample_x is None else self.sample_x[:, slice(None) if ix is None else ix]
        sy = None if self.sample_y is None else self.sample_y[:, slice(None) if iy is None else iy]
        return PairStats(cut(self.train), cut(self.held), cut(self.held_kept), cut(self.shuffled), sx, sy)

    def transposed(self) -> "PairStats":
        """The statistics of ``(y, x)``: the inverse map's."""
        tr = lambda s: None if s is None else s.transposed()  # noqa: E731
        return PairStats(tr(self.train), tr(self.held), tr(self.held_kept), tr(self.shuffled), self.sample_y,
                         self.sample_x)


def choose_ridge(ps: PairStats, cfg: FitConfig) -> tuple[float, list[dict] | None, list[str]]:
    """``(ridge, selection table, warnings)``: the given ridge, or the grid's best on held-out rows."""
    if cfg.ridge is not None:
        return cfg.ridge, None, []
    if ps.held_kept.n < 2:
        ridge = min(cfg.ridge_grid)
        return ridge, None, [f"no held-out rows to choose the ridge on: used {ridge:g}"]
    ridge, table = select_ridge(ps.train, ps.held_kept, cfg.ridge_grid)
    return ridge, table, []


def solve_and_judge(ps: PairStats, cfg: FitConfig) -> tuple[torch.Tensor, torch.Tensor, dict]:
    """``(A, p, info)``: the ridge (given, or chosen on held-out rows), the closed-form map, and its metrics —
    training, held-out (exact all-token numbers and row-sample numbers) and the shuffled-row control."""
    ridge, table, warnings = choose_ridge(ps, cfg)
    A, p = solve_affine(ps.train, ridge)
    info = {"ridge": ridge, "ridge_selection": table, "warnings": warnings}
    info["metrics"] = judge(A, p, ps, cfg, ridge)
    return A, p, info


def judge(A: torch.Tensor, p: torch.Tensor, ps: PairStats, cfg: FitConfig, ridge: float) -> dict:
    """Training, held-out and shuffled-control metrics of the map ``(A, p)``."""
    rows = (ps.sample_x, ps.sample_y)
    metrics = {"train": evaluate_map(A, p, ps.train),
               "heldout": evaluate_map(A, p, ps.held, rows, cfg.norm_quantile)}
    if ps.shuffled is not None and ps.shuffled.n > 1 and ps.held.n > 1:
        As, p_s = solve_affine(ps.shuffled, ridge)
        metrics["shuffled_control_heldout"] = evaluate_map(As, p_s, ps.held, rows, cfg.norm_quantile)
    return metrics
