/*
 * Loading a library when a feature is used: each call found by its
 * symbol, and a missing library or symbol named in the error.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>

#include "devices/dynamic_library.h"

struct libc_calls {
	pid_t (*getpid)(void);
	size_t (*strlen)(const char *text);
};

static const struct dynamic_symbol libc_symbols[] = {
	{ "getpid", offsetof(struct libc_calls, getpid) },
	{ "strlen", offsetof(struct libc_calls, strlen) },
};

Test(dynamic_library, every_call_is_found_and_works)
{
	struct libc_calls calls = { 0 };
	char err[128] = "";

	cr_assert_eq(dynamic_library_load("libc.so.6", libc_symbols, 2, &calls,
					  err, sizeof(err)), 0, "%s", err);
	cr_assert_eq(calls.getpid(), getpid());
	cr_assert_eq(calls.strlen("vessel"), 6);
}

Test(dynamic_library, a_missing_library_is_named)
{
	struct libc_calls calls = { 0 };
	char err[256] = "";

	cr_assert_eq(dynamic_library_load("libvessel-missing.so.9", libc_symbols,
					  2, &calls, err, sizeof(err)), -ENOENT);
	cr_assert(strstr(err, "cannot load libvessel-missing.so.9"), "%s", err);
	cr_assert_null(calls.getpid);
}

Test(dynamic_library, a_missing_symbol_is_named)
{
	static const struct dynamic_symbol symbols[] = {
		{ "getpid", offsetof(struct libc_calls, getpid) },
		{ "vessel_no_such_call", offsetof(struct libc_calls, strlen) },
	};
	struct libc_calls calls = { 0 };
	char err[256] = "";

	cr_assert_eq(dynamic_library_load("libc.so.6", symbols, 2, &calls, err,
					  sizeof(err)), -ENOENT);
	cr_assert_str_eq(err, "libc.so.6 has no vessel_no_such_call");
}

Test(dynamic_library, loaded_once_it_is_not_loaded_again)
{
	struct libc_calls calls = { 0 };
	bool loaded = false;
	char err[256] = "";

	cr_assert_eq(dynamic_library_load_once(&loaded, "libvessel-missing.so.9",
					       libc_symbols, 2, &calls, err,
					       sizeof(err)), -ENOENT);
	cr_assert_not(loaded);
	cr_assert_eq(dynamic_library_load_once(&loaded, "libc.so.6", libc_symbols,
					       2, &calls, err, sizeof(err)), 0);
	cr_assert(loaded);
	calls.getpid = NULL;
	cr_assert_eq(dynamic_library_load_once(&loaded, "libc.so.6", libc_symbols,
					       2, &calls, err, sizeof(err)), 0);
	cr_assert_null(calls.getpid, "a library loaded once is not loaded again");
}
