#!/bin/bash
# The full-size upstream check of track.winograd_tile='auto' (F(4x4,3x3) on the convolutions of
# >= 512 input channels, F(2x2,3x3) below), against '2' (the earlier default), the direct
# convolution and float64: seeded weights of ../shared/upstream-check regenerated on this
# machine, upstream's trackers run on the same weights (torch 2.13 CPU, pysot and
# CLNet-tracking sources in /tmp/pysot and /tmp/clnet).
set -ex
S=/work/shared/upstream-check; O=/work/up; P=/work/main; PY=$P/.venv/bin/python; TPY=/work/torchvenv/bin/python
D=/work/shared/data/sequences/Dudek
mkdir -p $O/ours
cd $S
[ -f $O/r50.pth ] || $TPY make_r50_weights.py $O/r50.pth
[ -f $O/pysot.txt ] || $TPY pysot_side.py $O/r50.pth $D $O/pysot
for F in 0 1; do for X in 0 1; do
  N=$O/clnet_$([ $F = 1 ] && echo fix || echo off)$([ $X = 1 ] && echo 64 || echo 32)
  [ -f $N.pth ] || [ ! -f $O/clnet_off32.pth ] || cp $O/clnet_off32.pth $N.pth  # one set of weights
  [ -f $N.txt ] || CLNET=/tmp/clnet FIXED=$F F64=$X $TPY clnet_r50_check.py $O/r50.pth $N
done; done
cd $P
[ -d $O/r50_ck ] || $PY -m clnet_jax.commands.convert $O/r50.pth $O/r50_ck
[ -d $O/clnet_ck ] || $PY -m clnet_jax.commands.convert $O/clnet_off32.pth $O/clnet_ck
OFF='"clnet.label_sampler": "official_numpy", "clnet.label_layout": "official"'
FIX='"clnet.label_sampler": "official_numpy"'
for T in auto 2; do
  $PY $S/jax_side.py $O/r50_ck $D $O/ours/siam_t$T configs/siamrpn_r50.py "{\"track.winograd_tile\": \"$T\"}"
done
$PY $S/jax_side.py $O/r50_ck $D $O/ours/siam_xla configs/siamrpn_r50.py '{"track.winograd": "off"}'
JAX_ENABLE_X64=1 $PY $S/jax_side.py $O/r50_ck $D $O/ours/siam_f64 configs/siamrpn_r50.py '{"track.compute_dtype": "float64"}'
for L in off fix; do
  [ $L = off ] && X=$OFF || X=$FIX
  for T in auto 2; do
    $PY $S/jax_side.py $O/clnet_ck $D $O/ours/${L}_t$T configs/clnet_r50.py "{$X, \"track.winograd_tile\": \"$T\"}"
  done
  JAX_ENABLE_X64=1 $PY $S/jax_side.py $O/clnet_ck $D $O/ours/${L}_f64 configs/clnet_r50.py "{$X, \"track.compute_dtype\": \"float64\"}"
done
echo ALLDONE
