"""The honest protocol: α is chosen on items and random vectors the verdict never uses; p-values and CIs mean what
they say; the default contrast pool leaves the transferred behaviour out; the study resumes behaviour by behaviour."""

import hashlib
import json
import math
import re

import pytest
import torch

from conftest import tiny_model_dir
from lrt.data.contrasts import Item
from lrt.models.load import load_model


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory, tiny_tokenizer):
    return load_model(tiny_model_dir(tmp_path_factory.mktemp("m"), "llama", tiny_tokenizer, width=32, layers=3,
                                     seed=4))


def _items(n, seed=1):
    g = torch.Generator().manual_seed(seed)
    return [Item(ids=torch.randint(1, 300, (8,), generator=g).tolist(), positive=[5], negative=[11],
                 source=f"item{seed}-{i}") for i in range(n)]


def test_alpha_search_never_sees_a_test_item_or_a_verdict_random_vector(tiny_lm, monkeypatch):
    """The search's items and directions are recorded as they are passed: none is a judged item or one of the
    verdict's random vectors — with a validation set given, and with the test set split."""
    import lrt.evaluate.steering as st
    from lrt.evaluate.config import EvalConfig

    seen = {}
    real = st.search_alpha

    def spy(lm, layer, items, native_dir, random_dirs, *a, **k):
        seen["items"], seen["random"] = list(items), random_dirs.clone()
        return real(lm, layer, items, native_dir, random_dirs, *a, **k)

    monkeypatch.setattr(st, "search_alpha", spy)
    v = torch.randn(32, generator=torch.Generator().manual_seed(3))
    cfg = EvalConfig(alpha_search=True, n_random=6, search_random=3, search_items=5, bootstrap=50, positions="answer")
    test, val = _items(12, 1), _items(5, 2)
    for validation in (val, None):
        res = st.evaluate_vectors(tiny_lm, 1, test, {"native": v}, 1.0, cfg, validation=validation)
        judged = {it.source for it in (test if validation else test)} - (
            set() if validation else {test[i].source for i in res["split"]["validation_indices_in_test_file"]})
        assert len(judged) == res["n_items"] == (12 if validation else 7)
        assert not {it.source for it in seen["items"]} & judged
        verdict_rand, search_rand = st.random_sets(cfg, 32)
        assert torch.equal(seen["random"], search_rand)
        assert (verdict_rand @ search_rand.T).abs().max() < 0.999           # no search direction is a verdict's
        assert res["random_directions"]["verdict_rows"] == [0, 6] and res["alpha_search"]["random_rows"] == [6, 9]
        assert res["split"]["validation_items"] == 5


def test_p_value_of_a_random_copy_is_not_significant_and_of_a_planted_direction_is(tiny_lm):
    """At the last layer the unembedding difference W[+] − W[−] moves the propensity far more than any random
    direction: p < 0.01, 'steers forward'. A copy of one of the verdict's own random vectors is typical of them."""
    from lrt.evaluate.config import EvalConfig
    from lrt.evaluate.steering import evaluate_vectors, random_sets
    from lrt.evaluate.verdict import verdict

    W = tiny_lm.model.get_output_embeddings().weight.detach()
    planted = W[5] - W[11]
    cfg = EvalConfig(alphas=[-0.5, 0, 0.5], n_random=16, bootstrap=200)
    copy = random_sets(cfg, 32)[0][2]
    res = evaluate_vectors(tiny_lm, 2, _items(16), {"native": planted, "copy": copy}, 1.0, cfg)
    v = verdict(res)
    nat, cp = v["vectors"]["native"], v["vectors"]["copy"]
    assert nat["p_value"] < 0.01 and nat["status"] == "steers forward" and nat["percentile"] == 100
    assert cp["p_value"] > 0.05 and cp["status"] != "steers forward"
    assert math.isclose(cp["slope"], res["curves"]["random_2"]["slope_monotonic"], rel_tol=1e-5, abs_tol=1e-6)
    assert v["transfer"]["copy"]["status"] in ("same sign, within random", "same sign, inconclusive",
                                              "opposite sign to native")


def test_the_verdict_on_each_source_of_test_items_is_that_of_its_items_alone(tiny_lm, tmp_path):
    """``groups`` (the study's test-item sources): each group's slopes, random slopes and status are what an
    evaluation of that group's items alone gives; one label only adds nothing. The saved item curves give the
    same slopes again without the model."""
    from lrt.evaluate.config import EvalConfig
    from lrt.evaluate.items import ItemCurves
    from lrt.evaluate.significance import slopes_of
    from lrt.evaluate.steering import evaluate_vectors
    from lrt.evaluate.verdict import verdict, verdict_lines

    W = tiny_lm.model.get_output_embeddings().weight.detach()
    planted = W[5] - W[11]
    cfg = EvalConfig(alphas=[-0.5, 0, 0.5], n_random=16, bootstrap=200)
    a, b = _items(12, 1), _items(20, 2)
    vecs = {"native": planted, "transferred_direction": 0.5 * planted + 0.1 * W[7]}
    res = evaluate_vectors(tiny_lm, 2, a + b, vecs, 1.0, cfg, groups=["test set"] * 12 + ["generate set"] * 20,
                           keep_items=True)
    assert list(res["by_group"]) == ["test set", "generate set"]
    res.pop("item_curves").save(tmp_path)
    saved = ItemCurves.load(tmp_path)
    assert saved.propensity.shape == (2 + 16, 3, 32) and saved.items == [it.source for it in a + b]
    assert saved.vectors[:2] == list(vecs) and saved.groups[11:13] == ["test set", "generate set"]
    again = slopes_of(saved.propensity[:, :, 12:], saved.alphas, slice(0, 3))
    assert float(again[0]) == pytest.approx(res["by_group"]["generate set"]["significance"]["native"]["slope"],
                                            rel=1e-5)
    assert [float(x) for x in again[2:]] == pytest.approx(res["by_group"]["generate set"]["random"]["slopes"],
                                                          rel=1e-4, abs=1e-6)
    v = verdict(res)
    for label, part in (("test set", a), ("generate set", b)):
        alone = evaluate_vectors(tiny_lm, 2, part, vecs, 1.0, cfg)
        g = res["by_group"][label]
        assert g["n_items"] == len(part)
        assert g["random"]["slopes"] == pytest.approx(alone["random"]["slopes"], rel=1e-4, abs=1e-6)
        for n in vecs:
            assert g["significance"][n]["slope"] == pytest.approx(alone["significance"][n]["slope"], rel=1e-4)
            assert g["significance"][n]["p_value"] == pytest.approx(alone["significance"][n]["p_value"], rel=1e-3)
        gv = v["by_group"][label]
        assert gv["native"]["status"] == verdict(alone)["native"]["status"] == "steers forward"
        assert gv["transfer"]["transferred_direction"]["status"] == \
            verdict(alone)["transfer"]["transferred_direction"]["status"]
    assert any("items from the generate set alone" in line for line in verdict_lines(res, v))
    one = evaluate_vectors(tiny_lm, 2, a, vecs, 1.0, cfg, groups=["test set"] * 12)
    assert "by_group" not in one and "by_group" not in verdict(one)
    with pytest.raises(ValueError):
        evaluate_vectors(tiny_lm, 2, a, vecs, 1.0, cfg, groups=["test set"] * 11)


