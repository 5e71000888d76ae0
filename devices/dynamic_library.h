/*
 * Libraries loaded when a feature is used rather than at start: a library
 * linked into vessel costs every VM its resident memory and start-up
 * time, with all it pulls in, whether the VM uses it or not. SDL2 brings
 * about fifty libraries (X11, Wayland, PulseAudio, ALSA, systemd, ...),
 * libslirp brings GLib. A caller lists the calls it needs in a struct of
 * function pointers and their symbols; the library stays loaded for the
 * process's life.
 */
#ifndef VESSEL_DEVICES_DYNAMIC_LIBRARY_H
#define VESSEL_DEVICES_DYNAMIC_LIBRARY_H

#include <stdbool.h>
#include <stddef.h>

struct dynamic_symbol {
	const char *name;
	size_t offset; /* of its function pointer in the caller's struct */
};

/* Loads library (a soname such as "libSDL2-2.0.so.0") and writes each
 * symbol's address at its offset in calls. 0, or -ENOENT with err naming
 * the library or the symbol it lacks. */
int dynamic_library_load(const char *library,
			 const struct dynamic_symbol *symbols, size_t count,
			 void *calls, char *err, size_t err_len);

/* dynamic_library_load until it has worked once, *loaded saying whether it
 * has: for a module that loads its library when a VM first asks for it.
 * Called by one thread at a time. */
int dynamic_library_load_once(bool *loaded, const char *library,
			      const struct dynamic_symbol *symbols, size_t count,
			      void *calls, char *err, size_t err_len);

#endif
