# Installs sluice.pc (pkg-config) for the prefix being installed to. Run at install time
# (install(CODE) in CMakeLists.txt), because `cmake --install --prefix P` and
# `make install PREFIX=P` choose the prefix after configuring; DESTDIR is applied by
# file(INSTALL) as for every other file. Inputs: CMAKE_INSTALL_PREFIX and the SLUICE_PC_*
# variables the install(CODE) sets (folders relative to the prefix, or absolute).

# "${prefix}/lib" for a relative folder, the folder itself for an absolute one.
function(sluice_pc_path out dir)
  if(IS_ABSOLUTE "${dir}")
    set(${out} "${dir}" PARENT_SCOPE)
  else()
    set(${out} "\${prefix}/${dir}" PARENT_SCOPE)
  endif()
endfunction()

# A folder under libdir is written as "${libdir}/…", so that a user who overrides libdir
# (pkg-config --define-variable=libdir=…) moves it along.
function(sluice_pc_under_libdir out dir)
  string(LENGTH "${SLUICE_PC_LIBDIR}/" libdir_length)
  string(SUBSTRING "${dir}/" 0 ${libdir_length} head)
  if(head STREQUAL "${SLUICE_PC_LIBDIR}/")
    string(SUBSTRING "${dir}" ${libdir_length} -1 rest)
    set(${out} "\${libdir}/${rest}" PARENT_SCOPE)
  else()
    sluice_pc_path(path "${dir}")
    set(${out} "${path}" PARENT_SCOPE)
  endif()
endfunction()

set(prefix "${CMAKE_INSTALL_PREFIX}")
sluice_pc_path(libdir "${SLUICE_PC_LIBDIR}")
sluice_pc_path(includedir "${SLUICE_PC_INCLUDEDIR}")
sluice_pc_under_libdir(plugindir "${SLUICE_PC_PLUGINDIR}")
sluice_pc_path(luadir "${SLUICE_PC_LUADIR}")
set(version "${SLUICE_PC_VERSION}")

# One work file per prefix: installs to two prefixes at once (parallel tests) do not share it.
string(MD5 prefix_key "${CMAKE_INSTALL_PREFIX}")
set(work "${SLUICE_PC_WORK_DIR}/${prefix_key}/sluice.pc")
configure_file("${SLUICE_PC_IN}" "${work}" @ONLY)

if(IS_ABSOLUTE "${SLUICE_PC_DESTINATION}")
  set(destination "${SLUICE_PC_DESTINATION}")
else()
  set(destination "${CMAKE_INSTALL_PREFIX}/${SLUICE_PC_DESTINATION}")
endif()
file(INSTALL DESTINATION "${destination}" TYPE FILE FILES "${work}")
