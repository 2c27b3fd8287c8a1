"""The layer convention, written once: a layer spec is ``"embed"`` or a block index.

Layer ``L`` is the output of decoder block ``L`` (the residual stream after it): Hugging Face
``hidden_states[L+1]`` (except the last block, where HF applies the final norm), TransformerLens / SAELens
``blocks.L.hook_resid_post``, EleutherAI sparsify ``layers.L``, repeng / llama.cpp control vectors
``direction.{L+1}``. ``"embed"`` is the input of block 0 (index ``-1`` internally).
"""

from __future__ import annotations

from ..errors import LayerRangeError

EMBED = "embed"
LayerSpec = int | str          # "embed" or a block index; as read from a flag, also "3"


def parse_layer(spec: LayerSpec | None) -> LayerSpec | None:
    """``"3"`` → 3, ``"embed"`` → ``"embed"``, ``None`` → ``None``; anything else is an error."""
    if spec is None or isinstance(spec, int):
        return spec
    if spec == EMBED:
        return EMBED
    try:
        return int(spec)
    except ValueError:
        raise LayerRangeError(f"layer {spec!r} is neither an integer nor 'embed'") from None


def layer_index(spec: LayerSpec, n_layers: int, model: str = "the model") -> int:
    """Validate ``spec`` against a model of ``n_layers`` blocks; ``"embed"`` is -1."""
    spec = parse_layer(spec)
    if spec == EMBED:
        return -1
    if not 0 <= spec < n_layers:
        raise LayerRangeError(f"layer {spec} is out of range for {model}: valid layers are 0..{n_layers - 1}"
                              f" (or 'embed'); it has {n_layers} decoder blocks")
    return spec


def layer_name(index: int) -> LayerSpec:
    """The stored form of a layer: its index, or ``"embed"`` for -1."""
    return EMBED if index == -1 else index


def hook_names(spec: LayerSpec) -> dict[str, str]:
    """The same layer in the other libraries' names (the README's table)."""
    if parse_layer(spec) == EMBED:
        return {"hf_hidden_states": "0", "transformer_lens": "blocks.0.hook_resid_pre", "sparsify": "embed_tokens",
                "repeng": "0"}
    L = int(spec)
    return {"hf_hidden_states": str(L + 1), "transformer_lens": f"blocks.{L}.hook_resid_post",
            "sparsify": f"layers.{L}", "repeng": str(L + 1)}


def default_layers(n_source: int, n_target: int, source_layer: LayerSpec | None = None,
                   target_layer: LayerSpec | None = None) -> tuple[LayerSpec, LayerSpec]:
    """The source's middle block ((n − 1) // 2), and the target block at the same relative depth, unless given."""
    source_layer = parse_layer(source_layer)
    target_layer = parse_layer(target_layer)
    if source_layer is None:
        source_layer = (n_source - 1) // 2
    if target_layer is None:
        rel = (layer_index(source_layer, n_source) + 1) / n_source
        target_layer = max(0, round(rel * n_target) - 1)
    return source_layer, target_layer


def parse_layer_list(spec: str | list | None, n_layers: int, model: str = "the model") -> list[int]:
    """Layer indices of a list spec: ``all`` (embed and every block), ``blocks`` (every block), ``0,2,5``,
    ranges ``3-7`` (inclusive), strides ``0-23:4`` or ``all:4``, ``embed``; each checked against ``n_layers``.
    Returned sorted and unique, ``embed`` as -1."""
    if spec is None or spec == "" or spec == []:
        spec = "all"
    parts = spec if isinstance(spec, list) else str(spec).split(",")
    out: set[int] = set()
    for part in (str(p).strip() for p in parts):
        body, _, stride = part.partition(":")
        step = 1
        if stride:
            try:
                step = int(stride)
            except ValueError:
                step = 0
            if step < 1:
                raise LayerRangeError(f"bad stride in layer list item {part!r}: use e.g. 0-23:4 or all:2")
        if body in ("all", "blocks"):
            idx = list(range(-1 if body == "all" else 0, n_layers))
        elif "-" in body.lstrip("-") and body != EMBED:
            lo, _, hi = body.partition("-")
            a, b = layer_index(lo, n_layers, model), layer_index(hi, n_layers, model)
            if a > b:
                raise LayerRangeError(f"empty layer range {body!r} for {model}: write it low-high")
            idx = list(range(a, b + 1))
        else:
            idx = [layer_index(body, n_layers, model)]
        out.update(idx[::step])
    return sorted(out)
