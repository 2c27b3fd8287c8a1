"""Hooked activations equal Hugging Face's hidden states for five architectures, with and without early stop."""

import pytest
import torch

from lrt.errors import LayerRangeError
from lrt.harvest.capture import run_with_capture
from lrt.models.hooks import hooks, register_layer_hook
from lrt.models import load_model

from conftest import ARCHS, tiny_model_dir


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory, tiny_tokenizer):
    tmp = tmp_path_factory.mktemp("arch")
    return {a: tiny_model_dir(tmp, a, tiny_tokenizer) for a in ARCHS}


@pytest.mark.parametrize("arch", ARCHS)
def test_capture_matches_output_hidden_states(model_dirs, arch):
    lm = load_model(model_dirs[arch])
    assert lm.n_layers == 3
    ids = torch.randint(1, 300, (2, 11))
    with torch.no_grad():
        ref = lm.model(input_ids=ids, output_hidden_states=True).hidden_states
    for early in (False, True):
        got = run_with_capture(lm, [-1, 0, 1], ids, early_stop=early)
        torch.testing.assert_close(got[-1], ref[0], rtol=0, atol=0)   # embed = input of block 0
        torch.testing.assert_close(got[0], ref[1], rtol=0, atol=0)
        torch.testing.assert_close(got[1], ref[2], rtol=0, atol=0)
    # The last block's output is the residual before the final norm (HF's hidden_states[-1] is after it).
    last = run_with_capture(lm, [2], ids)[2]
    assert not torch.allclose(last, ref[3])
    norm_in = {}
    final_norm = [m for n, m in lm.model.named_modules() if n.endswith(("model.norm", "final_layer_norm", "ln_f"))][0]
    h = final_norm.register_forward_pre_hook(lambda m, a: norm_in.__setitem__("x", a[0]))
    with hooks([h]), torch.no_grad():
        lm.model(input_ids=ids)
    torch.testing.assert_close(last, norm_in["x"], rtol=0, atol=0)


def test_early_stop_skips_later_blocks(model_dirs):
    lm = load_model(model_dirs["llama"])
    calls = []
    h = lm.blocks[2].register_forward_hook(lambda *a: calls.append(1))
    with hooks([h]):
        run_with_capture(lm, [1], torch.randint(1, 300, (1, 5)), early_stop=True)
        assert calls == []
        run_with_capture(lm, [1], torch.randint(1, 300, (1, 5)), early_stop=False)
        assert calls == [1]


def test_hooks_removed_after_exception(model_dirs):
    lm = load_model(model_dirs["gpt2"])

    def boom(h):
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        with hooks([register_layer_hook(lm, 0, boom)]):
            lm.model(input_ids=torch.randint(1, 300, (1, 4)))
    assert all(not b._forward_hooks for b in lm.blocks)
    lm.model(input_ids=torch.randint(1, 300, (1, 4)))  # runs clean


def test_layer_range_message(model_dirs):
    lm = load_model(model_dirs["qwen2"])
    with pytest.raises(LayerRangeError, match=r"valid layers are 0\.\.2"):
        lm.layer_index(3)
    assert lm.layer_index("embed") == -1 and lm.layer_index("1") == 1
