"""Training: parity of losses and gradients, multi-device equivalence, resume, NaN stop."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from clnet_jax.model import siamrpn as M
from clnet_jax.model import targets as T
from clnet_jax.train import step as TS
from clnet_jax.train import trainer
from conftest import PARITY, ROOT, assert_close, config, nhwc, stage_losses

TRAIN_CFG = os.path.join(ROOT, "tests", "configs", "train_tiny.py")
# the upstream r50 recipe's freezing rules on the tiny test config (which trains everything)
PYSOT_RULES = {"train.backbone_train_epoch": 10, "train.steps_per_epoch": 1,
               "train.backbone_train_layers": ["layer2", "layer3", "layer4"]}


def _group(g):
    return {"template": jnp.asarray(nhwc(g["train_template"])),
            "search": jnp.asarray(nhwc(g["train_search"]))}


def _base_loss(cfg, params, g, winograd_min_channels=0):
    net = M.model_from_config(cfg.model, winograd_min_channels=winograd_min_channels)
    tg = T.Targets(jnp.asarray(g["train_label_cls"], jnp.int32), jnp.asarray(g["train_label_loc"]),
                   jnp.asarray(g["train_label_loc_weight"]))
    trainable = {"model": params["model"]["params"], "heads": params["heads"]}

    def loss(tr):
        return TS.base_group_loss(cfg, net, tr, params["model"]["batch_stats"], _group(g), tg,
                                  train_bn=False)
    return jax.jit(jax.value_and_grad(loss, has_aux=True))(trainable)


@pytest.mark.parametrize("winograd_min_channels", [0, 1])
def test_base_loss_and_gradients_match_upstream(golden, tiny_params, winograd_min_channels):
    """Also with every 3x3 convolution of the backbone and heads as matrix products (1: the
    CPU training path, which r50 takes for its wide ones): stride 1 as Winograd products,
    strided ones as products of strided slices, differentiated through."""
    g = golden["siamrpn_tiny"]
    cfg = config("train_tiny")
    (total, (aux, _)), grads = _base_loss(cfg, tiny_params, g, winograd_min_channels)
    assert_close(total, g["train_total_loss"], "total")
    assert_close(aux["cls_loss"], g["train_cls_loss"], "cls")
    assert_close(aux["loc_loss"], g["train_loc_loss"], "loc")
    to_torch = lambda k: np.transpose(np.asarray(k), (3, 2, 0, 1))
    assert_close(grads["heads"]["cls_weight"], g["grad/rpn_head.cls_weight"])
    assert_close(np.asarray(grads["heads"]["rpn2"]["cls"]["w"]).T[:, :, None, None],
                 g["grad/rpn_head.rpn2.cls.head.3.weight"])
    assert_close(grads["heads"]["rpn4"]["loc"]["b"], g["grad/rpn_head.rpn4.loc.head.3.bias"])
    assert_close(to_torch(grads["model"]["neck_3"]["conv"]["kernel"]),
                 g["grad/neck.downsample3.downsample.0.weight"])
    layer4 = to_torch(grads["model"]["backbone"]["layer4_1"]["conv2"]["conv"]["kernel"])
    if winograd_min_channels == 0:
        assert_close(layer4, g["grad/backbone.layer4.1.conv2.weight"])
    else:
        # This leaf jumps with float32 rounding: scaling the crops by 1 + 1e-7 moves XLA's
        # own path by 1.7e-4 here (a ReLU tie behind the heads flips), and so does any other
        # summation order in the heads; the float64 test below checks the products exactly.
        assert np.abs(layer4 - g["grad/backbone.layer4.1.conv2.weight"]).max() < 5e-4
    # The stem's weight gradient flips with float32 rounding (max-pool / ReLU ties move
    # when parameters change by 1e-7 relative, shifting it by ~4e-3): float32 gets a
    # bound of that size here, and the float64 test below checks it at the tolerance.
    err = np.abs(to_torch(grads["model"]["backbone"]["stem"]["conv"]["kernel"])
                 - g["grad/backbone.conv1.weight"]).max()
    assert err < 5e-3


def test_matrix_product_convolutions_give_xla_gradients_in_float64(golden, tiny_params):
    """The CPU training path (every 3x3 convolution as Winograd or strided-slice products)
    and XLA's convolutions give the same loss and gradients, leaf by leaf, to float64
    rounding: the two formulations are the same sums."""
    g = golden["siamrpn_tiny"]
    with jax.enable_x64(True):
        p = jax.tree.map(lambda a: np.asarray(a, np.float64), tiny_params)
        g64 = {k: (v.astype(np.float64) if k.startswith(("train_search", "train_template"))
                   else v) for k, v in g.items()}
        (l0, _), g0 = _base_loss(config("train_tiny"), p, g64, 0)
        (l1, _), g1 = _base_loss(config("train_tiny"), p, g64, 1)
    assert np.asarray(l0).dtype == np.float64 and abs(float(l0) - float(l1)) < 1e-12
    for a, b in zip(jax.tree.leaves(g0), jax.tree.leaves(g1)):
        a, b = np.asarray(a), np.asarray(b)
        assert np.abs(a - b).max() <= 1e-12 * max(1.0, np.abs(a).max())


def test_stem_gradient_matches_upstream_in_float64(golden, weights_dir):
    code = textwrap.dedent(f"""
        import jax; jax.config.update('jax_enable_x64', True)
        import numpy as np, sys
        sys.path[:0] = [{os.path.join(ROOT, 'tests')!r}, {os.path.join(ROOT, 'tests', 'train')!r}]
        from test_train import _base_loss
        from conftest import config, assert_close
        from clnet_jax.track import runner
        p = runner.load_params(config('siamrpn_tiny'), {weights_dir['siamrpn']!r})
        p = jax.tree.map(lambda a: np.asarray(a, np.float64), p)
        g = dict(np.load({os.path.join(PARITY, 'siamrpn_tiny.npz')!r}))
        crop = lambda k: k.startswith('train_search') or k.startswith('train_template')
        g = {{k: (v.astype(np.float64) if crop(k) else v) for k, v in g.items()}}
        (_, _), grads = _base_loss(config('train_tiny'), p, g)
        k = np.transpose(np.asarray(grads['model']['backbone']['stem']['conv']['kernel']), (3, 2, 0, 1))
        assert_close(k, g['grad/backbone.conv1.weight'], 'stem')
        # pysot's epoch-10 rules: the first trainable layer's gradient, in float64, is within
        # 1.5e-4 of the float32 reference (whose own rounding error is of that size: our
        # float32 with float64 BN sums lands 1.09e-4 from it, 2.5e-5 from float64)
        from clnet_jax.model import siamrpn as M
        from clnet_jax.model import targets as T
        from clnet_jax.train import step as TS
        from test_train import _group
        ref = np.load({os.path.join(PARITY, 'siamrpn_tiny_train.npz')!r})
        cfg = config('train_tiny', **{PYSOT_RULES!r})
        tg = T.Targets(np.asarray(g['train_label_cls'], np.int32), g['train_label_loc'],
                       g['train_label_loc_weight'])
        tr = {{'model': p['model']['params'], 'heads': p['heads']}}
        gr = jax.grad(lambda t: TS.base_group_loss(cfg, M.model_from_config(cfg.model), t,
                      p['model']['batch_stats'], _group(g), tg, True,
                      TS.backbone_train_layers(cfg, 10))[0])(tr)
        k = np.asarray(gr['model']['backbone']['layer2_0']['conv1']['conv']['kernel'])
        k = np.transpose(k, (3, 2, 0, 1))
        err = np.abs(k - ref['epoch10/grad/backbone.layer2.0.conv1.weight']).max()
        assert err < 1.5e-4, err
        print('ok', err)
    """)
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         env=dict(os.environ, PYTHONPATH=ROOT))
    assert out.returncode == 0 and "ok" in out.stdout, out.stderr[-2000:]


@pytest.mark.parametrize("name", ["clnet_tiny", "clnet_tiny_fixed"])
def test_clnet_stage_loss_mining_and_gradients_match_official(golden, clnet_params, name):
    g = golden[name]
    cfg = config("train_tiny")
    net = M.model_from_config(cfg.model)
    p = clnet_params
    tg = T.Targets(jnp.asarray(g["train_label_cls_sampled"], jnp.int32),
                   jnp.asarray(g["train_label_loc"]), jnp.asarray(g["train_label_loc_weight"]))
    trainable = {"gen": p["clnet"]["params"],
                 "fusion": {k: p["heads"][k] for k in ("cls_weight", "loc_weight")}}
    frozen = {"model": p["model"], "heads": p["heads"], "gen_stats": p["clnet"]["batch_stats"]}
    group = _group(g)
    (total, (aux, _)), grads = jax.value_and_grad(
        lambda t: TS.clnet_group_loss(cfg, net, t, frozen, group, tg), has_aux=True)(trainable)
    hidden = net.apply(p["model"], group["template"].astype(jnp.float32),
                       group["search"].astype(jnp.float32))
    cls0, _ = M.rpn_outputs(p["heads"], hidden)
    np.testing.assert_array_equal(np.asarray(TS.mined_labels(tg.labels, cls0, 16)),
                                  g["train_label_cls"])
    assert_close(total, g["train_out_loop_loss"], "loss")
    assert_close(aux["cls_loss"], g["train_cls_loss"], "cls")
    assert_close(aux["loc_loss"], g["train_loc_loss"], "loc")
    for level in ("rpn2", "rpn4"):
        for b in ("cls", "loc"):
            gen = grads["gen"][level][b]
            enc = np.asarray(gen["encoder"]["block1"]["conv"]["kernel"])[0, 0].T
            assert_close(enc, g[f"grad/rpn_head.{level}.{b}.encoder.encoder_mu.conv1x1.0.weight"][:, :, 0, 0])
            assert_close(np.asarray(gen["decoder"]["fc3"]).T,
                         g[f"grad/rpn_head.{level}.{b}.decoder.decoder_mu.deconv2.0.weight"][:, :, 0, 0])


def test_learning_rate_schedule_has_upstream_shape():
    cfg = config("siamrpn_r50")
    lr = TS.epoch_learning_rates(cfg.train.base)
    assert len(lr) == 20
    np.testing.assert_allclose(lr[0], 0.001, rtol=1e-6)
    np.testing.assert_allclose(lr[5], 0.005, rtol=1e-6)
    np.testing.assert_allclose(lr[-1], 0.0005, rtol=1e-6)
    assert np.all(np.diff(lr[:5]) > 0) and np.all(np.diff(lr[5:]) < 0)


def _run_train(workdir, *extra, timeout=600):
    cmd = [sys.executable, "train.py", f"--config={TRAIN_CFG}", f"--workdir={workdir}", *extra]
    return subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, PYTHONPATH=ROOT))


def _losses(workdir):
    return [(int(s), float(v)) for s, v in stage_losses(workdir, "base")]


@pytest.mark.slow
def test_sigkill_then_resume_gives_the_same_losses(tmp_path, tiny_data):
    ref = tmp_path / "ref"
    out = _run_train(str(ref), f"--config.data.data_dir={tiny_data}")
    assert out.returncode == 0, out.stderr[-3000:]
    full = _losses(str(ref))
    assert [s for s, _ in full] == list(range(1, 9))
    assert os.path.isfile(ref / "base" / "weights" / "arch.json")
    run = tmp_path / "run"
    cmd = [sys.executable, "train.py", f"--config={TRAIN_CFG}", f"--workdir={run}",
           f"--config.data.data_dir={tiny_data}"]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=dict(os.environ, PYTHONPATH=ROOT),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    ckpt = run / "base" / "ckpt"
    deadline = time.time() + 300
    while time.time() < deadline and not (ckpt / "4").is_dir():
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert (ckpt / "4").is_dir()
    assert not (run / "base" / "weights").exists()  # really interrupted
    # resumed with 2 grain worker processes: the saved position gives the same batches
    out = _run_train(str(run), f"--config.data.data_dir={tiny_data}", "--config.data.workers=2")
    assert out.returncode == 0, out.stderr[-3000:]
    assert "resumed base from step" in out.stdout + out.stderr
    resumed = _losses(str(run))
    assert [s for s, _ in resumed] == [s for s, _ in full]
    np.testing.assert_allclose([l for _, l in resumed], [l for _, l in full], rtol=1e-5)


@pytest.mark.slow
def test_nan_loss_stops_with_message_and_keeps_checkpoints(tmp_path, tiny_data):
    out = _run_train(str(tmp_path / "nan"), f"--config.data.data_dir={tiny_data}",
                     "--config.train.base.lr=1e30", "--config.train.base.warmup_start_lr=1e30",
                     "--config.train.base.lr_end=1e30", "--config.train.grad_clip=1e30")
    assert out.returncode != 0
    said = (out.stderr + out.stdout).lower()
    assert "loss is nan" in said or "loss is inf" in said
    assert "Checkpoints are intact" in out.stderr + out.stdout
    ckpts = [d for d in os.listdir(tmp_path / "nan" / "base" / "ckpt") if d.isdigit()]
    assert ckpts  # the good ones before the NaN remain


def test_unknown_config_key_is_refused_with_valid_names(tmp_path):
    out = _run_train(str(tmp_path / "x"), "--config.train.no_such_key=1", timeout=120)
    assert out.returncode != 0
    assert "no_such_key" in out.stderr and "valid keys there" in out.stderr
    assert "steps_per_epoch" in out.stderr  # the valid names are listed


MULTI = textwrap.dedent("""
    import os, sys, json
    os.environ['XLA_FLAGS'] = '--xla_force_host_platform_device_count=2'
    import jax, numpy as np
    from jax.sharding import Mesh
    sys.path.insert(0, ROOT)
    from clnet_jax import config as C
    from clnet_jax.model import siamrpn as M
    from clnet_jax.train import step as TS
    from clnet_jax.train import trainer
    from clnet_jax.data import pipeline
    assert len(jax.devices()) == 2
    out = {}
    for stage, variant in (('base', 'clnet'), ('clnet', 'clnet'), ('clnet', 'meta_sgd'),
                           ('clnet', 'maml'), ('clnet', 'clnet_sgd')):
        c = C.from_file(CFG, {'data.data_dir': DATA, f'train.{stage}.groups_per_batch': 4,
                              'clnet.variant': variant, 'clnet.meta_steps': 2})
        params = M.init_params(c, jax.random.key(0))
        stores, samples = trainer.train_source(c)
        batch = next(pipeline.make_iterator(stores, c, 0, 4, 1, samples=samples,
                                            pairs_per_group=c.train[stage].pairs_per_group))
        batch.pop('skipped')
        res = []
        for devs in (jax.devices()[:1], jax.devices()):
            step = TS.make_train_step(c, stage, Mesh(np.array(devs), ('data',)))
            state, aux = step(TS.init_state(c, stage, params, 0), batch)
            res.append((jax.device_get(state['trainable']), float(aux['loss'])))
        (p1, l1), (p2, l2) = res
        diffs = [float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(a)))))
                 for a, b in zip(jax.tree.leaves(p1), jax.tree.leaves(p2))]
        out[stage + '/' + variant] = {'loss1': l1, 'loss2': l2, 'max_rel_diff': max(diffs)}
    print(json.dumps(out))
