/*
 * The stb_image and stb_image_write implementations (Debian's libstb-dev
 * ships headers only), compiled once with relaxed warnings as third-party
 * code. comfyq-sim decodes input images and encodes PNG/JPEG with them;
 * the sim's tests decode its PNGs.
 */
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#define STBI_NO_HDR
#define STBI_NO_LINEAR
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
