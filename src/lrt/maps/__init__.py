"""Maps: the affine map artifact, the ridge solver, the AdamW recipe, fitting from a harvest, map metrics."""

from .._lazy import lazy_exports

_EXPORTS = {"AdamWConfig": "lrt.maps.config", "FitConfig": "lrt.maps.config", "AffineMap": "lrt.maps.affine",
            "fit_map": "lrt.maps.fit", "solve_affine": "lrt.maps.solve"}
__getattr__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
