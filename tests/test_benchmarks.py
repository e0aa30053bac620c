"""The benchmark helpers that turn timings into figures (the timings themselves are not tested)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from benchmarks import common


def test_model_flops_counts_convs_and_matmuls_exactly():
    def f(x, w_dense, w_depth, m):
        y = jax.lax.conv_general_dilated(x, w_dense, (1, 1), "VALID",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        y = jax.lax.conv_general_dilated(y, w_depth, (1, 1), "VALID", feature_group_count=8,
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))

        def body(c, _):
            return c @ m, None
        z, _ = jax.lax.scan(body, y.reshape(-1, 8), None, length=3)
        return jnp.sum(z)

    x = jnp.ones((2, 10, 10, 4))
    w_dense, w_depth, m = jnp.ones((3, 3, 4, 8)), jnp.ones((3, 3, 1, 8)), jnp.ones((8, 8))
    dense = 2 * (2 * 8 * 8 * 8) * (3 * 3 * 4)    # out elements × (kh·kw·cin)
    depth = 2 * (2 * 6 * 6 * 8) * (3 * 3 * 1)    # one input channel per group
    loop = 3 * 2 * (2 * 6 * 6 * 8) * 8           # 3 trips of a (72,8)@(8,8) product
    assert common.flops_of(jax.jit(f), x, w_dense, w_depth, m) == dense + depth + loop
    # XLA's cost analysis counts a loop body once (and on GPU misses cuDNN convolutions),
    # which is why the figures count from the jaxpr.
    assert common.xla_flops_of(jax.jit(f), x, w_dense, w_depth, m) < dense + depth + loop


def test_store_scale_track_lengths_hold_the_official_counts():
    from benchmarks import store_scale
    for tracks, records in store_scale.MIXTURE.values():
        n = store_scale.track_lengths(tracks // 100, records // 100, 0)
        assert len(n) == tracks // 100 and n.sum() == records // 100 and n.min() >= 1
    assert (store_scale.track_lengths(5, 5, 0) == 1).all()


@pytest.mark.slow
def test_store_scale_runs_end_to_end(tmp_path):
    """A tiny fraction: every store and listing row is written with its figures, and the
    stores hold the counts the rows report."""
    import json

    from benchmarks import store_scale
    out = tmp_path / "s.json"
    store_scale.main(["--fraction", "0.0005", "--workers", "2", "--batches", "2",
                      "--repeats", "1", "--dir", str(tmp_path / "w"), "--out", str(out)])
    rows = json.load(open(out))["rows"]
    stores = {r["store"]: r for r in rows if r["kind"] == "store"}
    assert set(stores) == {"reference", "mixture", *store_scale.MIXTURE}
    assert stores["reference"]["tracks"] == 10 and stores["reference"]["records"] == 6200
    parts = [stores[k] for k in store_scale.MIXTURE]
    assert stores["mixture"]["records"] == sum(p["records"] for p in parts)
    assert stores["coco"]["records"] == round(849_947 * 0.0005)
    for r in stores.values():
        assert r["startup_s"] > 0 and r["pairs_per_s_per_core"] > 0 and r["grain_workers"] >= 2
    listings = {r["dataset"]: r for r in rows if r["kind"] == "listing"}
    assert listings["imagenet_det"]["tracks"] > listings["imagenet_det"]["source_items"] * 0.99
    assert listings["coco"]["tracks"] < listings["coco"]["source_items"]  # crowd left out
    assert not (tmp_path / "w").exists()  # removed unless --keep


def test_vs_pysot_reports_the_median_ratio_and_its_spread_over_rounds():
    from benchmarks import vs_pysot
    rows = [{"ratio": r, "pysot_fps": p, "clnet_jax_fps": r * p, "max_box_diff_px": d}
            for r, p, d in ((1.25, 4.0, 1e-4), (1.0, 3.6, 2e-4), (1.3, 3.8, 1e-4), (1.2, 3.9, 3e-4),
                            (1.1, 4.1, 1e-4))]
    s = vs_pysot.ratio_summary(rows)
    assert s["rounds"] == 5 and s["median_ratio"] == 1.2
    assert (s["ratio_min"], s["ratio_max"]) == (1.0, 1.3)
    assert (s["ratio_q25"], s["ratio_q75"]) == (1.1, 1.25)
    assert s["pysot_fps_median"] == 3.9 and s["max_box_diff_px"] == 3e-4


def test_kernels_vs_torch_reports_gflops_and_the_ratio_to_torch():
    from benchmarks import kernels_vs_torch as kt
    s = kt.shapes(small=True)
    times = kt.run_jax(s)  # the real jitted kernels, tiny shapes
    assert set(times) == {"matmul", "conv"} and min(times.values()) > 0
    f = kt.flops(s)
    assert f == {"matmul": 2 * 64 ** 3, "conv": 2 * 9 * 9 * 16 * 32 * 9}
    rows = kt.rows_of({"torch": {"matmul": 1e-3, "conv": 2e-3},
                       "xla": {"matmul": 2e-3, "conv": 1e-3}}, s)
    by = {(r["kernel"], r["side"]): r for r in rows}
    assert by[("matmul", "xla")]["vs_torch"] == 0.5 and by[("conv", "xla")]["vs_torch"] == 2.0
    assert by[("matmul", "torch")]["gflops"] == round(f["matmul"] / 1e-3 / 1e9, 1)


def test_winograd_tiles_measures_every_r50_shape_and_totals_each_setting():
    from benchmarks import winograd_tiles as wt
    rows = wt.measure(iters=1, scale=32)  # the r50 shapes with channels / 32
    assert [r["where"] for r in rows] == [s[0] for s in wt.SHAPES]
    for r in rows:
        assert r["f2_rel_err"] < 1e-5 and r["f4_rel_err"] < 1e-4  # both compute the same conv
        assert r["auto_tile"] == 2  # 1024 / 32 channels: all below the wide bound
        assert r["fastest"] in ("direct", "f2", "f4") and min(r["direct_ms"], r["f2_ms"]) > 0
    tot = wt.frame_totals([dict(r, direct_ms=1.0, f2_ms=2.0, f4_ms=3.0, auto_tile=4 if i else 2)
                           for i, r in enumerate(rows)])
    count = sum(s[1] for s in wt.SHAPES)
    assert (tot["direct"], tot["f2"], tot["f4"]) == (count, 2 * count, 3 * count)
    assert tot["auto"] == 3 * count - wt.SHAPES[0][1]  # the first shape at F(2x2), the rest F(4x4)


def test_train_conv_paths_times_both_paths_of_every_training_convolution():
    """Both paths compute the same convolution and gradients; the step totals weigh each
    shape by what each phase runs (frozen: the forward pass alone)."""
    from benchmarks import train_conv_paths as tcp
    some = [tcp.SHAPES[i] for i in (1, 6, 10)]  # strided, dilated, a head's (channels / 32)
    rows = tcp.measure(pairs=1, iters=1, scale=32, shapes=some)
    assert [r["where"] for r in rows] == [s[0] for s in some]
    for r in rows:
        assert r["out_rel_err"] < 1e-5 and r["wgrad_rel_err"] < 1e-4
        assert min(r["xla_fwd_ms"], r["products_fwd_bwd_ms"]) > 0
    rows = [{"where": s[0], "per_step": s[1], "in": s[3] // 32} for s in tcp.SHAPES]
    assert not tcp.trains("s layer4 conv2 (blocks 1-2)", "epoch0")
    assert tcp.trains("s head conv_search", "epoch0") and tcp.trains("z layer2.0 conv2", "epoch10")
    assert not tcp.trains("s layer1 conv2", "epoch10")
    unit = [dict(r, xla_fwd_ms=1.0, xla_fwd_bwd_ms=3.0, products_fwd_ms=2.0,
                 products_fwd_bwd_ms=5.0) for r in rows]
    tot = tcp.step_totals(unit, bound=16)
    heads = sum(r["per_step"] for r in rows if "head" in r["where"])
    frozen10 = sum(r["per_step"] for r in rows if "layer1" in r["where"])
    count = sum(s[1] for s in tcp.SHAPES)
    assert tot["epoch0"]["xla"] == (count - heads) + 3 * heads
    assert tot["epoch10"]["products"] == 2 * frozen10 + 5 * (count - frozen10)
    wide = [r for r in unit if r["in"] >= 16]  # products there, XLA elsewhere
    assert tot["epoch10"]["bound"] == tot["epoch10"]["xla"] + sum(
        r["per_step"] * (1.0 if "layer1" in r["where"] else 2.0) for r in wide)


def test_train_step_profile_attributes_the_executed_operations(tmp_path):
    """Every operation the profiler saw is found in the compiled HLO with its kind, and the
    network part comes from the Flax module path in the op name."""
    from benchmarks import train_step_profile as tsp

    def f(x, w, m):
        y = jax.lax.conv_general_dilated(x, w, (1, 1), "VALID",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        z = jnp.tanh(y.reshape(-1, 8) @ m)
        return jnp.sum(z - jnp.mean(z, 0))

    args = (jnp.ones((2, 34, 34, 16)), jnp.ones((3, 3, 16, 8)), jnp.ones((8, 8)))
    compiled = jax.jit(jax.grad(f, argnums=(1, 2))).lower(*args).compile()
    table = tsp.hlo_instructions(compiled.as_text())
    jax.block_until_ready(compiled(*args))
    with jax.profiler.trace(str(tmp_path), create_perfetto_trace=True):
        jax.block_until_ready(compiled(*args))
    times = tsp.trace_op_times(str(tmp_path))
    executed = {table[n][0] for n in times if n in table}
    assert {"convolution", "matrix product"} <= executed
    assert executed <= {"convolution", "matrix product", "reduction", "elementwise", "layout",
                        "container"}
    assert sum(s for n, s in times.items() if n in table) > 0
    assert tsp.part_of("jit(step)/jvp(SiamRPN)/SiamRPN.search_hidden/backbone/layer3_1/conv2") \
        == "layer3"
    assert tsp.part_of("jit(step)/transpose(jvp(SiamRPN))/SiamRPN.search_hidden/neck/x") == "neck"
    assert tsp.part_of("jit(step)/SiamRPN.template_kernels/rpn_2_cls/conv_kernel/c") == "heads"
    assert tsp.part_of("jit(step)/optax/sgd/mul") == "rest"


def test_train_grads_differences_skip_frozen_and_vanishing_leaves():
    """The gradient comparison against pysot: per network part, the largest difference
    relative to each leaf's largest reference gradient; leaves pysot does not train (zero)
    are left out, and leaves that vanish in exact arithmetic (below 1e-4 of the largest
    gradient) are listed apart instead of dividing rounding noise by itself."""
    from benchmarks import train_grads_vs_pysot as tg
    ref = {"['model']['backbone']['layer3_0']['conv1']['conv']['kernel']": np.array([2.0, -4.0]),
           "['model']['backbone']['layer1_0']['conv1']['conv']['kernel']": np.zeros(2),
           "['model']['neck_2']['bn']['bias']": np.array([3e-9, -1e-9]),
           "['model']['rpn_2_cls']['head0']['bn']['scale']": np.array([0.5, 0.25]),
           "['heads']['cls_weight']": np.array([1.0, 1.0, 1.0])}
    got = {"['model']['backbone']['layer3_0']['conv1']['conv']['kernel']": np.array([2.0, -3.6]),
           "['model']['backbone']['layer1_0']['conv1']['conv']['kernel']": np.array([7.0, 7.0]),
           "['model']['neck_2']['bn']['bias']": np.array([-5e-9, 2e-9]),
           "['model']['rpn_2_cls']['head0']['bn']['scale']": np.array([0.5, 0.2505]),
           "['heads']['cls_weight']": np.array([1.0, 1.0, 1.0])}
    d = tg.differences(got, ref)
    assert set(d["parts"]) == {"layer3", "rpn", "heads"}
    assert d["parts"]["layer3"] == {"leaves": 1, "max_rel": pytest.approx(0.1)}
    assert d["parts"]["rpn"]["max_rel"] == pytest.approx(1e-3)
    assert d["parts"]["heads"]["max_rel"] == 0.0
    assert d["vanishing_leaves"] == ["['model']['neck_2']['bn']['bias']"]
    assert d["worst_leaf"].endswith("['layer3_0']['conv1']['conv']['kernel']")
    assert d["max_rel"] == pytest.approx(0.1)


def test_synthetic_on_real_reads_built_bases_and_never_trains(tmp_path):
    """``synthetic_on_real`` scores the bases a testbed has built and nothing else: a seed
    without a finished base gives None and leaves the cache untouched; a finished one (its
    wall time beside its weights) is read back as saved."""
    import json
    import os

    from benchmarks import synthetic_on_real as sor
    from clnet_jax import config as config_lib
    from clnet_jax.experiments import cache
    from clnet_jax.io import checkpoint
    from clnet_jax.model import siamrpn
    cfg = config_lib.from_file("ablation:quick", {"ablation.bases_dir": str(tmp_path)})
    assert sor.cached_base(cfg, 0) is None
    assert not any(tmp_path.iterdir())
    params = jax.device_get(siamrpn.init_params(cfg, jax.random.key(3)))
    work = cache.base_dir(cfg, 1)
    checkpoint.save(os.path.join(work, "weights"), params, config_lib.arch_from_config(cfg))
    assert sor.cached_base(cfg, 1) is None  # weights without a wall time: not finished
    with open(cache.wall_path(work), "w") as f:
        json.dump(1.0, f)
    got = sor.cached_base(cfg, 1)
    for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(params)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("script,flag", [
    ("train_vs_pysot", "--rounds=0"), ("train_vs_pysot", "--steps=0"),
    ("train_vs_pysot", "--pairs=-1"), ("train_vs_pysot", "--warmup=-1"),
    ("vs_pysot", "--rounds=0"), ("export_check", "--rounds=0"), ("export_speed", "--rounds=0")])
def test_benchmarks_refuse_counts_that_would_fail_late(script, flag, monkeypatch, capsys):
    """A count that would end in an error after minutes of work (a median over no rounds,
    say) is refused at once by the script's own parser, before anything is measured."""
    import importlib
    mod = importlib.import_module(f"benchmarks.{script}")
    if hasattr(mod, "prepare_inputs"):
        monkeypatch.setattr(mod, "prepare_inputs", lambda args: pytest.fail("work started"))
    monkeypatch.setattr("sys.argv", [f"{script}.py", flag])
    with pytest.raises(SystemExit) as exc:
        mod.main()
    assert exc.value.code == 2
    assert flag.split("=")[0] in capsys.readouterr().err
