#!/usr/bin/env bash
# The fused Adafactor kernel alone (no MXNet runtime, no Python), several versions of
# gluon_opt/kernels/factored.cc timed round-robin in one process, so that this machine's swings
# fall on all of them alike. Each version is compiled in a namespace of its own.
#
#   bash benchmarks/adafactor_harness/build.sh base=gluon_opt/kernels/factored.cc new=/tmp/f.cc
#   python benchmarks/adafactor_harness/shapes.py /tmp/shapes   # ResNet-50's, by tensor kind
#   /tmp/adafactor_harness/harness /tmp/shapes/3x3.txt 30        # median, q10 and min per version
#
# FLAGS_<name> adds compiler flags to one version, e.g. the same source with other flags:
#   FLAGS_wide=-mprefer-vector-width=512 bash benchmarks/adafactor_harness/build.sh \
#       base=gluon_opt/kernels/factored.cc wide=gluon_opt/kernels/factored.cc
#
# Run it from the repository root, in the project's virtual environment (for MXNet's lib_api).
set -euo pipefail
out=${OUT_DIR:-/tmp/adafactor_harness}
here=$(cd "$(dirname "$0")" && pwd)
kernels=$(cd "$here/../../gluon_opt/kernels" && pwd)
mx=$(python -c "import mxnet, os; print(os.path.dirname(mxnet.__file__))")
# the kernel library's own flags (with GLUON_OPT_CXXFLAGS), so the versions compile as it does
flags="$(python -c "from gluon_opt.kernels import build; print(' '.join(build._flags()))")"
flags="$flags -I $mx/include -I $kernels"
mkdir -p "$out"
[ -f "$out/lib_api.o" ] || g++ $flags -c "$mx/src/lib_api.cc" -o "$out/lib_api.o"
decls=""; ptrs=""; names=""; objs=""
for spec in "$@"; do
  n=${spec%%=*}; f=$(cd "$(dirname "${spec#*=}")" && pwd)/$(basename "${spec#*=}")
  mkdir -p "$out/v_$n"
  sed "s/^REGISTER_OP(gopt_adafactor)/REGISTER_OP(gopt_adafactor_$n)/" "$f" > "$out/v_$n/factored.cc"
  extra=$(eval echo "\${FLAGS_$n:-}")
  g++ $flags $extra -Dgluon_opt=gopt_$n -c "$out/v_$n/factored.cc" -o "$out/v_$n/f.o" &
  decls="$decls DECL(gopt_$n)"; ptrs="$ptrs gopt_$n::adafactor_forward,"; names="$names \"$n\","
  objs="$objs $out/v_$n/f.o"
done
wait
g++ $flags "-DVARIANT_DECLS=$decls" "-DVARIANT_PTRS=$ptrs" "-DVARIANT_NAMES=$names" \
    -c "$here/harness.cc" -o "$out/harness.o"
g++ -fopenmp "$out/harness.o" $objs "$out/lib_api.o" -o "$out/harness"
echo "built $out/harness"
