#include "display_sdl.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <SDL.h>

#include "dynamic_library.h"

/* SDL2 is loaded by the first --display sdl only: linked in, it and the
 * libraries it needs (X11, Wayland, PulseAudio, ALSA, systemd, ...) were
 * loaded into every VM (dynamic_library.h). */
#define SDL_LIBRARY "libSDL2-2.0.so.0"
#define SDL_CALLS(X)                                                          \
	X(CreateRenderer) X(CreateTexture) X(CreateWindow) X(DestroyRenderer) \
	X(DestroyTexture) X(DestroyWindow) X(GetCurrentDisplayMode)           \
	X(GetCurrentVideoDriver) X(GetError) X(GetMouseState) X(GetTicks64)   \
	X(GetWindowDisplayIndex) X(Init) X(PollEvent) X(PushEvent) X(Quit)    \
	X(RegisterEvents) X(RenderClear) X(RenderCopy) X(RenderPresent)       \
	X(RenderSetLogicalSize) X(SetHint) X(SetRelativeMouseMode)            \
	X(SetWindowGrab) X(SetWindowTitle) X(UpdateTexture)                   \
	X(WaitEventTimeout)

static struct sdl_calls {
#define SDL_CALL_MEMBER(name) __typeof__(SDL_##name) *name;
	SDL_CALLS(SDL_CALL_MEMBER)
#undef SDL_CALL_MEMBER
} sdl;

static int load_sdl(char *err, size_t err_len)
{
#define SDL_CALL_SYMBOL(name) { "SDL_" #name, offsetof(struct sdl_calls, name) },
	static const struct dynamic_symbol symbols[] = { SDL_CALLS(SDL_CALL_SYMBOL) };
#undef SDL_CALL_SYMBOL
	/* Displays are made by the machine's owner, one at a time. */
	static bool loaded;

	return dynamic_library_load_once(&loaded, SDL_LIBRARY, symbols,
					 sizeof(symbols) / sizeof(symbols[0]),
					 &sdl, err, err_len);
}

/* Without a refresh rate from the display (Xvfb reports none). */
#define DEFAULT_REFRESH_HZ 60
#define MAX_DIRTY_RECTS 16
/* The grab hotkey is Ctrl+Alt+G, as in QEMU's SDL display. */
#define GRAB_KEY SDL_SCANCODE_G
/* Key events held while the guest's keyboard buffer is full: about 16
 * shifted characters typed ahead of a slow guest. */
#define KEY_BACKLOG 64

struct key_event {
	uint16_t usage;
	bool pressed;
};

struct display_sdl {
	struct display_sdl_options options;
	pthread_t thread;
	atomic_bool stopping;
	Uint32 wake_event; /* an SDL user event that ends a wait */
	/* Set from any thread: the whole framebuffer changed behind the dirty
	 * log's back (a restore wrote it), so the next refresh uploads it
	 * all. */
	atomic_bool redraw_all;

	/* Start-up handshake: the thread reports whether the window opened. */
	pthread_mutex_t lock;
	pthread_cond_t started;
	bool start_done;
	int start_result;
	char start_error[160];
	/* The VM's state for the title, set from any thread; the display
	 * thread reads it when woken. Under lock. */
	char state[DISPLAY_SDL_STATE_SIZE];

	/* Owned by the display thread from here on. */
	SDL_Window *window;
	SDL_Renderer *renderer;
	SDL_Texture *texture;
	uint64_t *dirty_bitmap;
	bool grabbed;
	bool pressed[SDL_NUM_SCANCODES]; /* keys the guest was told are down */
	struct key_event backlog[KEY_BACKLOG]; /* not yet taken, oldest first */
	unsigned int backlog_head;
	unsigned int backlog_count;
	bool needs_present; /* the window must be drawn again (exposed) */
	bool fetch_failed; /* said once until a fetch works again */
};

