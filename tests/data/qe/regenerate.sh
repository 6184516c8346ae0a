#!/bin/bash
# Regenerates the pw.x runs of this folder in a scratch folder: ./regenerate.sh [WORKDIR] [CASE...]
# Needs the Debian packages quantum-espresso (pw.x 6.7) and quantum-espresso-data (pseudopotentials).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
work=${1:-/tmp/dpp-qe}
shift || true
cases=${*:-si si_a098 si_a102 si_soc si_hex alas alas_a098 alas_a102 gaas gaas_a098 gaas_a102 gan_wz gan_wz_a098 gan_wz_a102 gan_zb}
mkdir -p "$work/pp"
cp /usr/share/espresso/pseudo/{Si.pz-vbc.UPF,Si.rel-pbe-rrkj.UPF,Al.pz-vbc.UPF,As.pz-bhs.UPF} "$work/pp/"
for p in Ga_ONCV_LDA-1.0 N_ONCV_LDA-1.0; do
  zcat "/usr/share/doc/quantum-espresso/examples/EPW/gan/pp/$p.upf.gz" > "$work/pp/$p.upf"
done
export OMP_NUM_THREADS=1
for name in $cases; do
  mkdir -p "$work/$name"
  cp "$here/$name/scf.in" "$here/$name/bands.in" "$work/$name/"
  (cd "$work/$name" && pw.x -nk 1 -in scf.in > scf.pwo && pw.x -nk 1 -in bands.in > bands.pwo)
  echo "$name: $work/$name/bands.pwo and $(ls "$work/$name"/tmp/*.save/data-file-schema.xml)"
done
