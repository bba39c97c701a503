/*
 * Test images: a w x h RGB PNG in memory, for the tests that feed a worker
 * or a run an output or an input image.
 */
#ifndef COMFYQ_TIMG_H
#define COMFYQ_TIMG_H

#define TIMG_GRADIENT (-1) /* fill: a pattern no blank check trips on */

/* PNG bytes (free() them) of every byte fill, or TIMG_GRADIENT. */
unsigned char *timg_png(int w, int h, int fill, int *len);

#endif
