# Embeds IN (scheduler/openapi.json) as OUT_C, defining sched_openapi_json[]
# (NUL-terminated) and sched_openapi_json_len, as lua/embed.cmake does for
# the functions library.
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" hexlen)
math(EXPR len "${hexlen} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "((0x..,){16})" "\\1\n" bytes "${bytes}")
get_filename_component(dir ${OUT_C} DIRECTORY)
file(MAKE_DIRECTORY ${dir})
file(WRITE ${OUT_C} "/* Generated from scheduler/openapi.json by scheduler/openapi.cmake. Do not edit. */\n"
    "#include <stddef.h>\n"
    "extern const char sched_openapi_json[];\n"
    "extern const size_t sched_openapi_json_len;\n"
    "const char sched_openapi_json[] = {\n${bytes}0x00 };\n"
    "const size_t sched_openapi_json_len = ${len};\n")
