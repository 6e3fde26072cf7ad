# Runs virt-bench on the library-only benchmarks, one real-KVM paired row (skipped without
# /dev/kvm) and, with virt-run, the vmm_boot rows, and checks bench-report.json's shape:
#   cmake -DBENCH=path/to/virt-bench -DREPORT=path/to/report.json -P check_report.cmake
# No timing is asserted: only that the run succeeds and the rows have the documented fields.
file(REMOVE "${REPORT}")
execute_process(
  COMMAND "${BENCH}" --benchmark_filter=gsi_table --benchmark_min_time=0.01 "--report=${REPORT}"
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "virt-bench exited with ${rc}\n${out}\n${err}")
endif()
if(NOT EXISTS "${REPORT}")
  message(FATAL_ERROR "virt-bench wrote no report at ${REPORT}\n${out}")
endif()
file(READ "${REPORT}" json)
string(JSON type ERROR_VARIABLE jerr TYPE "${json}")
if(jerr OR NOT type STREQUAL "ARRAY")
  message(FATAL_ERROR "report is not a JSON list: ${jerr}\n${json}")
endif()
string(JSON n LENGTH "${json}")
set(found OFF)
math(EXPR last "${n} - 1")
foreach(i RANGE ${last})
  string(JSON name GET "${json}" ${i} name)
  foreach(field baseline_ns virt_ns ratio)
    string(JSON t ERROR_VARIABLE ferr TYPE "${json}" ${i} ${field})
    if(ferr)
      message(FATAL_ERROR "row ${name} lacks ${field}\n${json}")
    endif()
  endforeach()
  if(name STREQUAL "gsi_table")
    set(found ON)
    string(JSON vt TYPE "${json}" ${i} virt_ns)
    string(JSON bt TYPE "${json}" ${i} baseline_ns)
    string(JSON rt TYPE "${json}" ${i} ratio)
    if(NOT vt STREQUAL "NUMBER" OR NOT bt STREQUAL "NULL" OR NOT rt STREQUAL "NULL")
      message(FATAL_ERROR "gsi_table row: want numeric virt_ns, null baseline_ns/ratio\n${json}")
    endif()
  endif()
endforeach()
if(NOT found)
  message(FATAL_ERROR "no gsi_table row in the report\n${json}")
endif()
if(NOT out MATCHES "\\| benchmark \\|")
  message(FATAL_ERROR "no Markdown table on stdout\n${out}")
endif()

