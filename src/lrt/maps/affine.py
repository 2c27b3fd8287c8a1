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

    def check_model_configs(self, option: str = "up") -> None:
        """Before loading the models: refuse a map whose widths or layers do not fit the configurations of the models
        it names (when they can be read without loading weights)."""
        from ..models.layers import layer_index
        from ..models.load import model_shape

        for side, name, width, layer in (("source", self.source, self.d_source, self.source_layer),
                                         ("target", self.target, self.d_target, self.target_layer)):
            shape = model_shape(name)
            if shape is None:
                continue
            if shape[0] != width:
                raise DimensionMismatchError(f"the map's {side} side has width {width} but {name} has width "
                                             f"{shape[0]}; use a map fitted for this model", option=option)
            if not isinstance(layer, list):
                layer_index(layer, shape[1], name)

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


def _statistics(m: AffineMap) -> tuple | None:
    """What identifies the statistics a map was solved from (None when it does not record them)."""
    tokens, harvest = m.meta.get("tokens"), m.meta.get("harvest")
    if not isinstance(tokens, dict) or harvest is None:
        return None
    return harvest, tokens.get("train_rows"), tokens.get("heldout_rows")


def check_inverse(up: AffineMap, down: AffineMap, where: str, option: str = "inverse") -> None:
    """Refuse a ``down`` map (read from ``where``) that is not ``up``'s inverse: the same two models and layers the
    other way round, the widths to match, and (when both record them) the statistics of the same fit."""
    pair = (f"the map at {where} goes {down.source} L{down.source_layer} → {down.target} L{down.target_layer}; the "
            f"inverse of {up.source} L{up.source_layer} → {up.target} L{up.target_layer} goes the other way")
    if (down.source, down.target) != (up.target, up.source) or \
            (str(down.source_layer), str(down.target_layer)) != (str(up.target_layer), str(up.source_layer)):
        raise DimensionMismatchError(f"{pair}; give that map's inverse (lrt fit-map --both writes it)", option=option)
    if (down.d_source, down.d_target) != (up.d_target, up.d_source):
        raise DimensionMismatchError(f"the map at {where} maps width {down.d_source} → {down.d_target}, not "
                                     f"{up.d_target} → {up.d_source}; give this map's inverse", option=option)
    a, b = _statistics(up), _statistics(down)
    if a is not None and b is not None and a != b:
        raise DimensionMismatchError(f"the map at {where} was fitted in another run than the map it should invert "
                                     "(other harvest settings or rows); give the inverse fitted with it "
                                     "(lrt fit-map --both)", option=option)


def load_inverse(up: AffineMap, up_dir: str | os.PathLike, given: str | os.PathLike | None = None,
                 option: str = "inverse", required: bool = False) -> AffineMap | None:
    """``up``'s inverse: the map at ``given``, else the one ``lrt fit-map --both`` wrote beside it
    (``UP_DIR/inverse``; None when there is none and it is not ``required``), checked by :func:`check_inverse`."""
    from pathlib import Path

    path = Path(given) if given else Path(up_dir) / "inverse"
    if not given and not (path / "map.json").exists() and not required:
        return None
    down = AffineMap.load(path)
    check_inverse(up, down, str(path), option)
    return down
