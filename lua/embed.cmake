# Concatenates the library sources (SOURCES, '|'-separated) into OUT_LUA and
# writes OUT_C defining comfyq_lua_library[] and comfyq_lua_library_len.
string(REPLACE "|" ";" files "${SOURCES}")
set(lib "")
foreach(f IN LISTS files)
	file(READ ${f} text)
	get_filename_component(name ${f} NAME)
	if(lib STREQUAL "")
		set(lib "${text}")
	else()
		set(lib "${lib}\n-- ${name}\n${text}")
	endif()
endforeach()
file(WRITE ${OUT_LUA} "${lib}")
file(READ ${OUT_LUA} hex HEX)
string(LENGTH "${hex}" hexlen)
math(EXPR len "${hexlen} / 2")
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "((0x..,){16})" "\\1\n" bytes "${bytes}")
get_filename_component(dir ${OUT_C} DIRECTORY)
file(MAKE_DIRECTORY ${dir})
file(WRITE ${OUT_C} "/* Generated from the lua/ sources by lua/embed.cmake. Do not edit. */\n"
    "#include <stddef.h>\n"
    "const char comfyq_lua_library[] = {\n${bytes}0x00 };\n"
    "const size_t comfyq_lua_library_len = ${len};\n")
