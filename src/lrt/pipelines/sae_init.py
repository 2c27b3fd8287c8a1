"""Does a transferred SAE train the large model's SAE for less compute? (model stitching §4.2)

Train the large model's SAE twice with the same recipe, seed and token stream — from the tied random
initialisation, and from the small model's SAE carried through the up/down maps — and compare held-out FVU
against FLOPs, with the cost of the transferred route charged to it. Three accountings:

- ``sae``: SAE optimisation FLOPs (``FlopCounterMode``), plus for the transferred route the small SAE's training
  and the maps' statistics and solves (the paper's accounting: activations are taken as given);
- ``sae, small SAE given``: the same without the small SAE's training (it already existed);
- ``sae, nothing charged``: the initialisation's value alone (what training it saves before its cost);
- ``all-in``: also every model forward pass that produced activations (the small model's for its SAE, both
  models' for the maps, the large model's for either large SAE), counted on one batch and scaled by tokens.

With ``refit_tokens``, a third run starts from the transferred SAE with its decoder refitted in closed form on the
large model's first ``refit_tokens`` training tokens and its encoder completed outside the down map's image
(:func:`lrt.sae.transfer.refit_decoder`), its FLOPs charged
on top of the transferred run's charge (and, all-in, those tokens' forward passes; "nothing charged" still
charges nothing).

For each, the FLOPs to reach the target FVU (the scratch run's final held-out FVU, by linear interpolation
between metric rows) and the saving ``1 − transferred / scratch``; and ``FVU(C) = a·C^(−β)`` fitted to both
curves (least squares in log–log over the rows with C > 0). Also the wall seconds each run takes to the target
(streaming the large model included), the transferred and refitted runs charged the maps' (and the refit's)
seconds — the small SAE taken as given.
"""

from __future__ import annotations

import math
import time
from dataclasses import replace

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..errors import ConfigError
from ..harvest.capture import run_with_capture
from ..harvest.config import HarvestConfig
from ..harvest.paired import pack_sequences, stream_rows
from ..io.results import SAE_INIT_FORMAT_VERSION, SAE_INIT_KIND
from ..maps.config import FitConfig
from ..maps.fit import fit_map_pair
from ..models.layers import layer_name
from ..models.load import LoadedModel
from ..sae.config import SAETrainConfig
from ..sae.model import SparseAutoencoder
from ..sae.train import TrainResult, train_sae
from ..sae.transfer import refit_decoder, transfer_sae


def flops_to_reach(history: list[dict], target: float, offset: float = 0.0, key: str = "flops") -> float | None:
    """FLOPs (plus ``offset``) at which the held-out FVU first reaches ``target`` (linear interpolation); with
    ``key="seconds"``, the wall seconds."""
    prev = (0.0, float("inf"))
    for row in history:
        f, v = row[key], row.get("heldout_fvu")
        if v is None:
            continue
        if v <= target:
            if prev[1] == float("inf"):
                return offset + f
            frac = (prev[1] - target) / (prev[1] - v) if prev[1] != v else 1.0
            return offset + prev[0] + frac * (f - prev[0])
        prev = (f, v)
    return None


def power_law(history: list[dict], offset: float = 0.0) -> dict | None:
    """``FVU(C) = a·C^(−β)`` over the metric rows (C = FLOPs + offset)."""
    pts = [(math.log(r["flops"] + offset), math.log(r["heldout_fvu"])) for r in history
           if r.get("heldout_fvu") and r["flops"] + offset > 0]
    if len(pts) < 3:
        return None
    x = torch.tensor([p[0] for p in pts], dtype=torch.float64)
    y = torch.tensor([p[1] for p in pts], dtype=torch.float64)
    X = torch.stack([torch.ones_like(x), x], 1)
    coef = torch.linalg.lstsq(X, y[:, None]).solution[:, 0]
    return {"a": round(float(coef[0].exp()), 6), "beta": round(float(-coef[1]), 6)}


@torch.no_grad()
def forward_flops_per_token(lm: LoadedModel, layer: int, harvest: HarvestConfig) -> float:
    """FLOPs per token of the forward pass that produces ``layer``'s states (early stop), counted on one batch."""
    ids, mask, _ = next(iter(pack_sequences(replace(harvest, progress=False), lm.tokenizer)))
    with FlopCounterMode(display=False) as fc:
        run_with_capture(lm, [layer], ids.to(lm.device), mask.to(lm.device))
    return fc.get_total_flops() / float(mask.sum())


