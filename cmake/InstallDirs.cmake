# Where `cmake --install` and the .deb put things (GNUInstallDirs for the
# usual ones). Two directories belong to other programs, which say where
# they look, so they are asked rather than guessed:
#   COWSNAP_INSTALL_PLUGINDIR       nbdkit's plugindir (pkg-config nbdkit),
#                                   so that `nbdkit cowsnap` finds the plugin
#   COWSNAP_INSTALL_COMPLETIONSDIR  bash-completion's completionsdir
# Each is kept relative to the install prefix when it lies under the prefix
# of the program that reports it (/usr/lib/x86_64-linux-gnu/nbdkit/plugins
# -> lib/x86_64-linux-gnu/nbdkit/plugins), so that DESTDIR, CPack's /usr and
# a private prefix all work; `nbdkit cowsnap` by its short name then needs
# CMAKE_INSTALL_PREFIX to be nbdkit's own prefix (/usr on Debian).
include(GNUInstallDirs)

# cowsnap_relative_to_prefix(OUT DIR PREFIX FALLBACK): DIR without its
# leading PREFIX/, DIR itself when it lies elsewhere, FALLBACK when empty.
function(cowsnap_relative_to_prefix out dir prefix fallback)
  if(dir STREQUAL "")
    set(${out} "${fallback}" PARENT_SCOPE)
  elseif(NOT prefix STREQUAL "" AND dir MATCHES "^${prefix}/(.+)$")
    set(${out} "${CMAKE_MATCH_1}" PARENT_SCOPE)
  else()
    set(${out} "${dir}" PARENT_SCOPE)
  endif()
endfunction()

pkg_get_variable(NBDKIT_PLUGINDIR nbdkit plugindir)
pkg_get_variable(NBDKIT_PREFIX nbdkit prefix)
cowsnap_relative_to_prefix(_cowsnap_plugindir "${NBDKIT_PLUGINDIR}" "${NBDKIT_PREFIX}"
                           "${CMAKE_INSTALL_LIBDIR}/nbdkit/plugins")
set(COWSNAP_INSTALL_PLUGINDIR "${_cowsnap_plugindir}" CACHE PATH
    "Where the nbdkit plugin is installed (default: nbdkit's plugindir, relative to the prefix)")

pkg_check_modules(BASH_COMPLETION QUIET bash-completion)
if(BASH_COMPLETION_FOUND)
  pkg_get_variable(_cowsnap_bc_dir bash-completion completionsdir)
  pkg_get_variable(_cowsnap_bc_prefix bash-completion prefix)
endif()
cowsnap_relative_to_prefix(_cowsnap_completionsdir "${_cowsnap_bc_dir}" "${_cowsnap_bc_prefix}"
                           "${CMAKE_INSTALL_DATADIR}/bash-completion/completions")
set(COWSNAP_INSTALL_COMPLETIONSDIR "${_cowsnap_completionsdir}" CACHE PATH
    "Where the bash completion of cowsnap is installed (default: bash-completion's completionsdir)")

# Absolute forms, and where the plugin lies as seen from the installed
# cowsnap (cli/serve_command.cc looks there first: a relocated prefix
# still works).
foreach(_dir PLUGINDIR COMPLETIONSDIR)
  if(IS_ABSOLUTE "${COWSNAP_INSTALL_${_dir}}")
    set(COWSNAP_INSTALL_FULL_${_dir} "${COWSNAP_INSTALL_${_dir}}")
  else()
    set(COWSNAP_INSTALL_FULL_${_dir} "${CMAKE_INSTALL_PREFIX}/${COWSNAP_INSTALL_${_dir}}")
  endif()
endforeach()
# The installed plugin as nbdkit finds it: compiled into `cowsnap serve`
# and named in cowsnap(8).
if(NBDKIT_PLUGINDIR)
  set(COWSNAP_INSTALLED_PLUGIN "${NBDKIT_PLUGINDIR}/nbdkit-cowsnap-plugin.so")
else()
  set(COWSNAP_INSTALLED_PLUGIN "${COWSNAP_INSTALL_FULL_PLUGINDIR}/nbdkit-cowsnap-plugin.so")
endif()
file(RELATIVE_PATH COWSNAP_PLUGINDIR_FROM_BINDIR "${CMAKE_INSTALL_FULL_BINDIR}"
     "${COWSNAP_INSTALL_FULL_PLUGINDIR}")

if(NBDKIT_PLUGINDIR AND NOT COWSNAP_INSTALL_FULL_PLUGINDIR STREQUAL NBDKIT_PLUGINDIR)
  message(STATUS "cowsnap: the plugin installs to ${COWSNAP_INSTALL_FULL_PLUGINDIR}, nbdkit looks in "
                 "${NBDKIT_PLUGINDIR}: for `nbdkit cowsnap` by its short name configure with "
                 "-DCMAKE_INSTALL_PREFIX=${NBDKIT_PREFIX} (the .deb does)")
endif()
