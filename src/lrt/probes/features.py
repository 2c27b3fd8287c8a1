"""Mean-pooled states of documents at one layer (the probe's features), through the one capture."""

from __future__ import annotations

import torch

from ..harvest.capture import capture_batches, keep_mask
from ..models.load import LoadedModel


@torch.no_grad()
def pooled_states(lm: LoadedModel, layer: int, texts: list[str], max_tokens: int = 256, batch_size: int = 16,
                  progress: bool = False, keep: str = "last", transform=None) -> torch.Tensor:
    """``[n, d]``: each text's last (or first, ``keep="first"``) ``max_tokens`` tokens through ``lm``, the states
    at ``layer`` averaged over its tokens (position 0, the attention sink, left out). The end of a review is
    where its verdict is. ``transform`` (e.g. an SAE's encoder) is applied to the states before pooling."""
    seqs = []
    for t in texts:
        ids = lm.tokenizer(t, add_special_tokens=False, verbose=False)["input_ids"]
        ids = ids[-max_tokens:] if keep == "last" else ids[:max_tokens]
        seqs.append(ids if len(ids) >= 2 else ids + ids[-1:] * (2 - len(ids)) if ids else [0, 0])
    out = []
    for hs, mask in capture_batches(lm, seqs, [layer], batch_size, progress, desc="pooled states"):
        m = keep_mask(mask).unsqueeze(-1).float()
        h = hs[layer] if transform is None else transform(hs[layer])
        out.append((h * m).sum(1) / m.sum(1).clamp_min(1))
    return torch.cat(out)


def pooled_codes(lm: LoadedModel, layer: int, sae, texts: list[str], max_tokens: int = 256, batch_size: int = 16,
                 keep: str = "last") -> torch.Tensor:
    """``[n, d_sae]``: the SAE's codes of each text's tokens at ``layer``, averaged like :func:`pooled_states`."""
    return pooled_states(lm, layer, texts, max_tokens, batch_size, keep=keep, transform=sae.encode)