def compare_init(small: LoadedModel, large: LoadedModel, small_layer: int, large_layer: int,
                 small_data: HarvestConfig, map_data: HarvestConfig, large_data: HarvestConfig,
                 small_cfg: SAETrainConfig, large_cfg: SAETrainConfig,
                 small_sae: SparseAutoencoder | None = None, map_fit: FitConfig | None = None,
                 refit_tokens: int = 0) -> dict:
    """Run the comparison (see the module docstring); returns curves, costs, targets and savings."""
    ls, lt = small.layer_index(small_layer), large.layer_index(large_layer)
    small_run: TrainResult | None = None
    if small_sae is None:
        small_run = train_sae(small, ls, small_data, small_cfg)
        small_sae = small_run.sae
    t0 = time.perf_counter()
    with FlopCounterMode(display=False) as fc:
        up, down = fit_map_pair(small, large, ls, lt, map_data, map_fit)
    map_seconds = round(time.perf_counter() - t0, 2)
    fwd_s = forward_flops_per_token(small, ls, map_data)
    fwd_t = forward_flops_per_token(large, lt, map_data)
    map_tokens = up.meta["tokens"]["harvested"]
    map_forward = map_tokens * (fwd_s + fwd_t)
    map_stats = max(0.0, fc.get_total_flops() - map_forward)        # moments, ridge solves, metrics
    start = transfer_sae(small_sae, up, down)
    cfg = replace(large_cfg, k=small_sae.k, latents=small_sae.d_sae)
    ev = heldout_rows(large, lt, large_data, cfg.eval_rows)      # one fixed set: the curves' rows compare
    if ev is None:
        raise ConfigError(f"{large_data.tokens:,} tokens gave no held-out rows to measure FVU on; raise --tokens "
                          "or --heldout-percent", option="tokens")
    scratch = train_sae(large, lt, large_data, cfg, eval_x=ev)
    warm = train_sae(large, lt, large_data, cfg, init=start, eval_x=ev)
    refit = refit_run = None
    if refit_tokens:
        refit_start, refit = refit_decoder(start, stream_rows(large, lt, replace(large_data, progress=False)),
                                           refit_tokens, skip_heldout=len(ev))      # ridge, γ: not on ev
        refit_run = train_sae(large, lt, large_data, cfg, init=refit_start, eval_x=ev)
    small_sae_flops = small_run.sae.meta["flops"] if small_run else 0
    small_fwd = small_run.tokens * fwd_s if small_run else 0
    large_fwd_per_flop = fwd_t / (warm.flops_per_step / cfg.sae_batch_size)   # forward FLOPs per SAE FLOP
    target = scratch.history[-1]["heldout_fvu"]
    charges = {"sae, nothing charged": 0.0, "sae": small_sae_flops + map_stats, "sae, small SAE given": map_stats,
               "all-in": small_sae_flops + small_fwd + map_stats + map_forward}
    out = {"kind": SAE_INIT_KIND, "format_version": SAE_INIT_FORMAT_VERSION, "command": "sae compare-init",
           "models": {"source": small.name, "target": large.name, "source_layer": layer_name(ls),
                      "target_layer": layer_name(lt)},
           "target_fvu": target, "charges": charges, "accountings": {}, "curves": {
        "scratch": scratch.history, "transferred": warm.history},
        "zero_shot_fvu": round(start.fvu(ev), 6), "decoder_refit": refit,
        "small_sae": small_run.history[-1] if small_run else small_sae.meta,
        "maps": {"up_r2": up.meta["metrics"]["heldout"].get("r2"), "down_r2": down.meta["metrics"]["heldout"].get("r2")},
        "seconds": {"maps": map_seconds, "small_sae": small_run.seconds if small_run else 0.0},
        "tokens": {"small_sae": small_run.tokens if small_run else 0, "maps": map_tokens,
                   "large_sae": scratch.tokens}}
    if refit_run is not None:
        out["curves"]["refit"] = refit_run.history
        refit_fwd = refit["streamed_rows"] * fwd_t          # the forward passes of every row its stream produced
        out["refit_charges"] = {name: 0.0 if name == "sae, nothing charged" else
                                c + refit["flops"] + refit_fwd * (name == "all-in") for name, c in charges.items()}
    for name, charge in charges.items():
        scale = 1 + large_fwd_per_flop if name == "all-in" else 1
        scaled = lambda h: [{**r, "flops": r["flops"] * scale} for r in h]  # noqa: E731
        s_cost = flops_to_reach(scaled(scratch.history), target)
        t_cost = flops_to_reach(scaled(warm.history), target, charge)
        acc = out["accountings"][name] = {
            "scratch_flops": s_cost, "transferred_flops": t_cost, "saving": saving(s_cost, t_cost),
            "power_law": {"scratch": power_law(scaled(scratch.history)),
                          "transferred": power_law(scaled(warm.history), charge)}}
        if refit_run is not None:
            c = out["refit_charges"][name]
            r_cost = flops_to_reach(scaled(refit_run.history), target, c)
            acc["refit"] = {"flops": r_cost, "saving": saving(s_cost, r_cost),
                            "power_law": power_law(scaled(refit_run.history), c)}
    wall = out["wall_seconds_to_target"] = {"scratch": flops_to_reach(scratch.history, target, key="seconds"),
                                            "transferred": flops_to_reach(warm.history, target, map_seconds, "seconds")}
    if refit_run is not None:
        wall["refit"] = flops_to_reach(refit_run.history, target, map_seconds + refit["seconds"], "seconds")
    return out


def saving(scratch: float | None, other: float | None) -> float | None:
    """``1 − other / scratch`` (None when either run never reached the target)."""
    return None if not (scratch and other) else round(1 - other / scratch, 4)


def heldout_rows(lm: LoadedModel, layer: int, data: HarvestConfig, n: int = 4096) -> torch.Tensor | None:
    """The first ``n`` rows of the harvest's held-out documents (the rows the training curves are measured on;
    None if the harvest has none)."""
    rows, have = [], 0
    for r, held in stream_rows(lm, layer, replace(data, progress=False)):
        if held:
            rows.append(r)
            have += len(r)
            if have >= n:
                break
    return torch.cat(rows)[:n] if rows else None
