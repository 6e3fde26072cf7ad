#!/bin/sh
# fake_qemu.sh: a stand-in for qemu-system-x86_64 in the report smoke test (check_report.cmake):
# takes the QEMU command line virt-bench builds and boots the same kernel, vCPUs, RAM and
# arguments under virt-run ($VIRT_BENCH_VIRT_RUN), so the paired rows fill in within seconds.
kernel=
smp=1
mem=128
append=
while [ $# -gt 0 ]; do
  case "$1" in
    -kernel) kernel=$2; shift ;;
    -smp) smp=$2; shift ;;
    -m) mem=$2; shift ;;
    -append) append=$2; shift ;;
  esac
  shift
done
if [ -n "$append" ]; then
  exec "$VIRT_BENCH_VIRT_RUN" --smp "$smp" -m "$mem" --append "$append" "$kernel"
fi
exec "$VIRT_BENCH_VIRT_RUN" --smp "$smp" -m "$mem" "$kernel"