static Uint32 texture_format(const struct framebuffer_format *format)
{
	switch (format->depth) {
	case 16:
		return SDL_PIXELFORMAT_RGB565;
	case 24:
		/* Little-endian r8g8b8: bytes B, G, R. */
		return SDL_PIXELFORMAT_BGR24;
	default:
		return SDL_PIXELFORMAT_RGB888; /* x8r8g8b8 */
	}
}

static void update_title(struct display_sdl *display)
{
	char title[256];
	char state[DISPLAY_SDL_STATE_SIZE];

	pthread_mutex_lock(&display->lock);
	memcpy(state, display->state, sizeof(state));
	pthread_mutex_unlock(&display->lock);
	snprintf(title, sizeof(title), "%s [%s] - vessel (%s)",
		 display->options.name, state,
		 display->grabbed ? "Ctrl+Alt+G releases the pointer" :
				    "Ctrl+Alt+G grabs the pointer");
	sdl.SetWindowTitle(display->window, title);
}

static void set_grab(struct display_sdl *display, bool grabbed)
{
	display->grabbed = grabbed;
	/* Relative mode hides the host pointer and reports motion beyond the
	 * window's edges, which a PS/2 mouse (relative) wants. */
	sdl.SetRelativeMouseMode(grabbed ? SDL_TRUE : SDL_FALSE);
	sdl.SetWindowGrab(display->window, grabbed ? SDL_TRUE : SDL_FALSE);
	update_title(display);
}

static int open_window(struct display_sdl *display)
{
	const struct framebuffer_mode *mode = &display->options.framebuffer->mode;

	/* vessel handles SIGINT and SIGTERM itself (a signalfd). */
	sdl.SetHint(SDL_HINT_NO_SIGNAL_HANDLERS, "1");
	if (sdl.Init(SDL_INIT_VIDEO)) {
		snprintf(display->start_error, sizeof(display->start_error),
			 "SDL: %s", sdl.GetError());
		return -ENODEV;
	}
	/* With no display to show it on, SDL falls back to a window nobody
	 * sees; unless the user chose such a driver, that is an error. */
	const char *driver = sdl.GetCurrentVideoDriver();
	if (!getenv("SDL_VIDEODRIVER") &&
	    (!strcmp(driver, "offscreen") || !strcmp(driver, "dummy"))) {
		snprintf(display->start_error, sizeof(display->start_error),
			 "SDL: no display to open a window on (DISPLAY and WAYLAND_DISPLAY are unset or unreachable)");
		return -ENODEV;
	}
	display->wake_event = sdl.RegisterEvents(1);
	display->window = sdl.CreateWindow("vessel", SDL_WINDOWPOS_UNDEFINED,
					   SDL_WINDOWPOS_UNDEFINED,
					   (int)mode->width, (int)mode->height,
					   SDL_WINDOW_RESIZABLE);
	if (display->window)
		display->renderer = sdl.CreateRenderer(display->window, -1, 0);
	if (display->renderer &&
	    sdl.RenderSetLogicalSize(display->renderer, (int)mode->width,
				     (int)mode->height) == 0)
		display->texture = sdl.CreateTexture(
			display->renderer, texture_format(&mode->format),
			SDL_TEXTUREACCESS_STREAMING, (int)mode->width,
			(int)mode->height);
	if (!display->texture || display->wake_event == (Uint32)-1) {
		snprintf(display->start_error, sizeof(display->start_error),
			 "SDL window of %ux%u: %s", mode->width, mode->height,
			 sdl.GetError());
		return -ENODEV;
	}
	update_title(display);
	return 0;
}

static void close_window(struct display_sdl *display)
{
	if (display->texture)
		sdl.DestroyTexture(display->texture);
	if (display->renderer)
		sdl.DestroyRenderer(display->renderer);
	if (display->window)
		sdl.DestroyWindow(display->window);
	sdl.Quit();
}

