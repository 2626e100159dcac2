# Install rules and the Debian package `mixcast` (CPack DEB) for the real backend:
#   /usr/bin/mixcastd, /usr/bin/mixcast                          the daemon and the control CLI
#   /usr/lib/systemd/system/mixcastd.service                     real/packaging/mixcastd.service
#   /usr/lib/sysusers.d/mixcast.conf                              the system user mixcast
#   /etc/mixcast/mixcastd.yaml                                    real/mixcastd.example.yaml, a conffile
#   /usr/share/doc/mixcast/                                       docs, README, the example config
# Included from the top-level CMakeLists.txt after real/. Packages: configure with
# CMAKE_INSTALL_PREFIX=/usr (the presets aarch64, armhf and deb do), build, then
#   cpack --config <build>/CPackConfig.cmake -B <build>/packages
# Native builds compute Depends with dpkg-shlibdeps; cross builds (the toolchain files set
# MIXCAST_CROSS_DEBARCH) get the architecture and an explicit Depends list, because
# dpkg-shlibdeps needs the target's libraries registered in dpkg's database. Walkthrough:
# docs/deploy-arm.md.
if(NOT TARGET mixcastd OR NOT TARGET mixcast)
  message(STATUS "mixcast: mixcastd is not built; no install rules or packages")
  return()
endif()

include(GNUInstallDirs)

set(MIXCAST_SYSTEMD_UNIT_DIR "lib/systemd/system" CACHE STRING
    "Where the systemd unit is installed (relative to CMAKE_INSTALL_PREFIX, or absolute)")
set(MIXCAST_SYSUSERS_DIR "lib/sysusers.d" CACHE STRING
    "Where the sysusers.d file is installed (relative to CMAKE_INSTALL_PREFIX, or absolute)")
set(MIXCAST_DEB_MAINTAINER "mixcast maintainers <maintainers@mixcast.invalid>" CACHE STRING
    "Maintainer field of the Debian package")

set(_pkg_src ${PROJECT_SOURCE_DIR}/real/packaging)
set(_pkg_gen ${PROJECT_BINARY_DIR}/packaging)
set(_pkg_etc ${CMAKE_INSTALL_FULL_SYSCONFDIR}/mixcast)

# Everything the package holds is in this component; other install() rules in the tree (if any)
# do not end up in the package.
set(_pkg_component mixcastd)

install(TARGETS mixcastd mixcast RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT ${_pkg_component})

# The unit names /usr/bin and /etc; other prefixes get their own paths.
file(READ ${_pkg_src}/mixcastd.service _unit)
string(REPLACE "/usr/bin/mixcastd" "${CMAKE_INSTALL_FULL_BINDIR}/mixcastd" _unit "${_unit}")
string(REPLACE "/etc/mixcast/" "${_pkg_etc}/" _unit "${_unit}")
string(REPLACE "/usr/share/doc/mixcast/" "${CMAKE_INSTALL_FULL_DOCDIR}/" _unit "${_unit}")
file(CONFIGURE OUTPUT ${_pkg_gen}/mixcastd.service CONTENT "${_unit}" @ONLY)
set_property(DIRECTORY ${PROJECT_SOURCE_DIR} APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
             ${_pkg_src}/mixcastd.service)
install(FILES ${_pkg_gen}/mixcastd.service DESTINATION ${MIXCAST_SYSTEMD_UNIT_DIR} COMPONENT ${_pkg_component})
install(FILES ${_pkg_src}/mixcast.sysusers DESTINATION ${MIXCAST_SYSUSERS_DIR} RENAME mixcast.conf
        COMPONENT ${_pkg_component})

install(FILES ${PROJECT_SOURCE_DIR}/real/mixcastd.example.yaml DESTINATION ${_pkg_etc} RENAME mixcastd.yaml
        COMPONENT ${_pkg_component})