""")


@pytest.mark.slow
def test_one_step_on_two_devices_equals_one_device(tiny_data):
    """Both stages, and the CLNet stage of every trainable family (the meta-learned
    variants differentiate through their inner loop on each device's groups)."""
    code = f"ROOT={ROOT!r}; CFG={TRAIN_CFG!r}; DATA={tiny_data!r}\n" + MULTI
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    res = json.loads(out.stdout.strip().splitlines()[-1])
    for stage, r in res.items():
        assert abs(r["loss1"] - r["loss2"]) <= 1e-5 * max(1, abs(r["loss1"])), (stage, r)
        assert r["max_rel_diff"] < 1e-5, (stage, r)


def _torch_names(pth_name):
    """Our parameter paths -> upstream names, through the converter's own mapping."""
    from clnet_jax.io import convert
    from clnet_jax.io.pth import flatten_state_dict, load_pth
    sd = flatten_state_dict(load_pth(os.path.join(PARITY, pth_name)))
    names = {}
    for key, value in sd.items():
        r = convert.map_key(key, np.asarray(value))
        if r not in (None, "skip"):
            coll, path, _ = r
            names[(coll,) + tuple(path)] = key
    return names


def _paths(tree, prefix=()):
    if isinstance(tree, dict):
        for k, v in tree.items():
            yield from _paths(v, prefix + (k,))
    else:
        yield prefix, tree


# the optimiser flow of tests/golden/make_pysot_sgd.py: one epoch per step, layer2 from step 2
SGD_RULES = {"train.steps_per_epoch": 1, "train.backbone_train_epoch": 2,
             "train.backbone_train_layers": ["layer2"], "train.backbone_lr_mult": 0.1,
             "train.weight_decay": 0.1, "train.momentum": 0.9, "train.grad_clip": 10.0,
             "train.optimizer": "sgd", "train.base.epochs": 4, "train.base.warmup_epochs": 1,
             "train.base.warmup_start_lr": 0.1, "train.base.lr": 0.5, "train.base.lr_end": 0.05}


def test_base_optimizer_follows_pysot_sgd_across_the_backbone_switch():
    """torch's SGD in pysot's flow (tests/golden/pysot_sgd.npz): before the switch the
    backbone keeps its values bit for bit (no update, no weight decay); at the switch every
    momentum buffer restarts, the neck's and heads' too (pysot builds a new optimiser), and
    layer2 trains at lr × 0.1; the stem never moves; the clip acts on step 1."""
    ref = np.load(os.path.join(PARITY, "pysot_sgd.npz"))
    cfg = config("train_tiny", **SGD_RULES)
    np.testing.assert_allclose(TS.epoch_learning_rates(cfg.train.base), ref["rates"], rtol=1e-6)
    to_tree = lambda get: {"model": {"backbone": {"layer2_0": {"w": get("layer2")},
                                                  "stem": {"w": get("stem")}},
                                     "neck_2": {"w": get("neck")}},
                           "heads": {"head": get("head")}}
    params = to_tree(lambda k: jnp.asarray(ref[f"init/{k}"]))
    opt = TS.make_optimizer(cfg, "base")
    opt_state = opt.init(params)
    restart = TS.restart_step(cfg, "base")
    assert restart == 2 and TS.restart_step(cfg, "clnet") is None
    update = jax.jit(lambda g, st, p, i: opt.update(
        g, TS.restart_momentum(st, i == restart), p))
    for step in range(4):
        grads = to_tree(lambda k: jnp.asarray(ref[f"grad/{step}/{k}"]))
        updates, opt_state = update(grads, opt_state, params, step)
        params = jax.tree.map(lambda p, u: p + u, params, updates)
        ours = {"layer2": params["model"]["backbone"]["layer2_0"]["w"],
                "stem": params["model"]["backbone"]["stem"]["w"],
                "neck": params["model"]["neck_2"]["w"], "head": params["heads"]["head"]}
        for k, v in ours.items():
            np.testing.assert_allclose(v, ref[f"after/{step}/{k}"], rtol=2e-6, atol=1e-7,
                                       err_msg=f"step {step}: {k}")
        if step < restart:
            assert np.array_equal(ours["layer2"], ref["init/layer2"]), step
    assert np.array_equal(ours["stem"], ref["init/stem"])


def test_step_keeps_the_frozen_backbone_and_restarts_momentum_at_the_switch(tiny_data):
    """The jitted step itself: before the backbone epoch the backbone's parameters come back
    bit for bit; the program of the backbone phase clears the momentum at the switch step."""
    from jax.sharding import Mesh

    from clnet_jax.data import pipeline
    cfg = config("train_tiny", **{**PYSOT_RULES, "train.backbone_train_epoch": 1,
                                  "data.data_dir": tiny_data})
    params = M.init_params(cfg, jax.random.key(0))
    stores, samples = trainer.train_source(cfg)
    batch = next(pipeline.make_iterator(stores, cfg, 0, 2, 1, samples=samples))
    batch.pop("skipped")
    step = TS.make_train_step(cfg, "base", Mesh(np.array(jax.devices()[:1]), ("data",)))
    state0 = TS.init_state(cfg, "base", params, 0)
    state1, _ = step(state0, batch, 0)
    same = jax.tree.map(lambda a, b: bool(np.array_equal(a, b)),
                        state0["trainable"]["model"]["backbone"],
                        state1["trainable"]["model"]["backbone"])
    assert all(jax.tree.leaves(same))
    assert not all(np.array_equal(a, b) for a, b in zip(
        jax.tree.leaves(state0["trainable"]["heads"]), jax.tree.leaves(state1["trainable"]["heads"])))
    # step 1 is the switch: the same as stepping with the momentum cleared beforehand
    cleared = dict(state1, opt_state=TS.restart_momentum(state1["opt_state"], True))
    assert any(np.any(np.asarray(a) != 0) for a in jax.tree.leaves(state1["opt_state"])
               if np.issubdtype(a.dtype, np.floating))  # momentum to clear
    a, _ = step(state1, batch, 1)
    b, _ = step(cleared, batch, 1)
    for x, y in zip(jax.tree.leaves(a["trainable"]), jax.tree.leaves(b["trainable"])):
        assert np.array_equal(x, y)


@pytest.mark.parametrize("case,epoch", [("epoch0", 0), ("epoch10", 10)])
def test_base_step_follows_pysot_bn_and_freezing_rules(golden, tiny_params, case, epoch):
    """pysot's build_opt_lr: frozen layers in BN inference mode, trainable ones on the
    batch's statistics; losses, gradients, the trainable set and running statistics."""
    g, ref = golden["siamrpn_tiny"], golden["siamrpn_tiny_train"]
    cfg = config("train_tiny", **PYSOT_RULES)
    layers = TS.backbone_train_layers(cfg, epoch)
    assert layers == (frozenset() if epoch == 0 else frozenset({"layer2", "layer3", "layer4"}))
    net = M.model_from_config(cfg.model)
    tg = T.Targets(jnp.asarray(g["train_label_cls"], jnp.int32), jnp.asarray(g["train_label_loc"]),
                   jnp.asarray(g["train_label_loc_weight"]))
    trainable = {"model": tiny_params["model"]["params"], "heads": tiny_params["heads"]}
    stats = tiny_params["model"]["batch_stats"]
    (total, (aux, new_stats)), grads = jax.value_and_grad(
        lambda tr: TS.base_group_loss(cfg, net, tr, stats, _group(g), tg, True, layers),
        has_aux=True)(trainable)
    assert_close(total, ref[f"{case}/total_loss"], "total")
    assert_close(aux["cls_loss"], ref[f"{case}/cls_loss"], "cls")
    assert_close(aux["loc_loss"], ref[f"{case}/loc_loss"], "loc")
    names = _torch_names("siamrpn_tiny.pth")
    by_name = {names[("params",) + p[1:]] if p[0] == "model" else names[("heads",) + p[1:]]: v
               for p, v in _paths({"model": grads["model"], "heads": grads["heads"]})}
    for key in ref.files:
        if key.startswith(f"{case}/grad/"):
            name = key[len(f"{case}/grad/"):]
            ours = np.asarray(by_name[name])
            if ours.ndim == 4:
                ours = np.transpose(ours, (3, 2, 0, 1))
            elif name.endswith("head.3.weight"):
                ours = ours.T[:, :, None, None]
            if name == "backbone.layer2.0.conv1.weight":
                # float32 rounding in the batch-statistics BN backward (torch accumulates BN
                # sums in double on the CPU) moves this one by ~1e-3; float64 below
                assert np.abs(ours - ref[key]).max() < 2e-3, name
                continue
            assert_close(ours, ref[key], name)
    # the optimiser's groups: exactly pysot's trainable set
    labels = TS.base_param_labels(cfg, trainable)
    trained = {n for p, lab in _paths({"model": labels["model"], "heads": labels["heads"]})
               for n in [names[("params",) + p[1:]] if p[0] == "model" else names[("heads",) + p[1:]]]
               if lab == "rest" or (lab == "backbone" and epoch >= 10)}
    assert trained == set(map(str, ref[f"{case}/trainable"]))
    # and only that set gets a gradient: the frozen layers' is exactly zero (no backward pass
    # through them), so that gradient clipping measures the norm over pysot's set alone
    for n, v in by_name.items():
        assert n in trained or not np.any(np.asarray(v)), n
    # running statistics move only where BN trains (unbiased variance, momentum 0.1)
    stat_names = {names[("batch_stats",) + p]: v for p, v in _paths(new_stats)}
    for key in ref.files:
        if key.startswith(f"{case}/bn/"):
            name = key[len(f"{case}/bn/"):]
            assert_close(stat_names[name], ref[key], name)


def test_clnet_stage_trains_exactly_the_official_parameters(clnet_params):
    """Official CLNet training: encoders and decoders only; the base fusion weights stay
    frozen (only their per-video change is predicted); training them is an explicit option."""
    from clnet_jax.io.pth import flatten_state_dict, load_pth
    cfg = config("train_tiny")
    state = TS.init_state(cfg, "clnet", jax.device_get(clnet_params), 0)
    names = _torch_names("clnet_tiny.pth")
    trained = {names[("clnet_params",) + p] for p, _ in _paths(state["trainable"]["gen"])}
    sd = flatten_state_dict(load_pth(os.path.join(PARITY, "clnet_tiny.pth")))
    official = {k for k in sd if (".encoder." in k or ".decoder." in k)
                and not k.endswith(("running_mean", "running_var", "num_batches_tracked"))}
    assert set(state["trainable"]) == {"gen"} and trained == official
    out = TS.params_from_state(state, "clnet")
    np.testing.assert_array_equal(out["heads"]["cls_weight"], clnet_params["heads"]["cls_weight"])
    research = TS.init_state(config("train_tiny", **{"clnet.train_fusion": True}), "clnet",
                             jax.device_get(clnet_params), 0)
    assert set(research["trainable"]) == {"gen", "fusion"}


def test_resuming_a_workdir_of_other_settings_is_refused(tmp_path):
    """A checkpoint is resumed only under the settings that wrote it (paths, logging and
    loader parallelism may change); anything else is a clear error that deletes nothing."""
    from clnet_jax import config as config_lib
    from clnet_jax.train import trainer
    cfg = config_lib.from_file(TRAIN_CFG)
    trainer._record_settings(cfg, "base", str(tmp_path))
    same = cfg.copy_and_resolve_references()
    same.data.workers, same.train.log_every, same.train.init_checkpoint = 2, 1, "elsewhere"
    same.track.window_influence = 0.3  # tracking time only
    trainer.check_resumable(same, "base", str(tmp_path))
    same.clnet.sgd_steps = 9  # the base stage does not read clnet settings
    trainer.check_resumable(same, "base", str(tmp_path))
    other = cfg.copy_and_resolve_references()
    other.track.instance_size = 175
    other.train.base.lr = 0.5
    with pytest.raises(ValueError, match=r"other settings .*track.instance_size.*train.base.lr"):
        trainer.check_resumable(other, "base", str(tmp_path))
    assert os.path.isfile(tmp_path / "run_settings.json")


def test_a_record_of_another_schema_is_refused_naming_the_key(tmp_path):
    """run_settings.json written by a version whose config lacked a key (or had one this
    one lacks) is another run: refused, naming the key, whatever its value."""
    from clnet_jax import config as config_lib
    from clnet_jax.train import trainer
    cfg = config_lib.from_file(TRAIN_CFG)
    trainer._record_settings(cfg, "base", str(tmp_path))
    path = tmp_path / "run_settings.json"
    saved = json.loads(path.read_text())
    del saved["train.optimizer"]
    saved["train.clnet_epochs"] = 0
    path.write_text(json.dumps(saved))
    with pytest.raises(ValueError, match=r"train.clnet_epochs: checkpoint 0 vs config None.*"
                                         r"train.optimizer: checkpoint None vs config 'sgd'"):
        trainer.check_resumable(cfg, "base", str(tmp_path))


def test_adamw_option_steps_differently_and_unknown_names_are_refused():
    from clnet_jax import config as config_lib
    cfg = config_lib.from_file(TRAIN_CFG)
    tree = {"heads": {"w": jnp.ones(3)}, "model": {"neck": {"w": jnp.ones(2)}}}
    grads = jax.tree.map(lambda x: 0.1 * x, tree)

    def first_update(c):
        opt = TS.make_optimizer(c, "clnet")
        return opt.update(grads, opt.init(tree), tree)[0]
    sgd = first_update(cfg)
    cfg.train.optimizer = "adamw"
    adam = first_update(cfg)
    lr = float(TS.epoch_learning_rates(cfg.train.clnet)[0])
    # Adam's first step is lr * sign(g) (plus decoupled decay), SGD's lr * (g + wd * w)
    np.testing.assert_allclose(adam["heads"]["w"], -lr * (1 + cfg.train.weight_decay), rtol=1e-3)
    assert not np.allclose(sgd["heads"]["w"], adam["heads"]["w"])
    cfg.train.optimizer = "lamb"
    with pytest.raises(ValueError, match="train.optimizer='lamb': choose one of sgd, adamw"):
        config_lib.validate(cfg)


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["meta_sgd", "clnet_sgd"])
def test_meta_variant_clnet_stage_resumes_exactly(tmp_path, tiny_data, variant):
    """A meta-learned CLNet stage stopped at step 4 and resumed gives the loss column and
    the weights of an uninterrupted run."""
    import csv
    cfg = config("train_tiny", **{"data.data_dir": tiny_data, "clnet.variant": variant,
                                  "clnet.meta_steps": 2})
    params = jax.device_get(M.init_params(cfg, jax.random.key(0)))

    def losses(d):
        with open(os.path.join(d, "metrics.csv")) as f:
            return [(int(r["step"]), float(r["loss"])) for r in csv.DictReader(f)]

    full = trainer.train_stage(cfg, "clnet", str(tmp_path / "full"), params)
    part = str(tmp_path / "part")
    trainer.train_stage(cfg, "clnet", part, params, max_steps=4)
    resumed = trainer.train_stage(cfg, "clnet", part, params)
    a, b = losses(str(tmp_path / "full")), losses(part)
    assert [s for s, _ in b] == [s for s, _ in a] == list(range(1, 9))
    np.testing.assert_allclose([l for _, l in b], [l for _, l in a], rtol=1e-6)
    for x, y in zip(jax.tree.leaves(full["clnet"]), jax.tree.leaves(resumed["clnet"])):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-6, atol=1e-8)
