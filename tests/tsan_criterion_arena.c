/*
 * Lets criterion start under ThreadSanitizer: preloaded (LD_PRELOAD) into
 * the unit tests of a -Db_sanitize=thread build by the `tsan` test setup.
 *
 * Criterion's BoxFort maps an "inheritable arena" that its test processes
 * share at the same address: it draws the address at random between
 * 0x2000'0000'0000 and 0x6000'0000'0000 in 16 MiB steps (rand_r), gives up
 * after ten draws that land on mapped memory, and maps it with MAP_FIXED.
 * ThreadSanitizer keeps most of that range for its shadow and refuses
 * MAP_FIXED outside application memory, so criterion fails with "Could not
 * initialize inheritable arena" nine times out of ten (criterion issue
 * 274). This rand_r draws again, in BoxFort's formula, until the address
 * is one that ThreadSanitizer's mmap leaves where it was asked (a hint it
 * refuses, it moves). Nothing else in the tests calls rand_r.
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>

#define ARENA_BASE UINT64_C(0x200000000000)
#define ARENA_STEP (UINT64_C(1) << 24)
#define ARENA_DRAW_MASK 0x3fffff
#define ARENA_SIZE (32 * 4096) /* its first size; it grows in place */
#define MAX_DRAWS 100000

int rand_r(unsigned int *seed);

static int arena_fits(uint64_t address)
{
	void *probe = mmap((void *)(uintptr_t)address, ARENA_SIZE, PROT_NONE,
			   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	if (probe == MAP_FAILED)
		return 0;
	munmap(probe, ARENA_SIZE);
	return probe == (void *)(uintptr_t)address;
}

int rand_r(unsigned int *seed)
{
	int (*next_rand_r)(unsigned int *) =
		(int (*)(unsigned int *))dlsym(RTLD_NEXT, "rand_r");
	int value = 0;

	for (int draw = 0; draw < MAX_DRAWS; draw++) {
		value = next_rand_r(seed);
		if (arena_fits(ARENA_BASE +
			       (uint64_t)(value & ARENA_DRAW_MASK) * ARENA_STEP))
			break;
	}
	return value;
}
