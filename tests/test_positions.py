"""--positions answer: steering only the answer position, from a prompt cache shared by every row, equals a plain
steered forward pass that adds the vector at that position only — on five architectures."""

import pytest
import torch

from lrt.data.contrasts import Item
from lrt.evaluate.answer import answer_grid
from lrt.models.hooks import hooks, register_layer_hook
from lrt.models.load import load_model

from conftest import ARCHS, tiny_model_dir


def plain_last_position(lm, layer, item, delta):
    """The oracle: one full forward, ``delta`` added at ``layer`` on the last position only."""
    def add(h):
        h = h.clone()
        h[:, -1] += delta.to(h.dtype)
        return h
    with torch.no_grad(), hooks([register_layer_hook(lm, layer, add)]):
        logits = lm.model(input_ids=torch.tensor([item.ids])).logits[0, -1].float()
    lp = torch.log_softmax(logits, -1)
    return float(torch.logsumexp(lp[item.positive], 0) - torch.logsumexp(lp[item.negative], 0))


@pytest.mark.parametrize("arch", ARCHS)
def test_answer_position_grid_equals_a_plain_steered_pass(arch, tmp_path, tiny_tokenizer):
    lm = load_model(tiny_model_dir(tmp_path, arch, tiny_tokenizer, width=32, layers=3, seed=4))
    g = torch.Generator().manual_seed(0)
    items = [Item(ids=torch.randint(1, 300, (n,), generator=g).tolist(), positive=[5, 7], negative=[11])
             for n in (1, 6, 13)]
    dirs = torch.randn(3, 32, generator=g)
    dirs = dirs / dirs.norm(dim=-1, keepdim=True)
    alphas = [-1.0, 0.0, 2.0]
    prop, _ = answer_grid(lm, 1, items, dirs, alphas, median_norm=3.0, batch_size=4)
    for v in range(3):
        for a, alpha in enumerate(alphas):
            for i, it in enumerate(items):
                want = plain_last_position(lm, 1, it, alpha * 3.0 * dirs[v])
                assert prop[v, a, i].item() == pytest.approx(want, abs=2e-4)
    assert (prop[:, 2] - prop[:, 1]).abs().max() > 1e-3          # the steering does something


def test_alpha_search_finds_a_known_turnover():
    """Native curve rising to α = 0.5 and bending back after it; random vectors flat: the search keeps 0.5. With
    random vectors as strong as native at small α, it keeps the first α that clears them."""
    from lrt.evaluate.alpha_search import PROBE, choose_alpha

    grid = [-a for a in reversed(PROBE)] + [0.0] + list(PROBE)
    native = [(a if abs(a) <= 0.5 else 0.5 * (1 if a > 0 else -1) - (abs(a) - 0.5) * (1 if a > 0 else -1)) for a in grid]
    flat = [[0.01 * a for a in grid] for _ in range(3)]
    alpha, rec = choose_alpha(list(PROBE), native, flat)
    assert alpha == 0.5 and rec["clear_of_random"]
    assert [r["monotonic"] for r in rec["probe"]] == [True, True, True, True, False]     # stops at the turnover
    strong = [[0.6 * a if abs(a) <= 0.125 else 0.0 for a in grid]]
    alpha, rec = choose_alpha(list(PROBE), native, strong)
    assert alpha == 0.5 and not rec["probe"][0]["ok"] and rec["probe"][2]["ok"]
    alpha, rec = choose_alpha(list(PROBE), native, [[3 * a for a in grid]])          # never clear: flagged
    assert not rec["clear_of_random"] and alpha == PROBE[0]


def test_alpha_search_runs_inside_the_evaluation(tmp_path, tiny_tokenizer):
    from lrt.evaluate.config import EvalConfig
    from lrt.evaluate.steering import evaluate_vectors

    lm = load_model(tiny_model_dir(tmp_path, "llama", tiny_tokenizer, width=32, layers=3, seed=4))
    g = torch.Generator().manual_seed(1)
    items = [Item(ids=torch.randint(1, 300, (8,), generator=g).tolist(), positive=[5], negative=[11]) for _ in range(10)]
    v = torch.randn(32, generator=g)
    res = evaluate_vectors(lm, 1, items, {"native": v}, 1.0, EvalConfig(alpha_search=True, n_random=4, bootstrap=20,
                                                                        positions="answer", search_items=4))
    assert res["alpha_search"]["chosen"] == res["alphas"][-1] and len(res["alphas"]) == 7
    assert res["n_items"] == 6 and res["split"]["validation_items"] == 4


def test_alpha_search_stops_at_the_turnover_and_agrees_with_the_full_probe():
    """A grid whose native curve turns over after α = 0.5: the stepwise search probes up to the first
    non-monotonic level (1.0) and no further, and chooses what choose_alpha chooses on the whole probe grid."""
    from lrt.evaluate.alpha_search import PROBE, choose_alpha, search_alpha

    def native(a):
        return a if abs(a) <= 0.5 else (0.5 - (abs(a) - 0.5)) * (1 if a > 0 else -1)

    asked = []

    def grid_fn(lm, layer, items, dirs, alphas, median_norm, batch_size):
        asked.extend(alphas)
        curve = torch.tensor([[native(a)] + [0.05 * a] * (len(dirs) - 1) for a in alphas]).T      # [V, A]
        return curve[:, :, None].expand(-1, -1, len(items)).clone(), None

    alpha, rec = search_alpha(None, 0, list(range(20)), torch.zeros(4), torch.zeros(3, 4), 1.0, grid_fn, 8, n_items=6)
    full = [-a for a in reversed(PROBE)] + [0.0] + list(PROBE)
    want, _ = choose_alpha(list(PROBE), [native(a) for a in full], [[0.05 * a for a in full]] * 3)
    assert alpha == want == 0.5 and rec["probed"] == [0.0625, 0.125, 0.25, 0.5, 1.0] and rec["items"] == 6
    assert 2.0 not in asked and max(asked) == 1.0 and asked.count(0.0) == 1      # the unsteered rows run once


def test_propensity_grid_without_zero_matches_the_grid_with_it(tmp_path, tiny_tokenizer):
    """The α = 0 rows are only computed when 0 is asked for; the other rows do not depend on them."""
    from lrt.evaluate.propensity import propensity_grid

    lm = load_model(tiny_model_dir(tmp_path, "llama", tiny_tokenizer, width=32, layers=3, seed=4))
    g = torch.Generator().manual_seed(2)
    items = [Item(ids=torch.randint(1, 300, (n,), generator=g).tolist(), positive=[5], negative=[11]) for n in (4, 9)]
    dirs = torch.nn.functional.normalize(torch.randn(2, 32, generator=g), dim=-1)
    full, _ = propensity_grid(lm, 1, items, dirs, [-1.0, 0.0, 1.0], 3.0, 4)
    part, _ = propensity_grid(lm, 1, items, dirs, [-1.0, 1.0], 3.0, 4)
    assert part.shape == (2, 2, 2) and torch.allclose(part, full[:, [0, 2]], atol=1e-5)


def test_alpha_steps_and_search_items_are_checked():
    from lrt.errors import ConfigError
    from lrt.evaluate.config import EvalConfig

    assert len(EvalConfig(alpha_steps=5).alphas) == 5 and 0 in EvalConfig(alpha_steps=5).alphas
    for bad in ({"alpha_steps": 4}, {"alpha_steps": 1}, {"search_items": 1}):
        with pytest.raises(ConfigError):
            EvalConfig(**bad)
