# Full RELRO (bind now) for every project target, as Debian's packages are
# linked (dpkg-buildflags, hardening=+all); lintian checks it on the .deb.
# Debian's gcc already makes PIE and links -z relro by default; -z now
# makes the whole GOT read-only after start-up. It changes no compile flag.
option(COWSNAP_HARDENING "Link with full RELRO (-z relro -z now)" ON)
if(COWSNAP_HARDENING)
  target_link_options(cowsnap_options INTERFACE LINKER:-z,relro LINKER:-z,now)
endif()
