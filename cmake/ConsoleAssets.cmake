# ConsoleAssets.cmake - coffer_embed_assets(TARGET DIR): compiles every file under DIR into TARGET
# as the table of src/console/assets.h, generated in the build directory by embed_assets.cmake.
# The glob is CONFIGURE_DEPENDS, so adding or removing a file reconfigures; the command depends on
# every file and on the list of their names, so editing, adding or removing one regenerates the table.
function(coffer_embed_assets target dir)
  file(GLOB_RECURSE web_files CONFIGURE_DEPENDS LIST_DIRECTORIES false "${dir}/*")
  set(out "${CMAKE_CURRENT_BINARY_DIR}/generated/console_assets.c")
  # A removed file leaves every remaining dependency older than the table: the list of names,
  # rewritten only when it changes, is a dependency that is newer then.
  set(names "${CMAKE_CURRENT_BINARY_DIR}/generated/console_assets.list")
  string(REPLACE ";" "\n" listed "${web_files}")
  file(CONFIGURE OUTPUT "${names}" CONTENT "${listed}\n" @ONLY)
  add_custom_command(
    OUTPUT "${out}"
    COMMAND "${CMAKE_COMMAND}" "-DWEB_DIR=${dir}" "-DOUTPUT=${out}"
            -P "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/embed_assets.cmake"
    DEPENDS ${web_files} "${names}" "${CMAKE_CURRENT_FUNCTION_LIST_DIR}/embed_assets.cmake"
    COMMENT "Embedding the console's web page (${dir})"
    VERBATIM)
  target_sources(${target} PRIVATE "${out}")
endfunction()
