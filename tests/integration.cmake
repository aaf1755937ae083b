# Data-driven cases (tests/run_case.sh): every folder tests/cases/GROUP/CASE with a workflow.yaml.
file(GLOB SLUICE_CASE_FILES CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/cases/*/*/workflow.yaml)
foreach(wf ${SLUICE_CASE_FILES})
  get_filename_component(case_dir ${wf} DIRECTORY)
  file(RELATIVE_PATH case_name ${CMAKE_CURRENT_SOURCE_DIR}/cases ${case_dir})
  add_test(NAME case/${case_name}
           COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/run_case.sh $<TARGET_FILE:sluice> ${case_dir})
  set_tests_properties(case/${case_name} PROPERTIES TIMEOUT 90
    ENVIRONMENT "SLUICE_PLUGIN_PATH=${CMAKE_BINARY_DIR}/tests/plugins")
endforeach()

# Script tests: tests/integration/*.sh, each run with the binary's path as $1.
file(GLOB SLUICE_SCRIPT_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/integration/*.sh)
foreach(script ${SLUICE_SCRIPT_TESTS})
  get_filename_component(name ${script} NAME_WE)
  add_test(NAME integration/${name}
           COMMAND bash ${script} $<TARGET_FILE:sluice> ${CMAKE_BINARY_DIR} ${CMAKE_SOURCE_DIR})
  set_tests_properties(integration/${name} PROPERTIES TIMEOUT 180)
endforeach()
# The Slurm tests start a local cluster (root only): exit 77 is a visible SKIP.
set_tests_properties(integration/slurm PROPERTIES TIMEOUT 400 SKIP_RETURN_CODE 77)

# The layer table of engine/ (tests/layers/layers.txt) and a test that the check catches
# what it must.
add_test(NAME layers/check COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/layers/check.py
         ${CMAKE_SOURCE_DIR}/engine ${CMAKE_CURRENT_SOURCE_DIR}/layers/layers.txt)
add_test(NAME layers/selftest COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/layers/selftest.sh)
set_tests_properties(layers/check layers/selftest PROPERTIES TIMEOUT 60)

# The dashboard's HTTP server: tests/dash/http_*.py (Debian's python3: raw sockets, the real
# binary), each run with the binary, the build folder and the source folder. Each part of the
# dashboard registers its own files (api_*.py below, pages in dash/pages.cmake).
file(GLOB SLUICE_DASH_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/dash/http_*.py)
foreach(script ${SLUICE_DASH_TESTS})
  get_filename_component(name ${script} NAME_WE)
  if(NOT name MATCHES "^_")
    add_test(NAME dash/${name}
             COMMAND /usr/bin/python3 ${script} $<TARGET_FILE:sluice> ${CMAKE_BINARY_DIR}
                     ${CMAKE_SOURCE_DIR})
    set_tests_properties(dash/${name} PROPERTIES TIMEOUT 180)
  endif()
endforeach()

# The dashboard's JSON API and events: tests/dash/api_*.py (a real `serve --http` over a real
# state folder), run the same way; _apilib.py is their helper.
file(GLOB SLUICE_DASH_API_TESTS CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/dash/api_*.py)
foreach(script ${SLUICE_DASH_API_TESTS})
  get_filename_component(name ${script} NAME_WE)
  add_test(NAME dash/${name}
           COMMAND /usr/bin/python3 ${script} $<TARGET_FILE:sluice> ${CMAKE_BINARY_DIR}
                   ${CMAKE_SOURCE_DIR})
  set_tests_properties(dash/${name} PROPERTIES TIMEOUT 240)
endforeach()