/* Milliseconds between refreshes: the display's rate, or 60 Hz. */
static Uint32 refresh_interval(struct display_sdl *display)
{
	SDL_DisplayMode mode;
	int index = sdl.GetWindowDisplayIndex(display->window);

	if (index < 0 || sdl.GetCurrentDisplayMode(index, &mode) ||
	    mode.refresh_rate <= 0)
		return 1000 / DEFAULT_REFRESH_HZ;
	return 1000 / (Uint32)mode.refresh_rate;
}

static void upload(struct display_sdl *display,
		   const struct framebuffer_rect *rect)
{
	const struct framebuffer *framebuffer = display->options.framebuffer;
	const struct framebuffer_mode *mode = &framebuffer->mode;
	SDL_Rect area = { (int)rect->x, (int)rect->y, (int)rect->width,
			  (int)rect->height };
	const uint8_t *pixels = framebuffer->pixels +
				(size_t)rect->y * mode->line_length +
				(size_t)rect->x * (mode->format.depth / 8);

	sdl.UpdateTexture(display->texture, &area, pixels,
			  (int)mode->line_length);
}

/* One refresh: what the guest drew since the last one goes to the
 * texture, and the window is drawn again if anything changed. */
static void refresh(struct display_sdl *display)
{
	const struct framebuffer_mode *mode = &display->options.framebuffer->mode;
	struct framebuffer_rect rects[MAX_DIRTY_RECTS];
	unsigned int count = 0;

	int ret = display->options.fetch_dirty(display->options.opaque,
					       display->dirty_bitmap);

	/* Fetched first all the same, so the log holds nothing stale. */
	if (ret == 0 && atomic_exchange(&display->redraw_all, false))
		memset(display->dirty_bitmap, 0xff,
		       framebuffer_dirty_bitmap_words(mode) * sizeof(uint64_t));
	if (ret == 0)
		count = framebuffer_dirty_rects(mode, display->dirty_bitmap,
						mode->size / FRAMEBUFFER_PAGE_SIZE,
						rects, MAX_DIRTY_RECTS);
	else if (!display->fetch_failed)
		fprintf(stderr, "vessel: display: reading the framebuffer's dirty log: %s\n",
			strerror(-ret));
	display->fetch_failed = ret != 0;
	for (unsigned int i = 0; i < count; i++)
		upload(display, &rects[i]);
	if (count == 0 && !display->needs_present)
		return;
	sdl.RenderClear(display->renderer);
	sdl.RenderCopy(display->renderer, display->texture, NULL, NULL);
	sdl.RenderPresent(display->renderer);
	display->needs_present = false;
}

/* Offers the held keys to the guest's keyboard, oldest first, until it
 * has no room. */
static void send_backlog(struct display_sdl *display)
{
	while (display->backlog_count > 0) {
		const struct key_event *event =
			&display->backlog[display->backlog_head];

		if (!display->options.key(display->options.opaque, event->usage,
					  event->pressed))
			return;
		display->backlog_head = (display->backlog_head + 1) % KEY_BACKLOG;
		display->backlog_count--;
	}
}

/* A key for the guest, in order after those held: a guest that reads its
 * keyboard slower than keys come (a busy or emulated one) gets them late
 * rather than losing some, which would leave a Shift's break behind and
 * the key held in the guest. Past the backlog a key is lost, as a real
 * keyboard's full buffer loses it. */
static void send_key(struct display_sdl *display, uint16_t usage, bool pressed)
{
	send_backlog(display);
	if (display->backlog_count == 0 &&
	    display->options.key(display->options.opaque, usage, pressed))
		return;
	if (display->backlog_count == KEY_BACKLOG)
		return;
	display->backlog[(display->backlog_head + display->backlog_count) %
			 KEY_BACKLOG] = (struct key_event){ usage, pressed };
	display->backlog_count++;
}

/* SDL's scancodes are the USB HID keyboard usages the keyboard takes;
 * SDL repeats a held key with repeat set, which the guest sees as the
 * keyboard's typematic repeat. */