def test_one_rule_decides_steering_status_study_and_transfer():
    """p < 0.05 with a CI that excludes 0 but reaches into the random range is "inconclusive" — and an inconclusive
    native vector does not count as steering anywhere: no transfer judgement, not a success."""
    from lrt.evaluate.significance import vector_status
    from lrt.evaluate.verdict import _transfer_status, steers

    rmax = 1.0
    cases = [(2.0, [0.6, 3.1], 0.01, "inconclusive"), (2.0, [1.2, 2.9], 0.01, "steers forward"),
             (-2.0, [-2.9, -1.2], 0.01, "steers backward"), (2.0, [1.2, 2.9], 0.2, "inconclusive"),
             (0.3, [-0.4, 0.9], 0.6, "within random")]
    for slope, ci, p, want in cases:
        assert vector_status(slope, ci, p, rmax) == want
    sig = lambda slope, ci, p: {"slope": slope, "slope_ci": ci, "p_value": p,  # noqa: E731
                                "status": vector_status(slope, ci, p, rmax)}
    shaky, strong = sig(2.0, [0.6, 3.1], 0.01), sig(2.0, [1.2, 2.9], 0.01)
    assert not steers(shaky) and steers(strong)
    assert _transfer_status(shaky, strong) == "native does not steer here: no transfer judgement"
    assert _transfer_status(strong, strong) == "reproduces the native effect"
    assert _transfer_status(strong, shaky) == "same sign, inconclusive"
    assert _transfer_status(strong, sig(-2.0, [-2.9, -1.2], 0.01)) == "opposite sign to native"


def test_t_p_values_and_bootstrap_intervals():
    """The t p-value matches tables; under a Gaussian null with n = 16 it is uniform (≈ 5% below 0.05); a
    bootstrap CI of a slope covers the true slope in ≈ 95% of synthetic data sets."""
    from lrt.evaluate.significance import against_random, bootstrap_slopes, interval, t_two_sided

    assert abs(t_two_sided(2.12, 16) - 0.05) < 1e-3 and abs(t_two_sided(1.0, 5) - 0.3632) < 1e-3
    g = torch.Generator().manual_seed(0)
    ps = [against_random(float(torch.randn(1, generator=g)), torch.randn(16, generator=g).tolist())["p_value"]
          for _ in range(2000)]
    assert 0.035 < sum(p < 0.05 for p in ps) / len(ps) < 0.065
    alphas, covered = [-0.2, 0.0, 0.2], 0
    for seed in range(200):
        g = torch.Generator().manual_seed(seed)
        per_item = 1.0 + 0.8 * torch.randn(30, generator=g)              # each item's own slope; the mean is 1
        prop = (torch.tensor(alphas)[:, None] * per_item[None] + 0.3 * torch.randn(3, 30, generator=g))[None]
        lo, hi = interval(bootstrap_slopes(prop, alphas, slice(0, 3), 400, seed)[:, 0])
        covered += lo <= 1.0 <= hi
    assert 0.88 <= covered / 200 <= 0.99


def test_default_pool_leaves_out_the_behaviour_by_name_and_by_file(tmp_path):
    from lrt.cli import main
    from lrt.maps.contrast import DEFAULT_POOL, resolve_sets

    kept, fams, out = resolve_sets(["default"], ["caa:refusal"])
    assert set(out) == {"caa:refusal", "caa-yesno:refusal", "caa-persona:refusal", "caa-text:refusal"}
    assert len(kept) == len(DEFAULT_POOL) - 4 and "caa:refusal" not in fams.values()
    assert main(["data", "export", "caa:sycophancy", str(tmp_path)]) == 0        # a user's own copy of the file
    own = tmp_path / "caa-sycophancy-generate.json"
    _, fams, out = resolve_sets(["default"], [str(own)])
    assert "caa-persona:sycophancy" in out and "caa:sycophancy" not in fams.values()
    json.dump(json.loads(own.read_text())[:50], open(tmp_path / "subset.json", "w"))
    _, _, out = resolve_sets(["default"], [str(tmp_path / "subset.json")])    # another file: nothing matches
    assert out == []


