/*
 * The SDL2 backend of the display: one thread that owns an SDL window
 * showing a framebuffer, scaled to the window with its aspect kept, and
 * pumps the window's events: keys always go to the guest, the mouse while
 * the pointer is grabbed (a click in the window or Ctrl+Alt+G grabs it,
 * Ctrl+Alt+G releases it, as the title says).
 *
 * Promise: the thread uploads only the rectangles the dirty log names, at
 * no more than the display's refresh rate, and sleeps in SDL's event wait
 * between refreshes (one dirty-log fetch per refresh, nothing else, while
 * the guest draws nothing). Every SDL call happens on the display thread.
 * Closing the window is reported through close_requested, never acted on
 * here. The title names the VM, its state and whether the pointer is
 * grabbed.
 */
#ifndef VESSEL_DEVICES_DISPLAY_SDL_H
#define VESSEL_DEVICES_DISPLAY_SDL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "framebuffer.h"

struct display_sdl_options {
	const struct framebuffer *framebuffer;
	const char *name; /* the VM's name, for the title */
	const char *state; /* its state at first, for the title */
	/* Fills bitmap (one bit per page of the framebuffer, in
	 * framebuffer_dirty_rects' layout) with the pages written since the
	 * last call, and clears the log: 0 or -errno. */
	int (*fetch_dirty)(void *opaque, uint64_t *bitmap);
	/* The user closed the window. */
	void (*close_requested)(void *opaque);
	/* A key of USB HID usage (SDL's scancode) went down, repeated or
	 * went up: true when taken, false when the guest's keyboard has no
	 * room yet (the key and those after it wait, in order). */
	bool (*key)(void *opaque, uint16_t usage, bool pressed);
	/* While the pointer is grabbed: motion (dx right, dy up, dz wheel
	 * towards the user) and the buttons held (PS/2 order: left 0x01,
	 * right 0x02, middle 0x04). */
	void (*pointer)(void *opaque, int32_t dx, int32_t dy, int32_t dz,
			uint8_t buttons);
	void *opaque;
};

struct display_sdl;

/* Opens the window and starts the thread: 0, or -errno with one line in
 * err (no X display, for instance). */
int display_sdl_create(struct display_sdl **display,
		       const struct display_sdl_options *options, char *err,
		       size_t err_len);
#define DISPLAY_SDL_STATE_SIZE 16

/* The VM's state in the title from now on ("running", "paused"; longer
 * names are cut). Any thread. */
void display_sdl_show_state(struct display_sdl *display, const char *state);
/* The whole framebuffer is uploaded at the next refresh, for memory the
 * guest did not write itself (the dirty log missed it). Any thread. */
void display_sdl_redraw(struct display_sdl *display);
/* Stops the thread and closes the window. */
void display_sdl_destroy(struct display_sdl *display);

#endif
