"""Every test item's numbers as the verdict saw them: the propensity (and m_LD) of each item under each vector at
each α, with the item's prompt fingerprint, answer cell and source — saved beside a study behaviour's result
(``items.safetensors`` + ``items.json``) so that a reader can judge any split of the items again (by source, by
answer cell, by their own feature) without re-running the model."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from ..io.artifacts import load_artifact, save_artifact

KIND = "lrt_item_curves"


@dataclass
class ItemCurves:
    propensity: torch.Tensor
    """``[V, A, N]``: item n's propensity for its matching answer with vector v added at α index a."""
    m_ld: torch.Tensor
    """``[V, A, N]``: the same as the mean log-probability difference of the two answers."""
    vectors: list[str]
    """The V names: the named vectors, then ``random_0`` … (the verdict's random directions)."""
    alphas: list[float]
    """The A steering strengths (× the layer's median norm)."""
    items: list[str]
    """Each item's prompt fingerprint (``Item.source``)."""
    cells: list[str]
    """Each item's answer cell (``"[5]|[11]"``, with the matching answer's meaning where the options recur)."""
    groups: list[str] | None = None
    """Each item's source (``"test set"`` / ``"generate set"``), where the evaluation was given one."""

    def save(self, directory: str | os.PathLike, stem: str = "items") -> Path:
        meta = {"vectors": self.vectors, "alphas": self.alphas, "items": self.items, "cells": self.cells,
                "groups": self.groups}
        return save_artifact(directory, stem, KIND, {"propensity": self.propensity.float(),
                                                     "m_ld": self.m_ld.float()}, meta)

    @classmethod
    def load(cls, directory: str | os.PathLike, stem: str = "items") -> "ItemCurves":
        t, meta = load_artifact(directory, stem, KIND)
        return cls(t["propensity"], t["m_ld"], meta["vectors"], meta["alphas"], meta["items"], meta["cells"],
                   meta.get("groups"))