def test_study_resumes_without_recomputing_finished_behaviours(tmp_path, monkeypatch, capsys):
    """A study killed during its second behaviour: --resume reads the first back (not recomputed), reuses the
    cached text map and pool, finishes the second; without --resume the folder is refused."""
    import lrt.pipelines.study as study
    from lrt.cli import main

    args = ["study", "--source", "zoo-xs", "--target", "zoo-s", "--behaviours", "caa:refusal", "--behaviours",
            "caa:survival-instinct", "--pairs", "8", "--test-items", "6", "--search-items", "4", "--n-random", "4",
            "--search-random", "3", "--contrast-sets", "caa:sycophancy", "--contrast-sets", "caa:myopic-reward",
            "--contrast-pairs", "6", "--tokens", "2000", "--no-layer-search", "--bootstrap", "50", "--no-progress",
            "--out", str(tmp_path / "st")]
    real, calls = study.run_behaviour, []

    def dies_on_second(cache, b, log=print, **kw):
        calls.append(b.name)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real(cache, b, log, **kw)

    monkeypatch.setattr(study, "run_behaviour", dies_on_second)
    assert main(args) == 130
    first = (tmp_path / "st" / "behaviours" / "caa-refusal" / "result.json").read_text()
    assert main(args) == 2                                   # a non-empty folder without --resume
    calls.clear()
    read = []
    real_gen = study.generate_items
    monkeypatch.setattr(study, "generate_items", lambda b, tok, cfg: (read.append(b.name), real_gen(b, tok, cfg))[1])
    monkeypatch.setattr(study, "run_behaviour", lambda cache, b, log=print, **kw: (calls.append(b.name),
                                                                                 real(cache, b, log, **kw))[1])
    assert main(args + ["--resume"]) == 0
    assert calls == ["caa:survival-instinct"]
    assert read == ["caa:survival-instinct"]        # read once, at start-up; not the finished behaviour's
    assert (tmp_path / "st" / "behaviours" / "caa-refusal" / "result.json").read_text() == first
    res = json.loads((tmp_path / "st" / "results.json").read_text())
    assert set(res["behaviours"]) == {"caa:refusal", "caa:survival-instinct"} and "timings" in res
    from lrt.cli.study import summary_rows                  # the terminal table flags a layer not found on validation
    for row, rec in zip(summary_rows(res), res["behaviours"].values()):
        assert row[1].endswith(" (none on val.)") == (not rec["layer_steers_on_validation"])
    for rec in res["behaviours"].values():                  # the pairs the vectors came from, and why
        trail = rec["vector_pairs"]
        assert rec["items"]["vector"] == trail[-1]["pairs"] and trail[0]["pairs"] == 8
        assert all(t["split_half_cos"] < 0.5 for t in trail[:-1])
    assert "text_map_0_1" not in res["timings"] and "pool_0_1" not in res["timings"]   # the caches were reused
    # the map says what pool data it was fitted on (neither behaviour's family is in this pool: the same sets)
    from lrt.maps.contrast import set_fingerprint
    want = hashlib.sha256(json.dumps({s: set_fingerprint(s, 6) for s in ("caa:myopic-reward", "caa:sycophancy")}
                                     ).encode()).hexdigest()
    assert {r["map"]["pool_data_sha256"] for r in res["behaviours"].values()} == {want}
    from lrt.evaluate.items import ItemCurves
    for slug_, rec in (("caa-refusal", res["behaviours"]["caa:refusal"]),):   # every item's curves, beside it
        curves = ItemCurves.load(tmp_path / "st" / "behaviours" / slug_)
        assert curves.propensity.shape == (2 + 4, len(rec["steering"]["alphas"]), rec["steering"]["n_items"])
    html = (tmp_path / "st" / "report.html").read_text()
    assert html.count("<img") >= 3 and "caa:survival-instinct" in html
    # a study written before --max-pairs existed ran without growth: resumed as such, and the message says so
    cfg_file = tmp_path / "st" / "config.json"
    c = json.loads(cfg_file.read_text())
    c.pop("max_pairs")
    c.pop("fallback")                        # before --fallback: the largest z, as the default still is
    cfg_file.write_text(json.dumps(c))
    capsys.readouterr()
    assert main(args + ["--resume"]) == 2
    assert "--max-pairs 8 (now 240)" in capsys.readouterr().err
    assert main(args + ["--resume", "--max-pairs", "8"]) == 0
    c.pop("first_depth")                     # ... and before --first-depth: the middle-block rule (0)
    c["candidate_depths"] = [0.35, 0.65, 0.8]
    c.pop("test_fill")                       # ... and before --test-fill: the test set alone, said as a switch
    cfg_file.write_text(json.dumps(c))
    capsys.readouterr()
    assert main(args + ["--resume", "--max-pairs", "8"]) == 2
    err = capsys.readouterr().err
    assert "--first-depth 0.0 (now 0.65)" in err and "--candidate-depths 0.35,0.65,0.8 (now 0.5,0.35,0.8)" in err
    assert "--no-test-fill (now --test-fill)" in err
    assert main(args + ["--resume", "--max-pairs", "8", "--first-depth", "0", "--candidate-depths",
                        "0.35,0.65,0.8", "--no-test-fill"]) == 0
    # a cache carried into another study with another pair count is not reused: pool and text map recomputed
    import shutil
    from safetensors import safe_open

    shutil.copytree(tmp_path / "st" / "cache", tmp_path / "st2" / "cache")
    other = list(args)
    other[other.index("--contrast-pairs") + 1], other[other.index("--tokens") + 1] = "5", "1500"
    assert main(other[:-1] + [str(tmp_path / "st2"), "--resume"]) == 0
    cached = tmp_path / "st2" / "cache" / "pool-0-1.safetensors"
    with safe_open(str(cached), "pt") as r:
        assert r.metadata()["contrast_pairs"] == "5" and r.metadata()["source"] == load_model("zoo-xs").fingerprint
    res2 = json.loads((tmp_path / "st2" / "results.json").read_text())
    assert "pool_0_1" in res2["timings"] and "text_map_0_1" in res2["timings"]


def test_a_cached_pool_set_is_reused_only_while_its_data_is_the_same(tmp_path):
    """A pool file keeps each set's data fingerprint (what ``set_differences`` reads: its first pairs): a set
    rebuilt or edited under the same name is computed again, the others are reused; a file written before
    fingerprints were kept, or with other settings, gives nothing back."""
    from safetensors.torch import save_file

    from lrt.maps.contrast import set_fingerprint
    from lrt.pipelines.study_cache import read_pool, write_pool

    recs = [{"question": f"Q{i}?\n\nChoices:\n(A) yes {i}\n(B) no {i}", "answer_matching_behavior": "(A)",
             "answer_not_matching_behavior": "(B)"} for i in range(6)]
    f = tmp_path / "set.json"
    f.write_text(json.dumps(recs))
    fp = set_fingerprint(str(f), 4)
    recs[5]["question"] = "Q5 edited?\n\nChoices:\n(A) yes\n(B) no"     # beyond the pairs read: the same data
    f.write_text(json.dumps(recs))
    assert set_fingerprint(str(f), 4) == fp and set_fingerprint(str(f), 6) != set_fingerprint(str(f), 4)
    recs[0]["answer_matching_behavior"], recs[0]["answer_not_matching_behavior"] = "(B)", "(A)"
    f.write_text(json.dumps(recs))
    assert set_fingerprint(str(f), 4) != fp
    assert set_fingerprint("caa:refusal", 4) == set_fingerprint("caa:refusal", 4) != set_fingerprint("mmlu", 4)

    made = {"source": "s", "target": "t", "contrast_pairs": "4"}
    have = {f"{n}|{p}": torch.full((4, 3), float(i)) for i, n in enumerate("ab") for p in "xy"}
    pool = tmp_path / "pool.safetensors"
    write_pool(pool, have, made, {"a": "fa", "b": "fb"})
    got, record = read_pool(pool, made, {"a": "fa", "b": "fb-rebuilt"})
    assert record == made and sorted(got) == ["a|x", "a|y"] and torch.equal(got["a|x"], have["a|x"])
    assert sorted(read_pool(pool, made, {"a": "fa", "b": "fb"})[0]) == sorted(have)
    assert read_pool(pool, {**made, "contrast_pairs": "6"}, {"a": "fa"}) == ({}, made)
    save_file(have, str(pool), metadata=made)                   # written before fingerprints were kept
    assert read_pool(pool, made, {"a": "fa", "b": "fb"}) == ({}, made)
    assert read_pool(tmp_path / "none.safetensors", made) == ({}, None)


