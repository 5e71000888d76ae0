/*
 * The VM's screen: `--display none` (no framebuffer, no window) or
 * `--display sdl[,width=W,height=H,depth=D]`, a linear framebuffer in its
 * own KVM memory slot at LAYOUT_FRAMEBUFFER_ADDRESS, announced to a bzImage
 * kernel as a VESA framebuffer, and shown in an SDL window by the display
 * thread.
 *
 * Promise: with --display none nothing is created and every function is a
 * no-op on the NULL display; with sdl the framebuffer's slot logs dirty
 * pages (KVM_MEM_LOG_DIRTY_PAGES), so the window redraws only what the
 * guest changed. The window's title names the VM and its lifecycle
 * state; a snapshot holds the framebuffer's mode and pixels (its device
 * record), and a restore shows them again.
 */
#ifndef VESSEL_VMM_DISPLAY_H
#define VESSEL_VMM_DISPLAY_H

#include <stddef.h>
#include <stdint.h>

#include "../devices/device.h"
#include "../firmware/screen_info.h"
#include "lifecycle.h"

enum display_kind {
	DISPLAY_NONE,
	DISPLAY_SDL,
};

struct display_config {
	enum display_kind kind;
	uint32_t width;
	uint32_t height;
	uint32_t depth;
};

/* The default: no display. */
#define DISPLAY_CONFIG_NONE ((struct display_config){ .kind = DISPLAY_NONE })

/* Parses the argument of --display: 0, or -EINVAL with one line in err. */
int display_parse_option(const char *text, struct display_config *config,
			 char *err, size_t err_len);

struct display;
struct i8042;

/* What the display is wired to in its VM. */
struct display_machine {
	int vm_fd;
	struct i8042 *input; /* the keyboard and mouse's controller */
	const char *name; /* the VM's name, for the window title */
	/* The user closed the window; called on the display thread. */
	void (*window_closed)(void *opaque);
	void *opaque;
};

/* *display is NULL for --display none, else attached to machine. 0, or
 * -errno with one line in err. */
int display_create(struct display **display,
		   const struct display_config *config,
		   const struct display_machine *machine, char *err,
		   size_t err_len);
void display_destroy(struct display *display);

/* The window goes on without a VM (a suspended one's, until it is built
 * again): its last picture stays, input is dropped, and closing it calls
 * window_closed (display thread; it must not wait for the event thread).
 * Event thread. */
void display_detach(struct display *display,
		    void (*window_closed)(void *opaque), void *opaque);
/* A detached display serves machine from now on: its framebuffer is
 * mapped into the new VM. 0, or -errno with one line in err. */
int display_attach(struct display *display,
		   const struct display_machine *machine, char *err,
		   size_t err_len);

/* The VM is in state now: the window's title says so. Any thread. */
void display_show_state(struct display *display, enum vm_state state);

/* The framebuffer's record (display must not be NULL): save and restore
 * carry the mode and the pixels; a restore into another mode is refused,
 * naming both. */
struct device_record display_record(struct display *display, const char *name);

/* The framebuffer to announce at boot, or NULL without one. */
const struct boot_framebuffer *display_boot_framebuffer(
	const struct display *display);

#endif
