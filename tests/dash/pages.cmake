# The dashboard's pages in headless Chromium (tests/dash/pages_browser.py): exit 77 is a
# visible SKIP, and only when /usr/bin/chromium is absent (the Makefile's DEBS install it).
add_test(NAME dash/pages_browser
         COMMAND /usr/bin/python3 ${CMAKE_CURRENT_SOURCE_DIR}/dash/pages_browser.py
                 $<TARGET_FILE:sluice> ${CMAKE_BINARY_DIR} ${CMAKE_SOURCE_DIR})
set_tests_properties(dash/pages_browser PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77)