def test_a_pure_letter_preference_cancels_in_the_balanced_mean(tiny_lm):
    """Items where token 5 is the matching answer (12) and where token 11 is (4), as letters A and B are: the
    direction W[5] − W[11] only prefers one answer token. The plain mean calls it steering (by the A share); the
    balanced mean (each matching answer counts equally) sees nothing; a CAA vector from such pairs, balanced,
    carries no letter preference."""
    from lrt.evaluate.config import EvalConfig
    from lrt.evaluate.steering import evaluate_vectors
    from lrt.stats.balance import Balance

    g = torch.Generator().manual_seed(7)
    items = [Item(ids=torch.randint(1, 300, (8,), generator=g).tolist(), positive=[5] if i < 12 else [11],
                  negative=[11] if i < 12 else [5], source=f"x{i}") for i in range(16)]
    W = tiny_lm.model.get_output_embeddings().weight.detach()
    letter = W[5] - W[11]
    slopes = {}
    for on in (False, True):
        cfg = EvalConfig(alphas=[-0.5, 0, 0.5], n_random=4, bootstrap=50, balance=on)
        res = evaluate_vectors(tiny_lm, 2, items, {"native": letter}, 1.0, cfg)
        slopes[on] = res["curves"]["native"]["slope_monotonic"]
        assert res["balance"]["balanced"] is on
    assert abs(slopes[False]) > 1.0 and abs(slopes[True]) < 0.15 * abs(slopes[False])   # 1.05 vs 0.08 (final norm)
    bal = Balance(items)
    letter_only = torch.tensor([1.0] * 12 + [-1.0] * 4)                     # +1 on A-matching items, −1 on B's
    assert letter_only.mean() == 0.5 and bal.mean(letter_only) == 0.0


def test_an_unmirrored_third_answer_is_left_out_of_vector_and_mean(tiny_lm):
    """survival-instinct's first 60 pairs are 40 "(A) against (B)", 17 "(B) against (A)" and 3 "(C) against (A)".
    Weighing the third group like the others made the balanced CAA vector "say C rather than A" (15× the
    behaviour's norm). Only mirrored answer pairs count: the vector is the mean of the two mirrored groups' means,
    a preference for C over A moves the balanced mean by nothing, and the left-out items are recorded."""
    from lrt.stats.balance import Balance
    from lrt.steering.vectors import contrast_vector

    g = torch.Generator().manual_seed(3)
    kinds = [([5], [11])] * 8 + [([11], [5])] * 5 + [([7], [5])] * 3
    items = [Item(ids=torch.randint(1, 300, (8,), generator=g).tolist(), positive=p, negative=n, source=f"c{i}")
             for i, (p, n) in enumerate(kinds)]
    bal = Balance(items)
    assert bal.on and bal.groups == 2 and bal.left_out == 3 and bal.record()["items_per_answer_pair"]["[7]|[5]"] == 3
    c_over_a = torch.tensor([0.0] * 8 + [-1.0] * 5 + [1.0] * 3)        # what a "C rather than A" direction does
    ab_letter = torch.tensor([1.0] * 8 + [-1.0] * 5 + [0.0] * 3)       # an "A rather than B" one
    assert bal.mean(c_over_a) == 0.5 * -1.0 and bal.mean(ab_letter) == 0.0
    c_over_a[8:13] = 0.0                                               # on the mirrored items alone: no effect
    assert bal.mean(c_over_a) == 0.0 and c_over_a.mean() > 0.15
    v = contrast_vector(tiny_lm, items, 1).vector
    plain = [contrast_vector(tiny_lm, items[a:b], 1, balance=False).vector for a, b in ((0, 8), (8, 13))]
    assert torch.allclose(v, (plain[0] + plain[1]) / 2, atol=1e-5)
    assert contrast_vector(tiny_lm, items, 1).meta["answer_balance"]["left_out"] == 3
    only_two = Balance(items[:13])
    assert torch.equal(only_two.mean(ab_letter[:13]), torch.tensor(0.0))


def test_validation_items_are_half_per_matching_letter():
    """The next unused generate pairs can be 11 A-matching and 1 B-matching (survival-instinct): the balanced mean
    then cannot be taken and a letter preference reads as steering. Validation is picked alternately from the two
    directions of the commonest mirrored pair, in order; the study and the split of a test file both do."""
    from lrt.evaluate.steering import split_validation
    from lrt.pipelines.config import StudyConfig
    from lrt.pipelines.study import behaviour_items, parse_behaviour
    from lrt.stats.balance import Balance, balanced_pick
    from lrt.models.load import load_model

    mk = lambda p, n, i: Item(ids=[1, 2, i], positive=[p], negative=[n], source=f"v{i}")     # noqa: E731
    items = [mk(5, 11, i) for i in range(10)] + [mk(11, 5, 10), mk(7, 5, 11), mk(11, 5, 12), mk(11, 5, 13)]
    got = balanced_pick(items, 6)
    assert [it.source for it in got] == ["v0", "v1", "v2", "v10", "v12", "v13"]
    assert balanced_pick(items[:10], 4) == items[:4]                  # one direction only: the first n
    val, rest, idx = split_validation(items, 6, seed=0)
    assert sorted(Balance(val).counts.values()) == [3, 3] and len(rest) == 8 and len(idx) == 6
    tok = load_model("zoo-xs").tokenizer
    its = behaviour_items(parse_behaviour("caa:survival-instinct"), tok, StudyConfig())
    keys = [(tuple(it.positive), tuple(it.negative)) for it in its["validation"]]
    assert len(keys) == 12 and sorted(keys.count(k) for k in set(keys)) == [6, 6]
    assert Balance(its["validation"]).on


