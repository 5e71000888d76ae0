#include "dynamic_library.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

int dynamic_library_load(const char *library,
			 const struct dynamic_symbol *symbols, size_t count,
			 void *calls, char *err, size_t err_len)
{
	/* Never closed: the calls stay valid for the process's life, and a
	 * second load of the same library only counts a reference. */
	void *handle = dlopen(library, RTLD_NOW | RTLD_LOCAL);

	if (!handle) {
		snprintf(err, err_len, "cannot load %s (%s)", library, dlerror());
		return -ENOENT;
	}
	for (size_t i = 0; i < count; i++) {
		void *address = dlsym(handle, symbols[i].name);

		if (!address) {
			snprintf(err, err_len, "%s has no %s", library,
				 symbols[i].name);
			return -ENOENT;
		}
		/* dlsym() returns an object pointer, which POSIX lets a
		 * function pointer be read through. */
		memcpy((char *)calls + symbols[i].offset, &address,
		       sizeof(address));
	}
	return 0;
}

int dynamic_library_load_once(bool *loaded, const char *library,
			      const struct dynamic_symbol *symbols, size_t count,
			      void *calls, char *err, size_t err_len)
{
	if (*loaded)
		return 0;
	int result = dynamic_library_load(library, symbols, count, calls, err,
					  err_len);
	*loaded = result == 0;
	return result;
}
