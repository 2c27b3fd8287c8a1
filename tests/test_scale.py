"""Scale out and survive faults: the activation store (write, read, fit from it, resume after SIGKILL, refuse
corrupted shards), data parallelism over gloo ranks (statistics and maps equal to one process; a dead rank ends
the others with a clear error), atomic checkpoints, and an SAE run killed and resumed to the same curve."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from lrt.errors import DistributedError, StoreError
from lrt.harvest.config import HarvestConfig
from lrt.harvest.store import ActivationStore
from lrt.harvest.store_write import write_store
from lrt.maps.config import FitConfig
from lrt.maps.fit import fit_map_from_store, fit_map_pair
from lrt.models.load import load_model

ENV = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def pair():
    return load_model("zoo-xs"), load_model("zoo-s")


def _harvest_cfg(tokens=6000, **kw) -> HarvestConfig:
    return HarvestConfig(tokens=tokens, context=128, batch_size=4, progress=False, **kw)


def test_fit_from_store_equals_fit_from_models(pair, tmp_path):
    src, tgt = pair
    h = _harvest_cfg()
    m = write_store([src, tgt], [[0, 1], [2]], h, tmp_path / "st", shard_rows=700)
    assert m["complete"] and len(m["shards"]) > 3 and m["rows"] == sum(s["rows"] for s in m["shards"])
    fit = FitConfig(max_norm_ratio=0, shuffled_control=False)
    live, _ = fit_map_pair(src, tgt, 1, 2, h, fit, both=False)
    stored, inv = fit_map_from_store(tmp_path / "st", 1, 2, fit, both=True)
    torch.testing.assert_close(stored.A, live.A, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(stored.p, live.p, rtol=1e-5, atol=1e-5)
    assert stored.meta["tokens"]["train_rows"] == live.meta["tokens"]["train_rows"]
    assert stored.meta["metrics"]["heldout"]["r2"] == pytest.approx(live.meta["metrics"]["heldout"]["r2"], abs=1e-6)
    assert inv.source == "zoo-s" and inv.target_layer == 1 and stored.meta["store"]["rows"] == m["rows"]
    with pytest.raises(StoreError, match="layers 0, 1 of 'zoo-xs', not 3"):
        fit_map_from_store(tmp_path / "st", 3, 2, fit)


def test_corrupted_or_truncated_shard_is_refused_by_name_or_skipped(pair, tmp_path):
    src, tgt = pair
    write_store([src, tgt], [[1], [2]], _harvest_cfg(4000), tmp_path / "st", shard_rows=800)
    shard = tmp_path / "st" / "shard-00001.safetensors"
    data = bytearray(shard.read_bytes())
    data[-5] ^= 0xFF                                                  # one flipped bit of one float
    shard.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="shard-00001.safetensors is corrupted"):
        fit_map_from_store(tmp_path / "st", 1, 2)
    m, _ = fit_map_from_store(tmp_path / "st", 1, 2, skip_bad_shards=True)
    whole = json.loads((tmp_path / "st" / "manifest.json").read_text())
    assert m.meta["store"]["bad_shards_skipped"] == ["shard-00001.safetensors"]
    assert any("1 bad shard" in w for w in m.meta["warnings"])
    assert m.meta["tokens"]["harvested"] == whole["rows"] - whole["shards"][1]["rows"]
    shard.write_bytes(bytes(data[:1000]))
    with pytest.raises(StoreError, match="truncated"):
        ActivationStore(tmp_path / "st").check(whole["shards"][1])


def _cli(*args, **kw):
    return subprocess.Popen([sys.executable, "-m", "lrt", *map(str, args)], env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def test_harvest_killed_with_sigkill_resumes_to_the_identical_store(tmp_path):
    args = ["harvest", "--model", "zoo-xs", "--model", "zoo-s", "--layers", "1", "--layers", "2", "--tokens",
            30000, "--context", 64, "--batch-size", 2, "--shard-rows", 250, "--no-progress"]
    whole = _cli(*args, "--out", tmp_path / "whole")
    assert whole.wait(300) == 0, whole.stderr.read()
    p = _cli(*args, "--out", tmp_path / "cut")
    manifest = tmp_path / "cut" / "manifest.json"
    deadline = time.time() + 120
    while time.time() < deadline and p.poll() is None:
        if manifest.exists() and len(json.loads(manifest.read_text())["shards"]) >= 3:
            break
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL)
    p.wait()
    cut = json.loads(manifest.read_text())
    assert not cut["complete"], "the harvest finished before it could be killed; give it more tokens"
    with pytest.raises(StoreError, match="incomplete"):
        ActivationStore(tmp_path / "cut")
    r = _cli(*args, "--out", tmp_path / "cut", "--resume")
    assert r.wait(300) == 0, r.stderr.read()
    a, b = (json.loads((tmp_path / d / "manifest.json").read_text()) for d in ("whole", "cut"))
    assert b["complete"] and len(b["shards"]) == len(a["shards"]) > len(cut["shards"])
    assert [s["sha256"] for s in a["shards"]] == [s["sha256"] for s in b["shards"]]   # byte-identical shards
    assert a["corpus_fingerprint"] == b["corpus_fingerprint"] and a["rows"] == b["rows"]


def _accumulate(src, tgt):
    from lrt.maps.accumulate import FitAccumulator
    from lrt.maps.fit import _live_batches

    acc = FitAccumulator(src.d_model, tgt.d_model, "cpu", FitConfig())
    for batch in _live_batches(src, tgt, 1, 2, _harvest_cfg(), {}):
        acc.add(*batch)
    ps, _, norms, excluded = acc.finish()
    return ps, norms, excluded


def _rank_harvest(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    from lrt import distributed

    assert distributed.setup("cpu") and distributed.world() == world
    src, tgt = load_model("zoo-xs"), load_model("zoo-s")
    ps, norms, excluded = _accumulate(src, tgt)
    from safetensors.torch import save_file

    save_file({"train": ps.train.pack(), "held": ps.held.pack(), "shuffled": ps.shuffled.pack(),
               "excluded": torch.tensor([excluded]), "count": torch.tensor([norms["target"].n])},
              f"{out}/rank{rank}.safetensors")
    distributed.teardown()


def test_two_gloo_ranks_harvest_the_single_process_statistics(pair, tmp_path):
    import torch.multiprocessing as mp

    mp.spawn(_rank_harvest, args=(2, _port(), str(tmp_path)), nprocs=2, join=True)
    ps, norms, excluded = _accumulate(*pair)
    got = [load_file(tmp_path / f"rank{r}.safetensors") for r in range(2)]
    assert torch.equal(got[0]["train"], got[1]["train"])             # every rank ends with the same statistics
    for name, whole in (("train", ps.train), ("held", ps.held), ("shuffled", ps.shuffled)):
        assert int(got[0][name][0]) == whole.n > 0
        torch.testing.assert_close(got[0][name], whole.pack(), rtol=1e-9, atol=1e-9)
    assert int(got[0]["excluded"]) == excluded and int(got[0]["count"]) == norms["target"].n


def test_torchrun_fit_map_writes_the_single_process_map(tmp_path):
    common = ["fit-map", "--source", "zoo-xs", "--target", "zoo-s", "--source-layer", 1, "--target-layer", 2,
              "--tokens", 5000, "--no-progress", "--both"]
    one = _cli(*common, "--out", tmp_path / "one")
    assert one.wait(300) == 0, one.stderr.read()
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                          "--master-port", str(_port()), "-m", "lrt", *map(str, common), "--out", tmp_path / "two"],
                         env=ENV, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]
    assert two.stdout.count("\ninverse map saved to") == 1                      # rank 0 alone reports and writes
    for sub in ("", "inverse"):
        a, b = (load_file(tmp_path / d / sub / "map.safetensors") for d in ("one", "two"))
        torch.testing.assert_close(b["A"], a["A"], rtol=1e-6, atol=1e-7)
        ja, jb = (json.loads((tmp_path / d / sub / "map.json").read_text()) for d in ("one", "two"))
        assert jb["ranks"] == 2 and "ranks" not in ja
        assert jb["tokens"] == ja["tokens"] and jb["ridge"] == ja["ridge"]
        assert jb["metrics"]["heldout"]["r2"] == pytest.approx(ja["metrics"]["heldout"]["r2"], abs=1e-9)


def _rank_dies(rank: int, world: int, port: int, out: str) -> None:
    os.environ.update(RANK=str(rank), WORLD_SIZE=str(world), MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port),
                      LRT_DIST_TIMEOUT="30")
    from lrt import distributed
    from lrt.stats.moments import MomentStats

    distributed.setup("cpu")
    if rank == 1:
        os._exit(0)                                                   # dies before the collective
    t0 = time.time()
    try:
        distributed.all_reduce_stats(MomentStats.of(torch.randn(5, 3), torch.randn(5, 2)))
        msg = "no error"
    except DistributedError as e:
        msg = str(e)
    Path(out, "rank0.txt").write_text(f"{time.time() - t0:.1f}\n{msg}")
    os._exit(0)


def test_a_dead_rank_ends_the_others_with_a_clear_error(tmp_path):
    import torch.multiprocessing as mp

    ctx = mp.start_processes(_rank_dies, args=(2, _port(), str(tmp_path)), nprocs=2, join=False,
                             start_method="spawn")
    for p in ctx.processes:
        p.join(120)
    seconds, msg = (tmp_path / "rank0.txt").read_text().split("\n", 1)
    assert "could not merge the statistics" in msg and "another rank died" in msg
    assert float(seconds) <= 45                                       # within the stated timeout (30 s) + slack


def test_a_failed_checkpoint_write_leaves_the_previous_one(tmp_path, monkeypatch):
    import lrt.io.checkpoint as ck

    path = tmp_path / "state.safetensors"
    ck.save_checkpoint(path, {"w": torch.arange(4.0)}, {"step": 1})

    def disk_full(tensors, name, metadata=None):
        Path(name).write_bytes(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(ck, "save_file", disk_full)
    with pytest.raises(OSError, match="No space"):
        ck.save_checkpoint(path, {"w": torch.zeros(4)}, {"step": 2})
    tensors, state = ck.load_checkpoint(path)
    assert state == {"step": 1} and torch.equal(tensors["w"], torch.arange(4.0))
    assert [p.name for p in tmp_path.iterdir()] == ["state.safetensors"]      # no temporary file left


def test_sae_run_killed_and_resumed_gives_the_same_curve(tmp_path):
    args = ["sae", "train", "--model", "zoo-xs", "--layer", 1, "--tokens", 40000, "--context", 64,
            "--batch-size", 4, "--k", 8, "--latents", 256, "--sae-batch-size", 128, "--shuffle-rows", 512,
            "--eval-every", 10, "--eval-rows", 512, "--checkpoint-tokens", 500, "--eval-tokens", 2048,
            "--no-progress"]
    whole = _cli(*args, "--out", tmp_path / "whole")
    assert whole.wait(600) == 0, whole.stderr.read()
    p = _cli(*args, "--out", tmp_path / "cut")
    ckpt = tmp_path / "cut" / "checkpoint.safetensors"
    deadline = time.time() + 300
    seen = 0.0
    while time.time() < deadline and p.poll() is None:
        if ckpt.exists() and seen and ckpt.stat().st_mtime != seen:     # a second checkpoint: well into the run
            break
        seen = ckpt.stat().st_mtime if ckpt.exists() else 0.0
        time.sleep(0.02)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert ckpt.exists() and not (tmp_path / "cut" / "metrics.json").exists(), "the run ended before the kill"
    r = _cli(*args, "--out", tmp_path / "cut", "--resume")
    assert r.wait(600) == 0, r.stderr.read()
    a, b = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("whole", "cut"))
    strip = lambda h: [{k: v for k, v in row.items() if k != "seconds"} for row in h]  # noqa: E731
    assert len(a["history"]) > 5 and strip(a["history"]) == strip(b["history"])        # bit-identical curve
    wa, wb = (load_file(tmp_path / d / "sae_weights.safetensors") for d in ("whole", "cut"))
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not ckpt.exists()                                           # removed once the run finished


def test_torchrun_sae_training_is_data_parallel(tmp_path):
    args = ["sae", "train", "--model", "zoo-xs", "--layer", 1, "--tokens", 30000, "--context", 64, "--k", 8,
            "--latents", 256, "--sae-batch-size", 128, "--shuffle-rows", 1024, "--eval-every", 20,
            "--eval-tokens", 2048, "--no-progress"]
    one = _cli(*args, "--out", tmp_path / "one")
    assert one.wait(300) == 0, one.stderr.read()
    two = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                          "--master-port", str(_port()), "-m", "lrt", *map(str, args), "--out", tmp_path / "two"],
                         env=ENV, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr[-3000:]           # includes the check that both ranks' SAEs are equal
    a, b = (json.loads((tmp_path / d / "metrics.json").read_text()) for d in ("one", "two"))
    # gradients averaged over two ranks' batches: about half the steps over about the same tokens
    assert abs(b["tokens"] - a["tokens"]) <= 2 * 128 * 2 and abs(2 * b["steps"] - a["steps"]) <= 4
    assert b["final"]["fvu"] < 0.9 and abs(b["final"]["fvu"] - a["final"]["fvu"]) < 0.05
    cfg = json.loads((tmp_path / "two" / "cfg.json").read_text())
    assert cfg["metadata"]["lrt"]["ranks"] == 2


def test_a_device_mapped_model_keeps_hooks_and_early_stop(tiny_pair, tiny_corpus, tmp_path):
    """A model split by an accelerate device map (blocks offloaded to disk: its hooks move weights in and out)
    gives the same captured states, early stop included, and the same fitted map as the plain model."""
    from lrt.harvest.capture import run_with_capture
    from lrt.maps.fit import fit_map

    small, large = tiny_pair
    dmap = {"model.embed_tokens": "cpu", "model.layers.0": "cpu", "model.layers.1": "disk",
            "model.layers.2": "disk", "model.layers.3": "cpu", "model.norm": "cpu", "model.rotary_emb": "cpu",
            "lm_head": "cpu"}
    (tmp_path / "map.json").write_text(json.dumps(dmap))
    plain, mapped = load_model(large), load_model(large, device_map=str(tmp_path / "map.json"))
    assert any(hasattr(m, "_hf_hook") for m in mapped.model.modules())     # accelerate's dispatch hooks are on
    ids = torch.randint(1, 100, (2, 12))
    calls = []
    handle = mapped.blocks[3].register_forward_hook(lambda *_: calls.append(1))
    a, b = run_with_capture(plain, [1, 2], ids), run_with_capture(mapped, [1, 2], ids)
    assert not calls                                                  # stopped after block 2
    run_with_capture(mapped, [3], ids)
    assert calls
    handle.remove()
    for layer in (1, 2):
        torch.testing.assert_close(b[layer], a[layer], rtol=1e-5, atol=1e-5)
    h = HarvestConfig(corpus=str(tiny_corpus), tokens=1500, context=32, progress=False)
    src = load_model(small)
    m1, m2 = fit_map(src, plain, 1, 2, h), fit_map(src, mapped, 1, 2, h)
    torch.testing.assert_close(m2.A, m1.A, rtol=1e-4, atol=1e-5)


def test_fit_killed_and_resumed_gives_the_uninterrupted_map(pair, tmp_path):
    """A fit interrupted right after a checkpoint (any later work lost, as with SIGKILL) and resumed gives the
    bit-identical map, row sample and norm summaries included."""
    import lrt.maps.accumulate as accumulate

    src, tgt = pair
    h = _harvest_cfg(8000)
    whole, _ = fit_map_pair(src, tgt, 1, 2, h, both=False)
    ckpt = tmp_path / "checkpoint.safetensors"
    real_save, saves = accumulate.FitAccumulator.save, []

    def save_then_die(self, path, position, fingerprint):
        real_save(self, path, position, fingerprint)
        saves.append(position)
        if len(saves) == 3:
            raise KeyboardInterrupt                                   # killed after the third checkpoint

    accumulate.FitAccumulator.save = save_then_die
    try:
        with pytest.raises(KeyboardInterrupt):
            fit_map_pair(src, tgt, 1, 2, h, both=False, checkpoint=ckpt, checkpoint_tokens=1000)
    finally:
        accumulate.FitAccumulator.save = real_save
    assert saves[-1] > 0 and ckpt.exists()
    resumed, _ = fit_map_pair(src, tgt, 1, 2, h, both=False, checkpoint=ckpt, resume=True)
    assert torch.equal(resumed.A, whole.A) and torch.equal(resumed.p, whole.p)
    for key in ("tokens", "norms", "metrics", "ridge"):
        assert resumed.meta[key] == whole.meta[key], key
    with pytest.raises(Exception, match="another fit"):
        fit_map_pair(src, tgt, 0, 2, h, both=False, checkpoint=ckpt, resume=True)


def test_sweep_from_a_store_equals_the_live_sweep(pair, tmp_path):
    from lrt.maps.sweep import sweep_layers

    src, tgt = pair
    h = _harvest_cfg(5000)
    write_store([src, tgt], [[0, 1], [1, 2]], h, tmp_path / "st", shard_rows=900)
    fit = FitConfig(shuffled_control=False)
    live = sweep_layers(src, tgt, [0, 1], [1, 2], h, fit)
    stored = sweep_layers(src, tgt, [0, 1], [1, 2], h, fit, store=str(tmp_path / "st"))
    assert len(stored.pairs) == 4 and stored.meta["harvest"] == {"store": str(tmp_path / "st")}
    for a, b in zip(live.pairs, stored.pairs):
        assert b["heldout_r2"] == pytest.approx(a["heldout_r2"], abs=1e-6) and b["cka"] == pytest.approx(a["cka"])
    with pytest.raises(StoreError, match="not 3"):
        sweep_layers(src, tgt, [0, 1], [3], h, fit, store=str(tmp_path / "st"))


def test_store_cli_errors_are_one_line_and_create_nothing(tmp_path, capsys):
    from lrt.cli import main

    assert main(["fit-map", "--store", str(tmp_path / "nope"), "--out", str(tmp_path / "m")]) == 2
    assert "is not an activation store" in capsys.readouterr().err and not (tmp_path / "m").exists()
    assert main(["harvest", "--model", "zoo-xs", "--layers", "99", "--out", str(tmp_path / "s"), "-q"]) == 2
    assert "out of range" in capsys.readouterr().err and not (tmp_path / "s").exists()
    assert main(["harvest", "--model", "zoo-xs", "--layers", "1", "--tokens", "600", "--out", str(tmp_path / "s"),
                 "-q"]) == 0
    assert main(["harvest", "--model", "zoo-xs", "--layers", "1", "--tokens", "600", "--out", str(tmp_path / "s"),
                 "-q"]) == 2
    assert "--resume" in capsys.readouterr().err
    assert main(["fit-map", "--store", str(tmp_path / "s"), "--out", str(tmp_path / "m")]) == 2
    assert "holds one model" in capsys.readouterr().err and not (tmp_path / "m").exists()


def test_commands_that_do_not_split_refuse_torchrun(monkeypatch, tmp_path, capsys):
    from lrt.cli import main

    monkeypatch.setenv("WORLD_SIZE", "2")
    assert main(["harvest", "--model", "zoo-xs", "--layers", "1", "--out", str(tmp_path / "s")]) == 2
    err = capsys.readouterr().err
    assert "lrt harvest runs in one process" in err and "lrt fit-map, lrt sweep-layers, lrt sae train" in err
    assert main(["sae", "transfer", "--sae", "x", "--up", "y", "--out", str(tmp_path / "t")]) == 2
    assert "lrt sae transfer runs in one process" in capsys.readouterr().err and not any(tmp_path.iterdir())