def test_repeated_prompts_count_once_and_a_test_set_that_repeats_the_generate_set_is_refused(tmp_path, capsys):
    """A generate set that repeats its prompts gives vector pairs and validation items each prompt once; a test set
    whose prompts are mostly among the vector pairs' is refused (as the shipped persona rewrite of sycophancy was
    not, when it dropped the questions: 60 distinct statements in 1,000 records) — by ``lrt study`` before it loads a behaviour or writes
    anything; an evaluation's test items count each prompt once."""
    from lrt.cli import main
    from lrt.data.contrasts import load_contrasts
    from lrt.errors import DatasetError
    from lrt.models.load import load_model
    from lrt.pipelines.config import StudyConfig
    from lrt.pipelines.experiment import test_items
    from lrt.pipelines.study import behaviour_items, parse_behaviour

    recs = [{"question": c.prompt, "answer_matching_behavior": c.positive, "answer_not_matching_behavior": c.negative}
            for c in load_contrasts("caa:refusal", role="contrast")[:60]]
    gen, bad, good = tmp_path / "gen.json", tmp_path / "bad.json", tmp_path / "good.json"
    gen.write_text(json.dumps([r for r in recs[:40] for _ in range(3)]))     # 120 records, 40 prompts
    bad.write_text(json.dumps(recs[:10] + recs[50:55]))                     # 10 of 15 are vector pairs' prompts
    good.write_text(json.dumps(recs[50:60] + recs[50:60]))                  # 10 prompts, each twice
    tok = load_model("zoo-xs").tokenizer
    cfg = StudyConfig(pairs=20, test_items=20, test_fill=False)
    its = behaviour_items(parse_behaviour(f"{gen}={good}"), tok, cfg)
    for k, n in (("vector", 20), ("test", 10)):
        assert len(its[k]) == n and len({it.source for it in its[k]}) == n
    val = {it.source for it in its["validation"]}
    assert len(val) == len(its["validation"]) >= 2 and not val & {it.source for it in its["vector"]}
    with pytest.raises(DatasetError, match="10 of its 15 test items have the prompt of one of the 20 vector pairs"):
        behaviour_items(parse_behaviour(f"{gen}={bad}"), tok, cfg)
    out = tmp_path / "st"
    assert main(["study", "--source", "zoo-xs", "--target", "zoo-s", "--behaviours", f"{gen}={bad}", "--pairs", "20",
                 "--no-progress", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    said = [line for line in err.splitlines() if line.startswith("lrt:")]     # (besides the weights' load bars)
    assert len(said) == 1 and "repeats its generate set" in said[0] and "Traceback" not in err
    assert not out.exists()
    from lrt.evaluate.config import TestSetConfig
    items, _ = test_items(TestSetConfig(test=str(good)), load_model("zoo-xs"))
    assert len(items) == 10


def test_a_short_test_set_is_filled_from_unused_generate_pairs():
    """--test-items beyond the test set's 50: the rest come from the generate set's pairs that neither the vectors
    nor the validation items use, half per matching letter, counted by source; --no-test-fill (and an older
    study's config) keeps the test set alone; the fill counts in what the generate set must spare."""
    from dataclasses import replace
    from lrt.models.load import load_model
    from lrt.pipelines.config import StudyConfig
    from lrt.pipelines.study import behaviour_items, grow_pairs, parse_behaviour
    from lrt.pipelines.study_cache import LEGACY
    from lrt.stats.balance import Balance

    tok = load_model("zoo-xs").tokenizer
    b = parse_behaviour("caa:survival-instinct")
    cfg = StudyConfig(test_items=80)
    its = behaviour_items(b, tok, cfg)
    assert its["test_sources"] == {"test set": 50, "generate set": 30} and len(its["test"]) == 80
    src = {k: {it.source for it in its[k]} for k in ("vector", "validation", "test")}
    assert not src["vector"] & src["test"] and not src["validation"] & src["test"] and len(src["test"]) == 80
    extra = its["test"][50:]
    keys = [(tuple(it.positive), tuple(it.negative)) for it in extra]
    assert sorted(keys.count(k) for k in set(keys)) == [15, 15] and Balance(extra).on
    assert its["test"][:50] == behaviour_items(b, tok, replace(cfg, test_fill=False))["test"]
    assert its["validation"] == behaviour_items(b, tok, StudyConfig())["validation"]   # the fill comes after it
    plain = behaviour_items(b, tok, replace(cfg, test_fill=False))
    assert plain["test_sources"] == {"test set": 50} and len(plain["test"]) == 50
    assert LEGACY["test_fill"]({}, {}) is False

    seen = []                       # grow_pairs' cap: the generate set less 2 × validation and the fill

    def fake_vector(lm, items, layer, name=None, states=None):
        seen.append(len(items))
        return type("V", (), {"meta": {"split_half_cos": 0.0}})()
    import lrt.pipelines.study_items as items_mod
    real, items_mod.contrast_vector = items_mod.contrast_vector, fake_vector
    real_states = items_mod.contrast_states
    items_mod.contrast_states = lambda lm, items, layer, before=None, desc=None: None
    try:
        gen = list(range(100))
        grow_pairs(None, gen, b, 1, replace(cfg, pairs=8, max_pairs=1000), log=lambda *a: None)
        assert seen[-1] == 100 - 24 - 30
        seen.clear()
        grow_pairs(None, gen, b, 1, replace(cfg, pairs=8, max_pairs=1000, test_fill=False), log=lambda *a: None)
        assert seen[-1] == 100 - 24
    finally:
        items_mod.contrast_vector, items_mod.contrast_states = real, real_states


def _persona_items(cells: dict[str, int], seed: int = 5) -> list[Item]:
    """Items in persona form: cell "YA" = the matching answer is (A), which is "Yes" — and so on."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for cell, n in cells.items():
        for _ in range(n):
            yes_matches, a_matches = cell[0] == "Y", cell[1] == "A"
            a_text = "Yes" if yes_matches == a_matches else "No"
            b_text = "No" if a_text == "Yes" else "Yes"
            match, other = (a_text, b_text) if a_matches else (b_text, a_text)
            out.append(Item(ids=torch.randint(1, 300, (8,), generator=g).tolist(), positive=[5] if a_matches else [11],
                            negative=[11] if a_matches else [5], source=f"{cell}{len(out)}", answers=(match, other)))
    return out


def test_persona_items_weigh_yes_and_no_matching_answers_alike(tiny_lm):
    """Persona items ("(A) Yes (B) No" in alternating order): on the 1.5B the CAA differences of Yes-matching and
    No-matching pairs have cosine −0.99 — a persona CAA vector on a set with more Yes-matching pairs is mostly "say
    Yes", and steers a test set with more No-matching items backwards. The cells (letter × meaning) weigh alike
    in vectors and means: a "say Yes" preference and a letter preference both cancel; letters alone did not."""
    from lrt.stats.balance import Balance, balanced_pick
    from lrt.steering.vectors import contrast_vector

    cells = {"YA": 10, "YB": 6, "NA": 4, "NB": 5}
    items = _persona_items(cells)
    bal = Balance(items)
    assert bal.on and bal.groups == 4 and bal.left_out == 0 and bal.meanings == ["yes", "no"]
    say_yes = torch.tensor([1.0 if it.source[0] == "Y" else -1.0 for it in items])
    say_a = torch.tensor([1.0 if it.positive == [5] else -1.0 for it in items])
    behaviour = torch.full((len(items),), 0.3)
    assert abs(float(say_yes.mean())) > 0.2                      # the plain mean: (16 − 9) / 25
    letters_only = Balance([Item(ids=it.ids, positive=it.positive, negative=it.negative) for it in items])
    assert abs(float(letters_only.mean(say_yes))) > 0.2 and letters_only.meanings is None
    assert float(bal.mean(say_yes)) == 0.0 and float(bal.mean(say_a)) == 0.0
    assert torch.isclose(bal.mean(say_yes + say_a + behaviour), torch.tensor(0.3))
    v = contrast_vector(tiny_lm, items, 1)
    starts = [0, 10, 16, 20, 25]
    per_cell = [contrast_vector(tiny_lm, items[a:b], 1, balance=False).vector for a, b in zip(starts, starts[1:])]
    assert torch.allclose(v.vector, sum(per_cell) / 4, atol=1e-5)
    assert v.meta["answer_balance"]["answer_meanings"] == ["yes", "no"]
    picked = Balance(balanced_pick(items, 12))                 # validation: three items of each cell
    assert picked.groups == 4 and sorted(picked.counts.values()) == [3, 3, 3, 3]


def test_split_half_cos_tells_a_stable_vector_from_noise(tiny_lm):
    """``split_half_cos`` deals each answer cell's items to two halves: a behaviour shared by all pairs gives ~1 even
    under 'say Yes' and letter parts 20× its size (they cancel in each half's balanced mean); pairs that share
    nothing give ~0. ``centre_cells`` keeps the behaviour and each pair's own variation, not the cells' parts. The
    CAA vector records it."""
    from lrt.stats.balance import Balance, centre_cells, split_half_cos
    from lrt.steering.vectors import contrast_vector

    items = _persona_items({"YA": 10, "YB": 8, "NA": 8, "NB": 10})
    bal = Balance(items)
    g = torch.Generator().manual_seed(3)
    say_yes = torch.tensor([1.0 if it.source[0] == "Y" else -1.0 for it in items])[:, None]
    say_a = torch.tensor([1.0 if it.positive == [5] else -1.0 for it in items])[:, None]
    yes_dir, a_dir, behaviour = (torch.randn(16, generator=g) for _ in range(3))
    noise = torch.randn(len(items), 16, generator=g)
    nuisance = 20 * say_yes * yes_dir + 20 * say_a * a_dir
    stable = nuisance + 3 * behaviour + 0.5 * noise
    assert split_half_cos(stable, bal.cells) > 0.95
    assert abs(split_half_cos(nuisance + noise, bal.cells)) < 0.6
    rows = centre_cells(stable, bal.cells)
    torch.testing.assert_close(rows.mean(0), bal.mean(stable.T), rtol=1e-5, atol=1e-5)
    assert float(torch.nn.functional.cosine_similarity(rows.mean(0), behaviour, dim=0)) > 0.95
    assert float((rows @ yes_dir).abs().max()) < 0.1 * 20 * float(yes_dir.norm() ** 2)
    one = torch.zeros(len(items), dtype=torch.long)
    torch.testing.assert_close(centre_cells(stable, one), stable)
    assert split_half_cos(stable[:5], torch.tensor([0, 0, 1, 1, 2])) is None        # a cell of one item
    v = contrast_vector(tiny_lm, items, 1)
    assert -1 <= v.meta["split_half_cos"] <= 1


def test_the_study_takes_more_pairs_while_the_vector_is_unstable(monkeypatch):
    """``grow_pairs``: a weak direction under per-pair noise gets 60 → 120 → 240 pairs, until its halves agree
    (split-half cos ≥ 0.5: it rises with the pairs as the noise averages out); a strong one keeps --pairs; pure
    noise stops at --max-pairs; --max-pairs at or below --pairs never grows. (Each pair's difference is a planted
    direction plus its own noise; the split-half cosine is the real one, over the set's real answer cells.)"""
    from types import SimpleNamespace
    import lrt.pipelines.study_items as study
    from lrt.pipelines.config import StudyConfig
    from lrt.stats.balance import Balance, split_half_cos

    b = study.parse_behaviour("caa:sycophancy")
    src, tok = None, load_model("zoo-xs").tokenizer                 # the model is only passed to contrast_vector
    g = torch.Generator().manual_seed(1)
    direction, noise = torch.randn(64, generator=g), torch.randn(1000, 64, generator=g)
    direction /= direction.norm()
    scale = {}

    def fake_vector(lm, items, layer, name="", states=None):
        d = scale["s"] * direction + noise[:len(items)]
        return SimpleNamespace(meta={"split_half_cos": split_half_cos(d, Balance(items).cells)})

    monkeypatch.setattr(study, "contrast_vector", fake_vector)
    monkeypatch.setattr(study, "contrast_states", lambda lm, items, layer, before=None, desc=None: None)

    def grow(s, **kw):
        scale["s"] = s
        cfg = StudyConfig(**kw)
        g = study.grow_pairs(src, study.generate_items(b, tok, cfg), b, 5, cfg, log=lambda m: None)
        n, trail = g.pairs, g.trail
        assert n == trail[-1]["pairs"] and g.native is None
        return [t["pairs"] for t in trail], [t["split_half_cos"] for t in trail]

    ns, halves = grow(0.95)                             # split-half 0.22, 0.30, 0.58
    assert ns == [60, 120, 240] and halves[-1] >= 0.5 > max(halves[:-1])
    ns, halves = grow(4.0)
    assert ns == [60] and halves[0] > 0.8
    ns, halves = grow(0.0, max_pairs=200)
    assert ns == [60, 120, 200] and max(halves) < 0.5
    assert grow(0.0, max_pairs=60)[0] == [60] and grow(0.0, pairs=30, max_pairs=10)[0] == [30]


def test_the_pairs_also_grow_while_the_large_models_own_vector_is_unstable(monkeypatch):
    """--grow-native: the small model's vector stable from 60 pairs (its halves agree), the large model's own at
    the target layer a weak direction under per-pair noise (the 1.5B's A/B and persona vectors at L13: split-half
    0.37-0.40 on 30 pairs): the pairs still grow 60 → 120 → 240, until the native halves agree too, each step
    recording both cosines; without the native side (--no-grow-native) they stay at 60. Each model's states run
    once per pair."""
    from dataclasses import replace
    from types import SimpleNamespace
    import lrt.pipelines.study_items as study
    from lrt.pipelines.config import StudyConfig
    from lrt.stats.balance import Balance, split_half_cos

    b = study.parse_behaviour("caa:sycophancy")
    tok = load_model("zoo-xs").tokenizer
    g = torch.Generator().manual_seed(1)
    direction, noise = torch.randn(64, generator=g), torch.randn(1000, 64, generator=g)
    direction /= direction.norm()
    scale, ran = {"small": 4.0, "large": 0.95}, {"small": [], "large": []}

    def fake_vector(lm, items, layer, name="", states=None):
        d = scale[lm] * direction + noise[:len(items)]
        return SimpleNamespace(meta={"split_half_cos": split_half_cos(d, Balance(items).cells)}, lm=lm)

    bars = []

    def fake_states(lm, items, layer, before=None, desc=None):
        k = 0 if before is None else before
        ran[lm].append(len(items) - k)
        bars.append(desc)
        return len(items)

    monkeypatch.setattr(study, "contrast_vector", fake_vector)
    monkeypatch.setattr(study, "contrast_states", fake_states)
    cfg = StudyConfig()
    gen = study.generate_items(b, tok, cfg)
    got = study.grow_pairs("small", gen, b, 5, cfg, log=lambda m: None, native=("large", gen, 7))
    assert [t["pairs"] for t in got.trail] == [60, 120, 240] and got.pairs == 240
    small = [t["split_half_cos"] for t in got.trail]
    large = [t["native_split_half_cos"] for t in got.trail]
    assert min(small) > 0.8 and large[-1] >= 0.5 > max(large[:-1])
    assert {(t["layer"], t["target_layer"]) for t in got.trail} == {(5, 7)} and got.native.lm == "large"
    assert ran == {"small": [60, 60, 120], "large": [60, 60, 120]}
    assert bars[:2] == [f"{b.name}: 60 vector pairs, source L5", f"{b.name}: 60 vector pairs, target L7"]
    assert bars[-1] == f"{b.name}: 240 vector pairs, target L7"     # each step's bar is named with its pair count
    bars.clear()
    study.grow_pairs("small", gen, b, 5, replace(cfg, eval=replace(cfg.eval, progress=False)), log=lambda m: None)
    assert bars == [None]                                            # --no-progress: no bar
    alone = study.grow_pairs("small", gen, b, 5, cfg, log=lambda m: None)
    assert alone.pairs == 60 and alone.native is None and "native_split_half_cos" not in alone.trail[0]
    capped = study.grow_pairs("small", gen, b, 5, StudyConfig(max_pairs=100), log=lambda m: None,
                              native=("large", gen, 7))
    assert capped.pairs == 100 and capped.trail[-1]["native_split_half_cos"] < 0.5


def test_the_small_models_own_curve_is_steered_as_the_study_steers(tmp_path, monkeypatch):
    """With --positions answer the study's small-model signal (``small_z``) steers only the answer position, like
    its layer search and verdict: before, it steered every position whatever the study's intervention."""
    import lrt.pipelines.study as study
    from lrt.cli import main

    calls = []

    def recorded(fn):
        return lambda lm, *a, **k: (calls.append((fn.__name__, lm.d_model)), fn(lm, *a, **k))[1]

    real_for = study.grid_for                # the study's own grids: A·v's answer probe, the small model's curve
    monkeypatch.setattr(study, "answer_grid", recorded(study.answer_grid))
    monkeypatch.setattr(study, "grid_for", lambda positions: recorded(real_for(positions)))
    args = ["study", "--source", "zoo-xs", "--target", "zoo-s", "--behaviours", "caa:refusal", "--pairs", "8",
            "--test-items", "6", "--search-items", "4", "--n-random", "4", "--search-random", "3",
            "--contrast-sets", "caa:sycophancy", "--contrast-sets", "caa:myopic-reward", "--contrast-pairs", "6",
            "--tokens", "2000", "--no-layer-search",
            "--bootstrap", "50", "--no-progress"]
    d_small, d_large = load_model("zoo-xs").d_model, load_model("zoo-s").d_model
    assert d_small != d_large
    assert main(args + ["--positions", "answer", "--out", str(tmp_path / "a")]) == 0
    assert sorted(calls) == [("answer_grid", d_small), ("answer_grid", d_large)]
    assert "steered: the answer position only" in (tmp_path / "a" / "report.html").read_text()   # the page says so
    calls.clear()
    assert main(args + ["--out", str(tmp_path / "b")]) == 0        # every position: the small curve too
    assert sorted(calls) == [("answer_grid", d_large), ("propensity_grid", d_small)]
    assert "steered: every position" in (tmp_path / "b" / "report.html").read_text()


def test_pairs_are_grown_at_each_candidate_source_layer_before_it_is_probed_on_new_validation_items(tmp_path,
                                                                                                 monkeypatch):
    """The pairs are grown at each candidate's source layer before that candidate is probed (myopic-reward on the
    Qwen pair: stable at L14 with 60 pairs, split-half 0.96; at L11 0.24 with 60, 0.63 with 120); where a candidate
    needs more, it is probed with them on validation items no earlier candidate used — and no item any probe saw is
    a test item. (Forced: 8 pairs at the first source layer, 16 at the second; the first candidate does not steer,
    the second does — zoo-s → zoo-m, L1 → L2 then L0 → L0.)"""
    from dataclasses import replace
    import lrt.pipelines.layer_search as layer_search
    import lrt.pipelines.study as study
    from lrt.cli import main

    real_grow, real_probe, grown, probed = study.grow_pairs, layer_search.probe_layer, [], []

    def grow(src, gen, b, layer, cfg, log=print, native=None):
        n = cfg.pairs * (1 if not grown else 2)
        grown.append(layer)
        return real_grow(src, gen, b, layer, replace(cfg, pairs=n, max_pairs=n), log, native=native)

    def probe(lm, layer, vector_items, validation, *a, **k):
        rec, v = real_probe(lm, layer, vector_items, validation, *a, **k)
        probed.append((layer, len(vector_items), {it.source for it in validation}))
        rec["steers_forward"] = len(probed) == 2
        return rec, v

    real_eval, tested = study.evaluate_vectors, []
    monkeypatch.setattr(study, "grow_pairs", grow)
    monkeypatch.setattr(layer_search, "probe_layer", probe)
    monkeypatch.setattr(study, "evaluate_vectors", lambda lm, layer, items, *a, **k: (
        tested.append({it.source for it in items}), real_eval(lm, layer, items, *a, **k))[1])
    assert main(["study", "--source", "zoo-s", "--target", "zoo-m", "--behaviours", "caa:myopic-reward",
                 "--pairs", "8", "--test-items", "60", "--search-items", "4", "--n-random", "4",
                 "--search-random", "3", "--candidate-depths", "0.25", "--contrast-sets", "caa:sycophancy",
                 "--contrast-sets", "caa:refusal", "--contrast-pairs", "6",
                 "--tokens", "2000", "--bootstrap", "50", "--no-progress", "--out", str(tmp_path / "st")]) == 0
    (l1, n1, val1), (l2, n2, val2) = probed
    assert (l1, n1, l2, n2) == (2, 8, 0, 16) and grown == [1, 0]
    assert val1 and val2 and not val1 & val2 and not tested[0] & (val1 | val2)
    assert len(tested[0]) == 60                 # 50 from the test set, 10 filled from the generate set
    rec = json.loads((tmp_path / "st" / "behaviours" / "caa-myopic-reward" / "result.json").read_text())
    assert rec["items"]["vector"] == 16 and rec["layers"] == {"source": 0, "target": 0}
    assert [(t["pairs"], t["layer"]) for t in rec["vector_pairs"]] == [(8, 1), (16, 0)]
    assert [r["vector_pairs"] for r in rec["layer_search"]] == [8, 16]
    from lrt.report.study import half_cell             # the page and the summary say at which layer each grew
    assert re.fullmatch(r"\S+ / \S+ \(16 pairs\); grown at L1→L2: \S+/\S+ \(8\); at L0→L0: \S+/\S+ \(16\)",
                        half_cell(rec))
    assert [r["split_half_cos"] is not None for r in rec["layer_search"]] == [True, True]
    from lrt.pipelines.config import StudyConfig
    from lrt.pipelines.study_items import generate_items, parse_behaviour
    from lrt.steering.vectors import SteeringVector, contrast_vector
    for name in ("small", "native"):
        v = SteeringVector.load(tmp_path / "st" / "behaviours" / "caa-myopic-reward" / "vectors" / name)
        assert v.n_pairs == 16 and v.meta["data"]["n_examples"] == 16
    # the native vector the growth computed on the way (and the probe reused) is the one its pairs give
    tgt = load_model("zoo-m")
    gen = generate_items(parse_behaviour("caa:myopic-reward"), tgt.tokenizer, StudyConfig())
    torch.testing.assert_close(v.vector, contrast_vector(tgt, gen[:16], 0).vector, rtol=1e-5, atol=1e-6)
    assert rec["signals"]["native_split_half_cos"] == pytest.approx(v.meta["split_half_cos"])


def test_with_fallback_cached_a_behaviour_no_layer_steers_for_takes_a_cached_layer_pair(tmp_path, monkeypatch):
    """No candidate steers on validation for either behaviour (forced; zoo-s → zoo-m: L1 → L2, then L0 → L0). The
    first takes the largest z (L0 → L0: nothing is cached yet) and computes its map and pool; the second's largest
    z is at L1 → L2, but with --fallback cached it takes the cached L0 → L0 — no second text map or pool — and its
    record and the page say by which rule."""
    import lrt.pipelines.layer_search as layer_search
    from lrt.cli import main

    real_probe, probed = layer_search.probe_layer, []
    zs = [1.0, 3.0, 3.0, 1.0]                  # per probe, in order: behaviour 1 at L2, L0; behaviour 2 at L2, L0

    def probe(lm, layer, *a, **k):
        rec, v = real_probe(lm, layer, *a, **k)
        rec["z"], rec["steers_forward"] = zs[len(probed)], False
        probed.append(layer)
        return rec, v

    monkeypatch.setattr(layer_search, "probe_layer", probe)
    out = tmp_path / "st"
    assert main(["study", "--source", "zoo-s", "--target", "zoo-m", "--behaviours", "caa:myopic-reward",
                 "--behaviours", "caa:refusal", "--pairs", "8", "--max-pairs", "8", "--test-items", "6",
                 "--search-items", "4", "--n-random", "4", "--search-random", "3", "--candidate-depths", "0.25",
                 "--fallback", "cached", "--contrast-sets", "caa:sycophancy", "--contrast-sets",
                 "caa:survival-instinct", "--contrast-pairs", "6",
                 "--tokens", "2000", "--bootstrap", "50", "--no-progress", "--out", str(out)]) == 0
    assert probed == [2, 0, 2, 0]
    res = json.loads((out / "results.json").read_text())
    first, second = res["behaviours"]["caa:myopic-reward"], res["behaviours"]["caa:refusal"]
    assert first["layers"] == second["layers"] == {"source": 0, "target": 0}
    assert not first["layer_steers_on_validation"] and first["fallback"] == "largest z"
    assert second["fallback"] == "largest z among cached layer pairs (largest overall: L1 → L2, z 3.00)"
    assert sorted(p.name for p in (out / "cache").iterdir()) == ["pool-0-0.safetensors", "text-0-0"]
    assert set(res["timings"]) >= {"text_map_0_0", "pool_0_0"} and "text_map_1_2" not in res["timings"]
    assert "largest z among cached layer pairs" in (out / "report.html").read_text()


def test_the_layer_search_starts_at_relative_depth_and_tries_each_target_layer_once():
    """24 → 28 blocks (the Qwen pair): --first-depth 0.65 is L14 → L17 (where docs/real-pair.md measured the map
    carrying vectors best), then the default --candidate-depths 0.5, 0.35, 0.8 — L13, L9, L21 with their source
    blocks at the same depth; a depth that lands on a target layer already tried is skipped."""
    from lrt.pipelines.config import StudyConfig
    from lrt.pipelines.layer_search import candidates, pair_at_depth

    cfg = StudyConfig()
    first = pair_at_depth(cfg.first_depth, 24, 28)
    assert first == (14, 17)
    assert candidates(first, 24, 28, cfg.candidate_depths) == [(14, 17), (11, 13), (8, 9), (18, 21)]
    assert candidates(first, 24, 28, [0.65, 0.66, 1.0]) == [(14, 17), (23, 27)]
    with pytest.raises(Exception, match="first-depth must be in"):
        StudyConfig(first_depth=1.5)
    from types import SimpleNamespace
    from lrt.models.config import PairConfig
    from lrt.pipelines.study_cache import first_pair

    class M(SimpleNamespace):
        def layer_index(self, x):
            return int(x)

    src, tgt = M(n_layers=24), M(n_layers=28)
    def at(layers=None, **kw):
        return first_pair(StudyConfig(pair=PairConfig("s", "t", **(layers or {})), **kw), src, tgt)

    assert at() == (14, 17)
    assert at(layers={"target_layer": 17}) == (14, 17)            # the source at the target's depth, not L11
    assert at(layers={"source_layer": 14}) == (14, 17)
    assert at(layers={"source_layer": 3, "target_layer": 20}) == (3, 20)
    assert at(first_depth=0) == (11, 13)                          # the other commands' middle-block rule


def test_answer_meanings_come_from_the_options_and_only_where_they_recur():
    """``to_item`` records the options' texts; persona rewrites balance Yes/No, CAA A/B sets with sentence options
    balance letters only, and a set where one text is nearly always the matching answer (corrigible-neutral-HHH:
    "Yes" on 27 of its 31 Yes/No pairs) keeps the meaning as part of the behaviour."""
    from lrt.data.contrasts import Contrast, contrast_items, load_contrasts
    from lrt.data.formats import to_persona
    from lrt.stats.balance import Balance

    tok = load_model("zoo-xs").tokenizer
    ab = [Contrast(f"Q{i}?\n\nChoices:\n(A) answer one {i}\n(B) answer two {i}", "(A)" if i % 3 else "(B)",
                   "(B)" if i % 3 else "(A)") for i in range(24)]
    items = contrast_items(tok, ab)
    assert items[1].answers == ("answer one 1", "answer two 1") and items[0].answers == ("answer two 0",
                                                                                          "answer one 0")
    assert Balance(items).meanings is None and Balance(items).groups == 2
    persona, skipped = to_persona(ab)
    assert skipped == 0
    p_items = contrast_items(tok, persona)
    assert {it.answers for it in p_items} == {("Yes", "No"), ("No", "Yes")}
    assert Balance(p_items).meanings is not None and Balance(p_items).groups == 4
    corr = contrast_items(tok, load_contrasts("caa:corrigible-neutral-HHH", 60))
    assert Balance(corr).meanings is None and Balance(corr).left_out == 0
    syc = contrast_items(tok, load_contrasts("caa:sycophancy", 60))
    assert sorted(Balance(syc).meanings) == ["agree", "disagree"] and Balance(syc).groups == 4
    assert contrast_items(tok, [Contrast("Would you? Answer Yes or No.", " Yes", " No")])[0].answers == ()
