"""The affine map artifact: ``h_T ≈ A·h_S + p`` between one layer of a source and one of a target model."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch

from ..errors import DimensionMismatchError
from ..io.artifacts import load_artifact, save_artifact, split_meta


@dataclass
class AffineMap:
    """``A``: ``[d_target, d_source]``, ``p``: ``[d_target]``; ``meta`` records provenance, metrics and norms."""

    A: torch.Tensor
    p: torch.Tensor
    source: str
    target: str
    source_layer: int | str
    target_layer: int | str
    meta: dict = field(default_factory=dict)
    extra: dict = field(default_factory=dict)
    """Further tensors kept with the map (a contrast refit's pool summary: ``pool_means``, ``pool_loo_cos``,
    ``pool_basis``)."""

    @property
    def d_source(self) -> int:
        return self.A.shape[1]

    @property
    def d_target(self) -> int:
        return self.A.shape[0]

    def transform(self, h: torch.Tensor) -> torch.Tensor:
        """Map source hidden states ``[..., d_source]`` to the target space."""
        self._check_dim(h.shape[-1], self.d_source, "source")
        A, p = self.A.to(h.device, h.dtype), self.p.to(h.device, h.dtype)
        return h @ A.T + p

    def linear(self, v: torch.Tensor) -> torch.Tensor:
        """``A·v`` (no bias): the image of a *difference* of two source points (p cancels)."""
        self._check_dim(v.shape[-1], self.d_source, "source")
        return v @ self.A.to(v.device, v.dtype).T

    def check_models(self, source_dim: int | None = None, target_dim: int | None = None) -> None:
        """Raise :class:`DimensionMismatchError` if the map does not fit models of these widths."""
        if source_dim is not None:
            self._check_dim(source_dim, self.d_source, "source")
        if target_dim is not None:
            self._check_dim(target_dim, self.d_target, "target")

    def _check_dim(self, got: int, want: int, side: str) -> None:
        if got != want:
            name = self.source if side == "source" else self.target
            raise DimensionMismatchError(f"this map expects {side} vectors of width {want} ({name}, layer "
                                         f"{self.source_layer if side == 'source' else self.target_layer}) but got "
                                         f"width {got}; use a map fitted for this model pair")

    def save(self, directory: str | os.PathLike) -> None:
        save_artifact(directory, "map", "affine_map", {"A": self.A.float(), "p": self.p.float(), **self.extra},
                      {"source": self.source, "target": self.target, "source_layer": self.source_layer,
                       "target_layer": self.target_layer, "d_source": self.d_source, "d_target": self.d_target,
                       **self.meta})

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "AffineMap":
        tensors, meta = load_artifact(directory, "map", "affine_map")
        core, rest = split_meta(meta, ("source", "target", "source_layer", "target_layer"), ("d_source", "d_target"))
        extra = {k: v for k, v in tensors.items() if k not in ("A", "p")}
        return cls(A=tensors["A"], p=tensors["p"], meta=rest, extra=extra, **core)