static void handle_key(struct display_sdl *display, const SDL_KeyboardEvent *key)
{
	if (key->type == SDL_KEYDOWN && key->keysym.scancode == GRAB_KEY &&
	    (key->keysym.mod & KMOD_CTRL) && (key->keysym.mod & KMOD_ALT)) {
		if (!key->repeat)
			set_grab(display, !display->grabbed);
		return;
	}
	SDL_Scancode code = key->keysym.scancode;
	if (code <= SDL_SCANCODE_UNKNOWN || code >= SDL_NUM_SCANCODES)
		return;
	/* No break for a key the guest never saw go down: the hotkey's G,
	 * or a key held as the window got the focus. */
	if (key->type == SDL_KEYUP && !display->pressed[code])
		return;
	display->pressed[code] = key->type == SDL_KEYDOWN;
	send_key(display, (uint16_t)code, key->type == SDL_KEYDOWN);
}

/* Keys still held when the window loses the focus are released for the
 * guest, which would otherwise see them down until they are pressed
 * again (Alt after Alt+Tab, say). */
static void release_keys(struct display_sdl *display)
{
	for (int code = 0; code < SDL_NUM_SCANCODES; code++) {
		if (display->pressed[code]) {
			display->pressed[code] = false;
			send_key(display, (uint16_t)code, false);
		}
	}
}

static uint8_t ps2_buttons(Uint32 state)
{
	return (state & SDL_BUTTON_LMASK ? 0x01 : 0) |
	       (state & SDL_BUTTON_RMASK ? 0x02 : 0) |
	       (state & SDL_BUTTON_MMASK ? 0x04 : 0);
}

/* Motion and buttons go to the guest only while the pointer is grabbed:
 * a relative PS/2 mouse cannot follow an absolute host pointer. SDL's y
 * grows downwards and its wheel y away from the user; PS/2's y grows
 * upwards and its wheel counts towards the user. */
static void send_pointer(struct display_sdl *display, int32_t dx, int32_t dy,
			 int32_t wheel_away)
{
	if (!display->grabbed)
		return;
	display->options.pointer(display->options.opaque, dx, -dy, -wheel_away,
				 ps2_buttons(sdl.GetMouseState(NULL, NULL)));
}

static void handle_event(struct display_sdl *display, const SDL_Event *event)
{
	/* Woken by display_sdl_show_state (or to stop). */
	if (event->type == display->wake_event) {
		update_title(display);
		return;
	}
	switch (event->type) {
	case SDL_QUIT:
		display->options.close_requested(display->options.opaque);
		break;
	case SDL_WINDOWEVENT:
		/* SHOWN too: what was drawn before the window was mapped
		 * never reached the screen, and a server that keeps the
		 * window's contents sends no expose for it. */
		if (event->window.event == SDL_WINDOWEVENT_EXPOSED ||
		    event->window.event == SDL_WINDOWEVENT_SHOWN ||
		    event->window.event == SDL_WINDOWEVENT_SIZE_CHANGED)
			display->needs_present = true;
		else if (event->window.event == SDL_WINDOWEVENT_FOCUS_LOST) {
			release_keys(display);
			if (display->grabbed)
				set_grab(display, false);
		}
		break;
	case SDL_KEYDOWN:
	case SDL_KEYUP:
		handle_key(display, &event->key);
		break;
	case SDL_MOUSEMOTION:
		send_pointer(display, event->motion.xrel, event->motion.yrel, 0);
		break;
	case SDL_MOUSEWHEEL:
		send_pointer(display, 0, 0, event->wheel.y);
		break;
	case SDL_MOUSEBUTTONDOWN:
		/* A click in the window takes the pointer, as in QEMU; the
		 * click itself stays with the host. */
		if (!display->grabbed)
			set_grab(display, true);
		else
			send_pointer(display, 0, 0, 0);
		break;
	case SDL_MOUSEBUTTONUP:
		send_pointer(display, 0, 0, 0);
		break;
	default:
		break;
	}
}

