#include "display.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include <linux/kvm.h>

#include "../devices/display_sdl.h"
#include "../devices/framebuffer.h"
#include "../devices/guest_memory.h"
#include "../devices/i8042.h"
#include "machine_layout.h"

/* RAM takes slots 0 to GUEST_MEMORY_MAX_REGIONS - 1 (vmm/memory.c). */
#define FRAMEBUFFER_SLOT GUEST_MEMORY_MAX_REGIONS

struct display {
	struct framebuffer framebuffer;
	struct boot_framebuffer boot;
	struct display_sdl *window;
	/* What the window feeds, swapped by attach and detach on the event
	 * thread while the display thread calls through it: held across
	 * each call, none of which waits for the event thread. */
	pthread_mutex_t lock;
	int vm_fd; /* -1 while detached */
	struct i8042 *input; /* NULL while detached */
	void (*window_closed)(void *opaque);
	void *opaque;
};

/* VALUE of KEY=VALUE as a number from 1 to 65535. */
static int parse_dimension(const char *key, const char *value,
			   uint32_t *number, char *err, size_t err_len)
{
	char *end;

	errno = 0;
	unsigned long parsed = strtoul(value, &end, 10);
	if (errno || end == value || *end || *value == '-' || parsed == 0 ||
	    parsed > UINT16_MAX) {
		snprintf(err, err_len, "--display: %s '%s' is not a number",
			 key, value);
		return -EINVAL;
	}
	*number = (uint32_t)parsed;
	return 0;
}

int display_parse_option(const char *text, struct display_config *config,
			 char *err, size_t err_len)
{
	char copy[128];

	if (snprintf(copy, sizeof(copy), "%s", text) >= (int)sizeof(copy)) {
		snprintf(err, err_len, "--display: '%.32s...' is too long", text);
		return -EINVAL;
	}
	char *item = strchr(copy, ',');
	if (item)
		*item++ = '\0';
	if (!strcmp(copy, "none")) {
		if (item) {
			snprintf(err, err_len, "--display none takes no options");
			return -EINVAL;
		}
		*config = DISPLAY_CONFIG_NONE;
		return 0;
	}
	if (strcmp(copy, "sdl")) {
		snprintf(err, err_len,
			 "--display: '%s' is not a display (none or sdl)", copy);
		return -EINVAL;
	}
	*config = (struct display_config){
		.kind = DISPLAY_SDL,
		.width = FRAMEBUFFER_DEFAULT_WIDTH,
		.height = FRAMEBUFFER_DEFAULT_HEIGHT,
		.depth = FRAMEBUFFER_DEFAULT_DEPTH,
	};
	while (item && *item) {
		char *next = strchr(item, ',');
		if (next)
			*next++ = '\0';
		char *value = strchr(item, '=');
		uint32_t *field = NULL;
		if (value) {
			*value++ = '\0';
			if (!strcmp(item, "width"))
				field = &config->width;
			else if (!strcmp(item, "height"))
				field = &config->height;
			else if (!strcmp(item, "depth"))
				field = &config->depth;
		}
		if (!field) {
			snprintf(err, err_len, "--display sdl: unknown option '%s'",
				 item);
			return -EINVAL;
		}
		if (parse_dimension(item, value, field, err, err_len))
			return -EINVAL;
		item = next;
	}
	struct framebuffer_mode mode;
	if (framebuffer_mode_init(&mode, config->width, config->height,
				  config->depth, LAYOUT_FRAMEBUFFER_MAX_SIZE)) {
		snprintf(err, err_len,
			 "--display sdl: %ux%u at %u bits per pixel is not a mode (%u-%u x %u-%u, depth 16, 24 or 32, at most %llu MiB)",
			 config->width, config->height, config->depth,
			 FRAMEBUFFER_MIN_WIDTH, FRAMEBUFFER_MAX_WIDTH,
			 FRAMEBUFFER_MIN_HEIGHT, FRAMEBUFFER_MAX_HEIGHT,
			 LAYOUT_FRAMEBUFFER_MAX_SIZE >> 20);
		return -EINVAL;
	}
	return 0;
}

static struct boot_pixel_channel boot_channel(struct framebuffer_channel channel)
{
	return (struct boot_pixel_channel){ channel.size, channel.position };
}

/* Maps the framebuffer's memory into guest-physical space, logging the
 * pages the guest writes (KVM API, KVM_SET_USER_MEMORY_REGION). */
static int register_slot(const struct display *display, int vm_fd,
			 char *err, size_t err_len)
{
	struct kvm_userspace_memory_region slot = {
		.slot = FRAMEBUFFER_SLOT,
		.flags = KVM_MEM_LOG_DIRTY_PAGES,
		.guest_phys_addr = LAYOUT_FRAMEBUFFER_ADDRESS,
		.memory_size = display->framebuffer.mode.size,
		.userspace_addr = (uint64_t)(uintptr_t)display->framebuffer.pixels,
	};

	if (ioctl(vm_fd, KVM_SET_USER_MEMORY_REGION, &slot)) {
		int saved = errno;
		snprintf(err, err_len,
			 "KVM_SET_USER_MEMORY_REGION for the framebuffer at 0x%llx: %s",
			 LAYOUT_FRAMEBUFFER_ADDRESS, strerror(saved));
		return -saved;
	}
	return 0;
}

/* The pages of the framebuffer the guest wrote since the last call; KVM
 * clears the log and write-protects them again (KVM API,
 * KVM_GET_DIRTY_LOG). Called on the display thread. */
