"""A linear probe (multinomial logistic regression, L2, class-balanced) and its transfer through affine maps.

The probe is a plain affine readout ``logits = W·x + b`` (``W [classes, d]``): it is fitted on standardised
features with L-BFGS (the L2 strength chosen by 3-fold cross-validation on the training split), and the
standardisation is folded into ``W`` and ``b``, so that carrying it through a map is exact algebra:

- **down** (apply the small probe to large states mapped down, ``x_S ≈ A↓·x_L + p↓``):
  ``W' = W·A↓``, ``b' = b + W·p↓``;
- **up** (carry the weights up, reading ``x_S ≈ A↑⁺·(x_L − p↑)``): ``W' = W·A↑⁺``, ``b' = b − W·A↑⁺·p↑``.

Mean pooling commutes with an affine map, so a probe on pooled states transfers like one on token states.
Torch, not scikit-learn: no new dependency, the same dtype and device as the states, and the fold and transfer
are tensor algebra on the fitted weights.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch

from ..errors import DatasetError, DimensionMismatchError
from ..io.artifacts import load_artifact, save_artifact, split_meta
from ..maps.affine import AffineMap

L2_GRID = (1e-4, 1e-3, 1e-2, 1e-1)


@dataclass
class LinearProbe:
    W: torch.Tensor
    b: torch.Tensor
    classes: list[str]
    model: str
    layer: int | str
    meta: dict = field(default_factory=dict)

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-1] != self.W.shape[1]:
            raise DimensionMismatchError(f"this probe reads width {self.W.shape[1]} ({self.model}, layer "
                                         f"{self.layer}) but got width {x.shape[-1]}")
        return x.double() @ self.W.double().T + self.b.double()

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits(x).argmax(-1)

    def evaluate(self, x: torch.Tensor, labels: list[str]) -> dict:
        """Accuracy and AUROC (binary; macro one-vs-rest for more classes) on labelled rows."""
        y = torch.tensor([self.classes.index(lab) for lab in labels])
        lg = self.logits(x)
        prob = torch.softmax(lg, -1)
        return {"n": len(y), "accuracy": round(float((lg.argmax(-1) == y).double().mean()), 6),
                "auroc": round(auroc(prob, y), 6)}

    def save(self, directory: str | os.PathLike) -> None:
        save_artifact(directory, "probe", "linear_probe", {"W": self.W.float(), "b": self.b.float()},
                      {"classes": self.classes, "model": self.model, "layer": self.layer, **self.meta})

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "LinearProbe":
        t, meta = load_artifact(directory, "probe", "linear_probe")
        core, rest = split_meta(meta, ("classes", "model", "layer"))
        return cls(t["W"], t["b"], meta=rest, **core)


def auroc(prob: torch.Tensor, y: torch.Tensor) -> float:
    """Area under the ROC curve by ranks (ties averaged); macro one-vs-rest over classes present."""
    def binary(score, pos):
        n1, n0 = int(pos.sum()), int((~pos).sum())
        if n1 == 0 or n0 == 0:
            return float("nan")
        order = score.argsort()
        ranks = torch.empty_like(score, dtype=torch.float64)
        ranks[order] = torch.arange(1, len(score) + 1, dtype=torch.float64)
        for v in score.unique():                       # average ranks of ties
            m = score == v
            if int(m.sum()) > 1:
                ranks[m] = ranks[m].mean()
        return float((ranks[pos].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))
    if prob.shape[1] == 2:
        return binary(prob[:, 1], y == 1)
    vals = [binary(prob[:, c], y == c) for c in range(prob.shape[1]) if (y == c).any()]
    return sum(vals) / len(vals)


def _fit(x: torch.Tensor, y: torch.Tensor, n_cls: int, l2: float, steps: int = 200) -> tuple[torch.Tensor, torch.Tensor]:
    counts = torch.bincount(y, minlength=n_cls).double().clamp_min(1)
    weight = (len(y) / (n_cls * counts))                  # class-balanced
    W = torch.zeros(n_cls, x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(n_cls, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([W, b], lr=1, max_iter=steps, line_search_fn="strong_wolfe")

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(x @ W.T + b, y, weight=weight) + l2 * (W * W).sum()
        loss.backward()
        return loss
    opt.step(closure)
    return W.detach(), b.detach()


def fit_probe(x: torch.Tensor, labels: list[str], model: str, layer, l2: float | None = None, seed: int = 0
              ) -> LinearProbe:
    """Fit on rows ``x [n, d]`` with string ``labels``; ``l2`` chosen by 3-fold CV on these rows if None."""
    classes = sorted(set(labels))
    if len(classes) < 2:
        raise DatasetError(f"a probe needs at least two classes; the labels are all {classes[0]!r}" if classes
                           else "a probe needs labelled rows; none were given")
    y = torch.tensor([classes.index(lab) for lab in labels])
    x = x.double()
    mu, sd = x.mean(0), x.std(0).clamp_min(1e-8)
    z = (x - mu) / sd
    table = {}
    if l2 is None:
        folds = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed)) % 3
        for lam in L2_GRID:
            acc = []
            for f in range(3):
                tr, te = folds != f, folds == f
                W, b = _fit(z[tr], y[tr], len(classes), lam)
                acc.append(float(((z[te] @ W.T + b).argmax(-1) == y[te]).double().mean()))
            table[lam] = round(sum(acc) / 3, 6)
        l2 = max(table, key=lambda k: (table[k], k))      # ties: the stronger penalty
    W, b = _fit(z, y, len(classes), l2)
    Wf = W / sd
    return LinearProbe(Wf, b - Wf @ mu, classes, model, layer,
                       {"l2": l2, "l2_cv_accuracy": {str(k): v for k, v in table.items()}, "n_train": len(y),
                        "origin": "native"})


def probe_down(p: LinearProbe, down: AffineMap) -> LinearProbe:
    """The small model's probe applied to large-model states mapped down (``down``: large → small)."""
    if down.d_target != p.W.shape[1] or str(down.target_layer) != str(p.layer):
        raise DimensionMismatchError(f"the down map ends at width {down.d_target}, layer {down.target_layer}; the "
                                     f"probe reads width {p.W.shape[1]} at layer {p.layer}")
    W = p.W.double() @ down.A.double()
    return LinearProbe(W, p.b.double() + p.W.double() @ down.p.double(), p.classes, down.source,
                       down.source_layer, {**p.meta, "origin": "transferred-down"})


def probe_up(p: LinearProbe, up: AffineMap) -> LinearProbe:
    """The small model's probe carried up (``up``: small → large), reading the large state through A↑⁺."""
    if up.d_source != p.W.shape[1] or str(up.source_layer) != str(p.layer):
        raise DimensionMismatchError(f"the up map starts at width {up.d_source}, layer {up.source_layer}; the "
                                     f"probe reads width {p.W.shape[1]} at layer {p.layer}")
    pinv = torch.linalg.pinv(up.A.double())               # [d_S, d_L]
    W = p.W.double() @ pinv
    return LinearProbe(W, p.b.double() - W @ up.p.double(), p.classes, up.target, up.target_layer,
                       {**p.meta, "origin": "transferred-up"})
