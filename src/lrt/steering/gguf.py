"""Export a steering vector as a llama.cpp / repeng control vector (GGUF); needs the ``gguf`` extra."""

from __future__ import annotations

import os

from ..models.layers import hook_names
from .vectors import SteeringVector


def write_control_vector(v: SteeringVector, path: str | os.PathLike, model_hint: str = "llama", scale: float = 1.0
                         ) -> None:
    """Write a llama.cpp / repeng control vector (``direction.{L+1}``: repeng counts hidden_states)."""
    import gguf

    writer = gguf.GGUFWriter(str(path), "controlvector")
    writer.add_string("controlvector.model_hint", model_hint)
    writer.add_uint32("controlvector.layer_count", 1)
    layer = int(hook_names(v.layer)["repeng"])
    writer.add_tensor(f"direction.{layer}", (v.vector.float() * scale).numpy())
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