static void report_start(struct display_sdl *display, int result)
{
	pthread_mutex_lock(&display->lock);
	display->start_result = result;
	display->start_done = true;
	pthread_cond_signal(&display->started);
	pthread_mutex_unlock(&display->lock);
}

static void *display_thread(void *opaque)
{
	struct display_sdl *display = opaque;
	int result = open_window(display);

	if (result) {
		close_window(display);
		report_start(display, result);
		return NULL;
	}
	report_start(display, 0);

	Uint32 interval = refresh_interval(display);
	Uint64 next_refresh = sdl.GetTicks64();
	display->needs_present = true;
	while (!atomic_load(&display->stopping)) {
		Uint64 now = sdl.GetTicks64();
		SDL_Event event;

		if (sdl.WaitEventTimeout(&event, next_refresh > now ?
						 (int)(next_refresh - now) : 0)) {
			do
				handle_event(display, &event);
			while (sdl.PollEvent(&event));
		}
		send_backlog(display);
		now = sdl.GetTicks64();
		if (now >= next_refresh) {
			refresh(display);
			next_refresh = now + interval;
		}
	}
	close_window(display);
	return NULL;
}

int display_sdl_create(struct display_sdl **result,
		       const struct display_sdl_options *options, char *err,
		       size_t err_len)
{
	const struct framebuffer_mode *mode = &options->framebuffer->mode;
	struct display_sdl *display = calloc(1, sizeof(*display));

	*result = NULL;
	if (!display) {
		snprintf(err, err_len, "out of memory for the display");
		return -ENOMEM;
	}
	int ret = load_sdl(err, err_len);
	if (ret) {
		free(display);
		return ret;
	}
	display->options = *options;
	snprintf(display->state, sizeof(display->state), "%s", options->state);
	display->dirty_bitmap = calloc(framebuffer_dirty_bitmap_words(mode),
				       sizeof(uint64_t));
	if (!display->dirty_bitmap) {
		free(display);
		snprintf(err, err_len, "out of memory for the display");
		return -ENOMEM;
	}
	pthread_mutex_init(&display->lock, NULL);
	pthread_cond_init(&display->started, NULL);
	ret = pthread_create(&display->thread, NULL, display_thread, display);
	if (ret) {
		snprintf(err, err_len, "starting the display thread: %s",
			 strerror(ret));
		display->start_result = -ret;
	} else {
		pthread_setname_np(display->thread, "display");
		pthread_mutex_lock(&display->lock);
		while (!display->start_done)
			pthread_cond_wait(&display->started, &display->lock);
		pthread_mutex_unlock(&display->lock);
		if (display->start_result) {
			pthread_join(display->thread, NULL);
			snprintf(err, err_len, "%s", display->start_error);
		}
	}
	if (display->start_result) {
		ret = display->start_result;
		pthread_cond_destroy(&display->started);
		pthread_mutex_destroy(&display->lock);
		free(display->dirty_bitmap);
		free(display);
		return ret;
	}
	*result = display;
	return 0;
}

void display_sdl_show_state(struct display_sdl *display, const char *state)
{
	pthread_mutex_lock(&display->lock);
	snprintf(display->state, sizeof(display->state), "%s", state);
	pthread_mutex_unlock(&display->lock);
	/* SDL_PushEvent is safe from any thread; the display thread wakes
	 * and sets the title (SDL's window calls stay on that thread). */
	SDL_Event wake = { .type = display->wake_event };
	sdl.PushEvent(&wake);
}

void display_sdl_redraw(struct display_sdl *display)
{
	atomic_store(&display->redraw_all, true);
}

void display_sdl_destroy(struct display_sdl *display)
{
	if (!display)
		return;
	atomic_store(&display->stopping, true);
	SDL_Event wake = { .type = display->wake_event };
	sdl.PushEvent(&wake);
	pthread_join(display->thread, NULL);
	pthread_cond_destroy(&display->started);
	pthread_mutex_destroy(&display->lock);
	free(display->dirty_bitmap);
	free(display);
}
