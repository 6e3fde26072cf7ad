# Runs one fuzzer for SECONDS from a fresh copy of its seed corpus (the repository's corpus is
# never written): cmake -DFUZZER=... -DSEEDS=... -DWORK=... -DSECONDS=... -P run_fuzzer.cmake
foreach(_v FUZZER SEEDS WORK SECONDS)
  if(NOT DEFINED ${_v})
    message(FATAL_ERROR "run_fuzzer.cmake: ${_v} not set")
  endif()
endforeach()
file(REMOVE_RECURSE ${WORK})
file(MAKE_DIRECTORY ${WORK}/corpus ${WORK}/artifacts)
file(GLOB _seeds ${SEEDS}/*)
if(NOT _seeds)
  message(FATAL_ERROR "no seed inputs in ${SEEDS}")
endif()
file(COPY ${_seeds} DESTINATION ${WORK}/corpus)
execute_process(
  COMMAND ${FUZZER} -max_total_time=${SECONDS} -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
          -artifact_prefix=${WORK}/artifacts/ ${WORK}/corpus
  RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
  file(GLOB _found ${WORK}/artifacts/*)
  message(FATAL_ERROR "${FUZZER} failed (${_rc}); reproducer(s): ${_found}")
endif()
