"""The model-stitching paper's joint objective: up and down maps trained together with cycle terms.

``MSE(T↑a, b) + MSE(T↓b, a) + α·MSE(T↓T↑a, a) + α·MSE(T↑T↓b, b)`` over paired rows ``(a, b)`` (source, target),
with Adam, initialised from the two independent closed-form maps; the best pair on held-out rows (same loss) is
kept. Compared with the closed-form pair on stitched and round-trip cross-entropy in
``benchmarks/stitch_joint.py``.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from .affine import AffineMap


def joint_loss(up, down, a: torch.Tensor, b: torch.Tensor, alpha: float) -> torch.Tensor:
    """The four-term objective for maps given as ``(A, p)`` pairs."""
    (A, p), (B, q) = up, down
    ua, db = a @ A.T + p, b @ B.T + q
    mse = torch.nn.functional.mse_loss
    return mse(ua, b) + mse(db, a) + alpha * (mse(ua @ B.T + q, a) + mse(db @ A.T + p, b))


def fit_joint(a: torch.Tensor, b: torch.Tensor, up: AffineMap, down: AffineMap, alpha: float = 1.0,
              steps: int = 2000, lr: float = 1e-4, batch_size: int = 1024, seed: int = 0,
              heldout: tuple[torch.Tensor, torch.Tensor] | None = None, eval_every: int = 100
              ) -> tuple[AffineMap, AffineMap, list[dict]]:
    """Train ``(up, down)`` jointly on rows ``a [n, d_S]``, ``b [n, d_T]``; returns the pair with the best held-out
    joint loss (the initial pair included) and the loss history."""
    g = torch.Generator().manual_seed(seed)
    params = [t.detach().clone().float().requires_grad_(True) for t in (up.A, up.p, down.A, down.p)]
    opt = torch.optim.Adam(params, lr=lr)
    ha, hb = heldout if heldout is not None else (a, b)

    def held_loss() -> float:
        with torch.no_grad():
            return float(joint_loss(params[:2], params[2:], ha, hb, alpha))

    best, best_params, history = held_loss(), [t.detach().clone() for t in params], []
    history.append({"step": 0, "heldout_loss": round(best, 6)})
    for step in range(1, steps + 1):
        idx = torch.randint(0, len(a), (min(batch_size, len(a)),), generator=g)
        loss = joint_loss(params[:2], params[2:], a[idx], b[idx], alpha)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % eval_every == 0 or step == steps:
            h = held_loss()
            history.append({"step": step, "train_loss": round(float(loss.detach()), 6), "heldout_loss": round(h, 6)})
            if h < best:
                best, best_params = h, [t.detach().clone() for t in params]
    A, p, B, q = best_params
    meta = {"method": "joint", "alpha": alpha, "steps": steps, "lr": lr, "best_heldout_loss": round(best, 6)}
    return (replace(up, A=A, p=p, meta={**up.meta, **meta}), replace(down, A=B, p=q, meta={**down.meta, **meta}),
            history)
