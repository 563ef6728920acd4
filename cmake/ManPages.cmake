# cowsnap_add_man_page(NAME SECTION POD CENTER): NAME.SECTION from POD with
# pod2man (as nbdkit builds its pages), gzip'd without a time stamp (-n,
# reproducible) and installed to MANDIR/manSECTION. CENTER is the page's
# centre header. The page is built with `all`; BUILD/.../NAME.SECTION is
# the roff, for `man -l` and the tests.
find_program(POD2MAN pod2man REQUIRED)
find_program(GZIP gzip REQUIRED)

function(cowsnap_add_man_page name section pod center)
  set(roff ${CMAKE_CURRENT_BINARY_DIR}/${name}.${section})
  add_custom_command(
    OUTPUT ${roff}
    COMMAND ${POD2MAN} --utf8 --errors=die --section=${section} --center=${center}
            --release=cowsnap-${PROJECT_VERSION} --name=${name} ${pod} ${roff}
    DEPENDS ${pod}
    COMMENT "pod2man ${name}.${section}"
    VERBATIM)
  add_custom_command(
    OUTPUT ${roff}.gz
    COMMAND sh -c "\"$0\" -9 -n -c \"$1\" > \"$1.gz\"" ${GZIP} ${roff}
    DEPENDS ${roff}
    VERBATIM)
  add_custom_target(man_${name} ALL DEPENDS ${roff}.gz)
  install(FILES ${roff}.gz DESTINATION ${CMAKE_INSTALL_MANDIR}/man${section})
endfunction()
