#!/bin/bash
# The full-size upstream check after the 1x1 convolutions became matrix products (model/conv.py):
# seeded weights of ../shared/upstream-check, regenerated (SiamRPN++: other BN statistics than on 2026-11-29; CLNet: the same).
# Weights, torch venv (torch 2.13 CPU), pysot and CLNet-tracking sources in /tmp:
#   python $S/make_r50_weights.py $O/r50.pth
#   CLNET=/tmp/clnet python $S/clnet_r50_check.py $O/r50.pth $O/clnet_r50
set -x
S=/work/shared/upstream-check; O=/work/up; P=/work/main; PY=$P/.venv/bin/python
cd $P
[ -d $O/r50_ck ] || $PY -m clnet_jax.commands.convert $O/r50.pth $O/r50_ck
[ -d $O/clnet_ck ] || $PY -m clnet_jax.commands.convert $O/clnet_r50.pth $O/clnet_ck
D=/work/shared/data/sequences/Dudek
OFF='"clnet.label_sampler": "official_numpy", "clnet.label_layout": "official"'
FIX='"clnet.label_sampler": "official_numpy"'
$PY $S/jax_side.py $O/r50_ck $D $O/ours/siam_wino configs/siamrpn_r50.py '{}'
$PY $S/jax_side.py $O/r50_ck $D $O/ours/siam_xla configs/siamrpn_r50.py '{"track.winograd": "off"}'
JAX_ENABLE_X64=1 $PY $S/jax_side.py $O/r50_ck $D $O/ours/siam_f64 configs/siamrpn_r50.py '{"track.compute_dtype": "float64"}'
for L in off fix; do
  [ $L = off ] && X=$OFF || X=$FIX
  $PY $S/jax_side.py $O/clnet_ck $D $O/ours/${L}_wino configs/clnet_r50.py "{$X}"
  $PY $S/jax_side.py $O/clnet_ck $D $O/ours/${L}_xla configs/clnet_r50.py "{$X, \"track.winograd\": \"off\"}"
  JAX_ENABLE_X64=1 $PY $S/jax_side.py $O/clnet_ck $D $O/ours/${L}_f64 configs/clnet_r50.py "{$X, \"track.compute_dtype\": \"float64\"}"
done
echo ALLDONE
# pysot on the same (regenerated) r50 weights, torch venv:
#   python $S/pysot_side.py $O/r50.pth $D $O/ours/pysot