static int fetch_dirty(void *opaque, uint64_t *bitmap)
{
	struct display *display = opaque;
	struct kvm_dirty_log log = {
		.slot = FRAMEBUFFER_SLOT,
		.dirty_bitmap = bitmap,
	};
	int result = 0;

	pthread_mutex_lock(&display->lock);
	if (display->vm_fd < 0)
		memset(bitmap, 0,
		       framebuffer_dirty_bitmap_words(&display->framebuffer.mode) *
			       sizeof(uint64_t));
	else if (ioctl(display->vm_fd, KVM_GET_DIRTY_LOG, &log))
		result = -errno;
	pthread_mutex_unlock(&display->lock);
	return result;
}

static void window_closed(void *opaque)
{
	struct display *display = opaque;

	pthread_mutex_lock(&display->lock);
	display->window_closed(display->opaque);
	pthread_mutex_unlock(&display->lock);
}

/* Input for a detached display has no guest to go to: dropped. */
static bool key(void *opaque, uint16_t usage, bool pressed)
{
	struct display *display = opaque;
	bool taken = true;

	pthread_mutex_lock(&display->lock);
	if (display->input)
		taken = i8042_key_event(display->input, usage, pressed);
	pthread_mutex_unlock(&display->lock);
	return taken;
}

static void pointer(void *opaque, int32_t dx, int32_t dy, int32_t dz,
		    uint8_t buttons)
{
	struct display *display = opaque;

	pthread_mutex_lock(&display->lock);
	if (display->input)
		i8042_mouse_event(display->input, dx, dy, dz, buttons);
	pthread_mutex_unlock(&display->lock);
}

int display_attach(struct display *display,
		   const struct display_machine *machine, char *err,
		   size_t err_len)
{
	int result = register_slot(display, machine->vm_fd, err, err_len);

	if (result)
		return result;
	pthread_mutex_lock(&display->lock);
	display->vm_fd = machine->vm_fd;
	display->input = machine->input;
	display->window_closed = machine->window_closed;
	display->opaque = machine->opaque;
	pthread_mutex_unlock(&display->lock);
	return 0;
}

void display_detach(struct display *display,
		    void (*window_closed)(void *opaque), void *opaque)
{
	pthread_mutex_lock(&display->lock);
	display->vm_fd = -1;
	display->input = NULL;
	display->window_closed = window_closed;
	display->opaque = opaque;
	pthread_mutex_unlock(&display->lock);
}

int display_create(struct display **result,
		   const struct display_config *config,
		   const struct display_machine *machine, char *err,
		   size_t err_len)
{
	struct framebuffer_mode mode;
	int ret;

	*result = NULL;
	if (config->kind == DISPLAY_NONE)
		return 0;
	ret = framebuffer_mode_init(&mode, config->width, config->height,
				    config->depth, LAYOUT_FRAMEBUFFER_MAX_SIZE);
	if (ret) {
		snprintf(err, err_len, "--display: %ux%ux%u is not a mode",
			 config->width, config->height, config->depth);
		return ret;
	}
	struct display *display = calloc(1, sizeof(*display));
	if (!display) {
		snprintf(err, err_len, "out of memory for the display");
		return -ENOMEM;
	}
	display->vm_fd = -1;
	pthread_mutex_init(&display->lock, NULL);
	ret = framebuffer_create(&display->framebuffer, &mode);
	if (ret) {
		snprintf(err, err_len, "framebuffer of %u bytes: %s", mode.size,
			 strerror(-ret));
		display_destroy(display);
		return ret;
	}
	ret = display_attach(display, machine, err, err_len);
	if (!ret) {
		const struct display_sdl_options options = {
			.framebuffer = &display->framebuffer,
			.name = machine->name,
			.state = "starting",
			.fetch_dirty = fetch_dirty,
			.close_requested = window_closed,
			.key = key,
			.pointer = pointer,
			.opaque = display,
		};
		ret = display_sdl_create(&display->window, &options, err,
					 err_len);
	}
	if (ret) {
		display_destroy(display);
		return ret;
	}
	display->boot = (struct boot_framebuffer){
		.address = (uint32_t)LAYOUT_FRAMEBUFFER_ADDRESS,
		.size = mode.size,
		.width = (uint16_t)mode.width,
		.height = (uint16_t)mode.height,
		.depth = mode.format.depth,
		.line_length = (uint16_t)mode.line_length,
		.red = boot_channel(mode.format.red),
		.green = boot_channel(mode.format.green),
		.blue = boot_channel(mode.format.blue),
		.reserved = boot_channel(mode.format.reserved),
	};
	*result = display;
	return 0;
}

void display_destroy(struct display *display)
{
	if (!display)
		return;
	display_sdl_destroy(display->window);
	framebuffer_destroy(&display->framebuffer);
	pthread_mutex_destroy(&display->lock);
	free(display);
}

void display_show_state(struct display *display, enum vm_state state)
{
	if (!display)
		return;
	/* "active" is the API's word; a window's user reads "running". */
	display_sdl_show_state(display->window, state == VM_STATE_ACTIVE ?
					   "running" : vm_state_name(state));
}

static int save(void *opaque, struct device_state_writer *writer)
{
	struct display *display = opaque;

	return framebuffer_save(&display->framebuffer, writer);
}

/* The guest's pixels come back behind the dirty log's back: the window
 * uploads them all. */
static int restore(void *opaque, struct device_state_reader *reader)
{
	struct display *display = opaque;
	int result = framebuffer_restore(&display->framebuffer, reader);

	if (!result)
		display_sdl_redraw(display->window);
	return result;
}

static const struct device_ops display_record_ops = {
	.save = save,
	.restore = restore,
	.state_version = 1,
};

struct device_record display_record(struct display *display, const char *name)
{
	return (struct device_record){ .name = name, .ops = &display_record_ops,
				       .opaque = display };
}

const struct boot_framebuffer *display_boot_framebuffer(
	const struct display *display)
{
	return display ? &display->boot : NULL;
}
