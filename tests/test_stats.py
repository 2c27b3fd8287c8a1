"""The streaming closed-form fit recovers a known affine relation and equals one-shot float64 least squares."""

import pytest
import torch

from lrt.maps.metrics import evaluate_map
from lrt.maps.solve import solve_affine
from lrt.stats.moments import MomentStats
from lrt.stats.samples import NormTracker, Reservoir


def synthetic(n=6000, dx=24, dy=36, noise=0.05, seed=0, row_seed=None):
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(dy, dx, generator=g, dtype=torch.float64) / dx ** 0.5
    p = torch.randn(dy, generator=g, dtype=torch.float64) * 3
    if row_seed is not None:
        g = torch.Generator().manual_seed(row_seed)
    # Offset, anisotropic inputs (like real hidden states: large mean, uneven variances).
    x = torch.randn(n, dx, generator=g, dtype=torch.float64) * torch.linspace(0.2, 5, dx, dtype=torch.float64) + 40
    y = x @ A.T + p + noise * torch.randn(n, dy, generator=g, dtype=torch.float64)
    return x, y, A, p


def stream(x, y, batch=500):
    s = MomentStats(x.shape[1], y.shape[1])
    for i in range(0, len(x), batch):
        s.update(x[i:i + batch].float(), y[i:i + batch].float())
    return s


def test_recovers_known_affine_map():
    x, y, A, p = synthetic()
    A_hat, p_hat = solve_affine(stream(x, y), ridge=0.0)
    # Standard error of a coefficient: noise / (column std · √n) = 0.05 / (0.2 · √6000) ≈ 3e-3 at worst; allow 6σ.
    assert (A_hat - A).abs().max() < 0.02
    # p absorbs the error of A times the input offset of 40 (≈ 40 · 0.003 / √24 per term); |p| is ~3.
    assert (p_hat - p).abs().max() < 0.5
    m = evaluate_map(A_hat, p_hat, stream(*synthetic(row_seed=1)[:2]))   # fresh rows, same map
    assert m["r2"] > 0.999


def test_streaming_equals_one_shot_lstsq():
    x, y, _, _ = synthetic(noise=0.5)
    x32, y32 = x.float().double(), y.float().double()   # the rows the stream sees
    s = stream(x, y)
    A_hat, p_hat = solve_affine(s, ridge=0.0)
    X1 = torch.cat([x32, torch.ones(len(x32), 1, dtype=torch.float64)], 1)
    W = torch.linalg.lstsq(X1, y32, driver="gelsd").solution
    torch.testing.assert_close(A_hat, W[:-1].T, rtol=1e-6, atol=1e-9)
    torch.testing.assert_close(p_hat, W[-1], rtol=1e-6, atol=1e-8)
    # The squared error computed from the moments equals the direct sum.
    direct = ((y32 - x32 @ A_hat.T - p_hat) ** 2).sum(0)
    torch.testing.assert_close(s.sse_per_dim(A_hat, p_hat), direct, rtol=1e-6, atol=1e-6)


def test_ridge_shrinks_and_inverse_from_same_stats():
    x, y, _, _ = synthetic(noise=0.5)
    s = stream(x, y)
    A0, _ = solve_affine(s, ridge=0.0)
    A1, _ = solve_affine(s, ridge=1.0)
    assert A1.norm() < A0.norm()
    B, q = solve_affine(s.transposed(), ridge=0.0)   # inverse map y -> x
    Y1 = torch.cat([y.float().double(), torch.ones(len(y), 1, dtype=torch.float64)], 1)
    W = torch.linalg.lstsq(Y1, x.float().double(), driver="gelsd").solution
    torch.testing.assert_close(B, W[:-1].T, rtol=1e-6, atol=1e-9)


def test_reservoir_is_bounded_and_uniform():
    r = Reservoir(cap=1000, seed=0)
    for i in range(20):
        v = torch.full((500, 2), float(i))
        r.update(v, v)
    assert r.x.shape == (1000, 2) and r.seen == 10_000
    # every batch is represented roughly equally (≈50 rows each)
    counts = torch.bincount(r.x[:, 0].long(), minlength=20)
    assert counts.min() > 20 and counts.max() < 90