install(FILES ${PROJECT_SOURCE_DIR}/real/mixcastd.example.yaml ${PROJECT_SOURCE_DIR}/README.md
              ${PROJECT_SOURCE_DIR}/docs/real-backend.md ${PROJECT_SOURCE_DIR}/docs/deploy-arm.md
        DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT ${_pkg_component})

# ---- CPack DEB ----------------------------------------------------------------------------------
if(NOT CMAKE_INSTALL_PREFIX STREQUAL "/usr")
  message(STATUS "mixcast: CMAKE_INSTALL_PREFIX is ${CMAKE_INSTALL_PREFIX}; Debian packages need /usr "
                 "(the presets aarch64, armhf and deb set it)")
endif()

# dpkg marks the config a conffile: an upgrade keeps local edits (and asks when both changed).
file(CONFIGURE OUTPUT ${_pkg_gen}/conffiles CONTENT "${_pkg_etc}/mixcastd.yaml\n")
foreach(_script postinst prerm postrm)
  configure_file(${_pkg_src}/deb/${_script} ${_pkg_gen}/${_script} COPYONLY)
endforeach()

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME mixcast)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_VENDOR mixcast)
set(CPACK_PACKAGE_CONTACT "${MIXCAST_DEB_MAINTAINER}")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "broadcast small messages to every node of a cluster")
set(CPACK_PACKAGING_INSTALL_PREFIX ${CMAKE_INSTALL_PREFIX})
# The config goes to an absolute path (/etc/mixcast): install through DESTDIR into the staging area.
set(CPACK_SET_DESTDIR ON)
set(CPACK_INSTALL_CMAKE_PROJECTS "${PROJECT_BINARY_DIR};${PROJECT_NAME};${_pkg_component};/")
set(CPACK_STRIP_FILES ON)

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # mixcast_<version>_<arch>.deb
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${MIXCAST_DEB_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# The long description; CPack puts CPACK_PACKAGE_DESCRIPTION_SUMMARY in front as the synopsis.
set(CPACK_DEBIAN_PACKAGE_DESCRIPTION "mixcast delivers small messages (typically under 100 bytes) to every member of a
cluster: one UDP multicast inside a subnet, a logarithmic TCP broadcast across subnets,
NAT gateways and datacenters.
.
This package holds the daemon mixcastd, the control CLI mixcast, a systemd unit (not
enabled on install) and an example configuration in /etc/mixcast/mixcastd.yaml.")
set(CPACK_DEBIAN_PACKAGE_RECOMMENDS systemd)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
    ${_pkg_gen}/conffiles ${_pkg_gen}/postinst ${_pkg_gen}/prerm ${_pkg_gen}/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)

if(CMAKE_CROSSCOMPILING)
  if(NOT MIXCAST_CROSS_DEBARCH)
    message(FATAL_ERROR "mixcast: cross build without MIXCAST_CROSS_DEBARCH; use cmake/toolchains/*.cmake")
  endif()
  set(CPACK_DEBIAN_PACKAGE_ARCHITECTURE ${MIXCAST_CROSS_DEBARCH})
  # What mixcastd and mixcast link dynamically (readelf -d: NEEDED), written as dpkg-shlibdeps
  # writes them for the native package (same library versions on every architecture). They are
  # Debian 12 (bookworm)'s, whose libraries the cross build links against; a board running
  # another Debian release needs a package built against that release.
  set(CPACK_DEBIAN_PACKAGE_DEPENDS
      "libc6 (>= 2.34), libfmt9 (>= 9.1.0+ds1), libgcc-s1 (>= 3.0), libspdlog1.10-fmt9, libstdc++6 (>= 11), libyaml-cpp0.7 (>= 0.7.0)")
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS OFF)
else()
  # Depends from the binaries' NEEDED entries (dpkg-shlibdeps, package dpkg-dev; CPack stops with
  # an error if it is missing rather than writing a package without Depends).
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
endif()

include(CPack)
