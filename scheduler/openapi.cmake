# Embeds IN as OUT_C, defining NAME[] (NUL-terminated) and NAME_len, as
# lua/embed.cmake does for the functions library: scheduler/openapi.json
# as sched_openapi_json (NAME's default), scheduler/dashboard.html as
# sched_dash_html.
if(NOT DEFINED NAME)
	set(NAME sched_openapi_json)
endif()
file(READ ${IN} hex HEX)
string(LENGTH "${hex}" hexlen)
math(EXPR len "${hexlen} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "((0x..,){16})" "\\1\n" bytes "${bytes}")
get_filename_component(dir ${OUT_C} DIRECTORY)
get_filename_component(src ${IN} NAME)
file(MAKE_DIRECTORY ${dir})
file(WRITE ${OUT_C} "/* Generated from scheduler/${src} by scheduler/openapi.cmake. Do not edit. */\n"
    "#include <stddef.h>\n"
    "extern const char ${NAME}[];\n"
    "extern const size_t ${NAME}_len;\n"
    "const char ${NAME}[] = {\n${bytes}0x00 };\n"
    "const size_t ${NAME}_len = ${len};\n")