def test_norm_tracker_summary():
    t = NormTracker()
    t.update(torch.cat([torch.ones(990), torch.full((10,), 100.0)]))
    s = t.summary()
    assert s["median"] == 1.0 and s["max"] == 100.0 and s["count"] == 1000
    assert s["mean"] == pytest.approx(1.99)


def test_merged_halves_equal_the_whole():
    """Statistics accumulated on two halves of the rows (two processes, two ranks) merge into those of all rows."""
    x, y, _, _ = synthetic(n=5000, noise=0.5)
    whole = stream(x, y)
    a, b = stream(x[:2300], y[:2300], batch=300), stream(x[2300:], y[2300:], batch=700)
    merged = MomentStats(x.shape[1], y.shape[1]).merge(a).merge(b)
    assert merged.n == whole.n
    for name in ("mean_x", "mean_y", "cxx", "cxy", "cyy"):
        torch.testing.assert_close(getattr(merged, name), getattr(whole, name), rtol=1e-12, atol=1e-9)
    torch.testing.assert_close(solve_affine(merged)[0], solve_affine(whole)[0], rtol=1e-10, atol=1e-12)
    back = MomentStats.unpack(merged.pack(), x.shape[1], y.shape[1])       # the collective's wire format
    assert back.n == merged.n and torch.equal(back.cxy, merged.cxy)
    with pytest.raises(ValueError, match="cannot merge"):
        merged.merge(MomentStats(3, 4))


def _rank_stats(rank: int, world: int, port: int, out: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    x, y, _, _ = synthetic(n=3000, noise=0.5)
    s = stream(x[rank::world], y[rank::world]).all_reduce()
    from safetensors.torch import save_file

    save_file({"n": torch.tensor([s.n]), "cxy": s.cxy, "mean_x": s.mean_x}, f"{out}/rank{rank}.safetensors")
    dist.destroy_process_group()


def test_all_reduce_over_two_gloo_ranks_equals_one_process(tmp_path):
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    mp.spawn(_rank_stats, args=(2, port, str(tmp_path)), nprocs=2, join=True)
    x, y, _, _ = synthetic(n=3000, noise=0.5)
    whole = stream(x, y)
    from safetensors.torch import load_file

    got = [load_file(tmp_path / f"rank{r}.safetensors") for r in range(2)]
    assert int(got[0]["n"]) == int(got[1]["n"]) == whole.n
    assert torch.equal(got[0]["cxy"], got[1]["cxy"])                 # every rank ends bit-identical
    torch.testing.assert_close(got[0]["cxy"], whole.cxy, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(got[0]["mean_x"], whole.mean_x, rtol=1e-12, atol=1e-12)


def test_ridge_chosen_on_held_out_rows_is_the_known_best():
    """Few noisy training rows in many dimensions: shrinkage helps, and the choice made from the moments is the
    ridge whose map has the best R² on the held-out rows computed directly; with plenty of clean rows, the least."""
    from lrt.maps.solve import RIDGE_GRID, select_ridge

    g = torch.Generator().manual_seed(3)
    d = 40
    A = torch.randn(d, d, generator=g, dtype=torch.float64) / d ** 0.5
    def rows(n, noise):
        x = torch.randn(n, d, generator=g, dtype=torch.float64) + 5
        return x, x @ A.T + noise * torch.randn(n, d, generator=g, dtype=torch.float64)
    xt, yt = rows(60, 3.0)
    xh, yh = rows(4000, 3.0)
    best, table = select_ridge(stream(xt, yt, 20), stream(xh, yh), RIDGE_GRID)
    direct = []
    for ridge in RIDGE_GRID:
        Ah, ph = solve_affine(stream(xt, yt, 20), ridge)
        pred = xh.float().double() @ Ah.T + ph
        direct.append(1 - ((yh.float().double() - pred) ** 2).sum() / ((yh - yh.mean(0)) ** 2).sum())
    assert best == RIDGE_GRID[int(torch.tensor(direct).argmax())] and best >= 1e-2
    assert [r["ridge"] for r in table] == list(RIDGE_GRID)
    xt, yt = rows(5000, 0.01)
    assert select_ridge(stream(xt, yt), stream(*rows(2000, 0.01)))[0] <= 1e-4
