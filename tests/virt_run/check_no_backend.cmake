# virt-run on a host without a usable hypervisor (Windows programs under Wine): a good kernel
# gives exit status 4, "no usable backend" with WHP's WinHvPlatform.dll reason on stderr, and
# the --json report with status 4 on stdout.
# -DVIRT_RUN=<virt-run.exe> -DEMULATOR=<wine runner> -DKERNEL=<a good multiboot kernel>
execute_process(COMMAND ${EMULATOR} ${VIRT_RUN} --json ${KERNEL}
  RESULT_VARIABLE status OUTPUT_VARIABLE out ERROR_VARIABLE err)
if(NOT status EQUAL 4)
  message(FATAL_ERROR "exit status ${status}, want 4\nstdout: ${out}\nstderr: ${err}")
endif()
if(NOT err MATCHES "virt-run: no usable backend: .*whp: .*WinHvPlatform\\.dll")
  message(FATAL_ERROR "stderr does not give WHP's reason: ${err}")
endif()
if(NOT out MATCHES "\"backend\":null,.*\"status\":4,\"reason\":\"no usable backend")
  message(FATAL_ERROR "no report with status 4 on stdout: ${out}")
endif()