# Checks the paired rows of the report `json`: each of `want` (in this order) either says why it
# was skipped or carries `pairs` pairs, ratio_min <= ratio_q1 <= ratio <= ratio_q3 <= ratio_max,
# a numeric spread_pct and a boolean spread_ok that agrees with it (at most 1 %).
function(check_paired_rows json pairs want)
  string(JSON n LENGTH "${json}")
  set(seen)
  math(EXPR last "${n} - 1")
  foreach(i RANGE ${last})
    string(JSON name GET "${json}" ${i} name)
    list(APPEND seen ${name})
    string(JSON skipped ERROR_VARIABLE no_skip GET "${json}" ${i} skipped)
    if(NOT no_skip)
      if(skipped STREQUAL "")
        message(FATAL_ERROR "row ${name}: empty skip reason\n${json}")
      endif()
      message(STATUS "${name} skipped: ${skipped}")
      continue()
    endif()
    string(JSON got ERROR_VARIABLE perr GET "${json}" ${i} pairs)
    if(perr OR NOT got EQUAL pairs)
      message(FATAL_ERROR "row ${name}: want ${pairs} pairs, got '${got}'\n${json}")
    endif()
    string(JSON ratio GET "${json}" ${i} ratio)
    string(JSON lo GET "${json}" ${i} ratio_min)
    string(JSON q1 GET "${json}" ${i} ratio_q1)
    string(JSON q3 GET "${json}" ${i} ratio_q3)
    string(JSON hi GET "${json}" ${i} ratio_max)
    # CMake compares numbers as integers or floats in LESS/GREATER.
    if(lo LESS_EQUAL 0 OR q1 LESS lo OR ratio LESS q1 OR q3 LESS ratio OR hi LESS q3)
      message(FATAL_ERROR "row ${name}: want min <= q1 <= ratio <= q3 <= max, got "
                          "${lo} ${q1} ${ratio} ${q3} ${hi}\n${json}")
    endif()
    string(JSON pt ERROR_VARIABLE serr TYPE "${json}" ${i} spread_pct)
    string(JSON ot ERROR_VARIABLE oerr TYPE "${json}" ${i} spread_ok)
    if(serr OR oerr OR NOT pt STREQUAL "NUMBER" OR NOT ot STREQUAL "BOOLEAN")
      message(FATAL_ERROR "row ${name}: want numeric spread_pct, boolean spread_ok\n${json}")
    endif()
    string(JSON pct GET "${json}" ${i} spread_pct)
    string(JSON ok GET "${json}" ${i} spread_ok)
    # spread_pct is printed to 3 digits: compare it with 1 % with that much slack.
    if(pct LESS 0 OR (ok AND pct GREATER 1.01) OR (NOT ok AND pct LESS 0.99))
      message(FATAL_ERROR "row ${name}: spread_ok ${ok} disagrees with spread_pct ${pct}\n${json}")
    endif()
  endforeach()
  if(NOT seen STREQUAL want)
    message(FATAL_ERROR "paired rows: want ${want}, got ${seen}\n${json}")
  endif()
endfunction()

# A real-KVM paired row (exit_roundtrip: raw and library guests alternating in batches), one
# repetition: its pairs and spread fields, or the reason it was skipped (no /dev/kvm).
set(KVM_REPORT "${REPORT}.kvm.json")
file(REMOVE "${KVM_REPORT}")
execute_process(
  COMMAND "${BENCH}" --benchmark_filter=exit_roundtrip --benchmark_repetitions=1
          "--report=${KVM_REPORT}"
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR NOT EXISTS "${KVM_REPORT}")
  message(FATAL_ERROR "virt-bench (exit_roundtrip) exited with ${rc}, no report?\n${out}\n${err}")
endif()
file(READ "${KVM_REPORT}" json)
check_paired_rows("${json}" 100 exit_roundtrip)
if(NOT out MATCHES "\\| spread \\|")
  message(FATAL_ERROR "no spread column in the Markdown table\n${out}")
endif()

# Paired rows (vmm_boot): when virt-run is built (-DVIRT_RUN=...), run them with fake_qemu.sh
# (-DFAKE_QEMU=...) in QEMU's place, two repetitions. Each of the five rows must either carry
# two pairs and the fields above, or say why it was skipped (no /dev/kvm here, say).
if(NOT VIRT_RUN)
  return()
endif()
set(PAIRED_REPORT "${REPORT}.paired.json")
file(REMOVE "${PAIRED_REPORT}")
execute_process(
  COMMAND ${CMAKE_COMMAND} -E env "VIRT_BENCH_QEMU=${FAKE_QEMU}" "VIRT_BENCH_VIRT_RUN=${VIRT_RUN}"
          "${BENCH}" --benchmark_filter=vmm_boot --benchmark_repetitions=2 "--report=${PAIRED_REPORT}"
  RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT rc EQUAL 0 OR NOT EXISTS "${PAIRED_REPORT}")
  message(FATAL_ERROR "virt-bench (vmm_boot) exited with ${rc}, no report?\n${out}\n${err}")
endif()
file(READ "${PAIRED_REPORT}" json)
set(want vmm_exec_to_first_instruction vmm_exec_to_exit/first_out vmm_exec_to_exit/console
    vmm_exec_to_exit/ap_bringup_smp4 vmm_ap_bringup/4)
check_paired_rows("${json}" 2 "${want}")
