#!/bin/bash
# Full-size upstream check (../shared/upstream-check), SiamRPN++ and CLNet r50, float32 and float64.
set -x
S=/work/shared/upstream-check; O=/tmp/fullsize; T=/tmp/torchvenv/bin/python; P=/work/main
export PYSOT=/tmp/pysot CLNET=/tmp/clnet
cd $S
[ -f $O/r50.pth ] || $T make_r50_weights.py $O/r50.pth
$T pysot_side.py $O/r50.pth ../data/sequences/Dudek $O/pysot
FIXED=0 F64=0 $T clnet_r50_check.py $O/r50.pth $O/clnet_off32
for v in off64:0:1 fix32:1:0 fix64:1:1; do IFS=: read n f d <<< "$v"; cp $O/clnet_off32.pth $O/clnet_$n.pth; FIXED=$f F64=$d $T clnet_r50_check.py $O/r50.pth $O/clnet_$n; done
cd $P
python -m clnet_jax.io.convert $O/r50.pth $O/r50_ck
python -m clnet_jax.io.convert $O/clnet_off32.pth $O/clnet_ck
D=/work/shared/data/sequences/Dudek
OFF='"clnet.label_sampler": "official_numpy", "clnet.label_layout": "official"'
FIX='"clnet.label_sampler": "official_numpy"'
python $S/jax_side.py $O/r50_ck $D $O/ours_siam_wino configs/siamrpn_r50.py '{}'
python $S/jax_side.py $O/r50_ck $D $O/ours_siam_xla configs/siamrpn_r50.py '{"track.winograd": "off"}'
JAX_ENABLE_X64=1 python $S/jax_side.py $O/r50_ck $D $O/ours_siam_f64 configs/siamrpn_r50.py '{"track.compute_dtype": "float64"}'
for L in off fix; do
  [ $L = off ] && X=$OFF || X=$FIX
  python $S/jax_side.py $O/clnet_ck $D $O/ours_${L}_wino configs/clnet_r50.py "{$X}"
  python $S/jax_side.py $O/clnet_ck $D $O/ours_${L}_xla configs/clnet_r50.py "{$X, \"track.winograd\": \"off\"}"
  JAX_ENABLE_X64=1 python $S/jax_side.py $O/clnet_ck $D $O/ours_${L}_f64 configs/clnet_r50.py "{$X, \"track.compute_dtype\": \"float64\"}"
done
echo ALLDONE
