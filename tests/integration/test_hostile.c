/*
 * A hostile guest can neither stall nor bloat vessel. The selftest guest's
 * mode=flood (guests/selftest/flood.c) keeps the virtio-rng queue and the
 * first disk's queue full of valid and malformed requests at full speed,
 * among them 64 MiB reads into an unaligned buffer from a cache=none disk,
 * while it reads a second disk one 4 KiB read at a time and prints that
 * disk's reads a second. Run on this machine's own /dev/kvm, vessel must:
 *
 * - end within a second of SIGTERM in the middle of the flood, as signals
 *   are handled by the event thread the devices share;
 * - keep serving the second disk at a useful rate: a tenth, at least, of
 *   what the same guest gets without the flood (mode=flood calm), side by
 *   side on the same machine, as its load varies;
 * - keep its peak resident memory (VmHWM) under PEAK_RSS_LIMIT_KIB.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "guest_session.h"

#define TIMEOUT 60
#define MIB (1024 * 1024)

/* The first disk: 64 MiB of data that the guest's big reads cover (holes
 * would be read as zeros without O_DIRECT's alignment checks), then
 * holes to 256 MiB for its 4 KiB reads. */
#define FLOOD_DISK_DATA_BYTES (64 * MIB)
#define FLOOD_DISK_BYTES (256 * MIB)
/* The second disk: every 512-byte sector starts with its number. */
#define CALM_DISK_BYTES (8 * MIB)
#define SECTOR_SIZE 512

/* Report lines (one a second) each run averages, after the first, which
 * covers the start-up. */
#define REPORTS 4
/* The flooded second disk must keep this fraction of its calm rate. */
#define USEFUL_RATE_DIVISOR 10
/* A read every 50 ms at least: the calm rate swings tenfold with the
 * machine's load (150 to 3,000 reads/s here), so a fixed floor decides
 * when the calm run was a fast one. The unbounded flood gave 0-1. */
#define USEFUL_RATE_FLOOR 20.0
#define SIGTERM_EXIT_SECONDS 1.0
/* How long a vessel that outlives SIGTERM is given before SIGKILL. */
#define SIGTERM_PATIENCE_SECONDS 30
/*
 * The guest has 64 MiB of RAM, all of it resident at worst; vessel itself
 * (code, libraries, thread stacks, device state) stays near 10 MiB with
 * the guest's pages included. The other 64 MiB leave room for the
 * requests in flight, bounce buffers included, as long as vessel bounds
 * them; one of the flood's four 64 MiB unaligned reads alone would fill
 * it if vessel copied it whole.
 */
#define GUEST_MEMORY "64M"
#define PEAK_RSS_LIMIT_KIB ((64 + 64) * 1024)

static char image_dir[] = "/var/tmp/vessel-hostile-XXXXXX";
static char flood_image[sizeof(image_dir) + 16];
static char calm_image[sizeof(image_dir) + 16];

static double now_seconds(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)now.tv_sec + now.tv_nsec / 1e9;
}

static void write_all(int fd, const void *data, size_t size, const char *path)
{
	const char *bytes = data;

	while (size) {
		ssize_t written = write(fd, bytes, size);
		cr_assert_gt(written, 0, "writing %s: %s", path, strerror(errno));
		bytes += written;
		size -= (size_t)written;
	}
}

static void make_flood_image(void)
{
	static uint8_t chunk[MIB];
	int fd = open(flood_image, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	cr_assert_geq(fd, 0, "%s: %s", flood_image, strerror(errno));
	for (size_t i = 0; i < sizeof(chunk); i++)
		chunk[i] = (uint8_t)(i * 7 + 1);
	for (size_t done = 0; done < FLOOD_DISK_DATA_BYTES; done += sizeof(chunk))
		write_all(fd, chunk, sizeof(chunk), flood_image);
	cr_assert_eq(ftruncate(fd, FLOOD_DISK_BYTES), 0, "%s: %s", flood_image,
		     strerror(errno));
	close(fd);
}

static void make_calm_image(void)
{
	static uint8_t sectors[CALM_DISK_BYTES];
	int fd = open(calm_image, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	cr_assert_geq(fd, 0, "%s: %s", calm_image, strerror(errno));
	for (uint64_t sector = 0; sector < CALM_DISK_BYTES / SECTOR_SIZE;
	     sector++) {
		uint8_t *start = sectors + sector * SECTOR_SIZE;
		for (int i = 0; i < 8; i++)
			start[i] = (uint8_t)(sector >> (8 * i));
	}
	write_all(fd, sectors, sizeof(sectors), calm_image);
	close(fd);
}

/* In /var/tmp, not /tmp: cache=none opens the image with O_DIRECT, which
 * tmpfs refuses. */
static void make_images(void)
{
	cr_assert(mkdtemp(image_dir), "mkdtemp: %s", strerror(errno));
	snprintf(flood_image, sizeof(flood_image), "%s/flood.img", image_dir);
	snprintf(calm_image, sizeof(calm_image), "%s/calm.img", image_dir);
	make_flood_image();
	make_calm_image();
}

static void remove_images(void)
{
	unlink(flood_image);
	unlink(calm_image);
	rmdir(image_dir);
}

TestSuite(hostile, .init = make_images, .fini = remove_images);

static void start_flood_guest(struct guest_session *session, const char *cmdline)
{
	const char *guest = getenv("VESSEL_SELFTEST_GUEST");
	char flood_disk[sizeof(flood_image) + 16];
	snprintf(flood_disk, sizeof(flood_disk), "%s,cache=none", flood_image);
	char *argv[] = { "vessel", "run", "--kernel", (char *)guest,
			 "--memory", GUEST_MEMORY, "--cmdline", (char *)cmdline,
			 "--disk", flood_disk, "--disk", calm_image, NULL };

	cr_assert(guest, "VESSEL_SELFTEST_GUEST is not set");
	cr_assert_eq(guest_session_start(session, argv), 0);
}

/* What the guest printed in its report lines, added up. */
struct flood_figures {
	unsigned long reads, wrong, rng_requests, disk_requests;
	unsigned int reports;
};

/* Reads the next report line, which starts with prefix; false when none
 * came in time. */
static bool add_report(struct guest_session *session, const char *prefix,
		       struct flood_figures *figures)
{
	unsigned long reads, wrong, rng_requests, disk_requests;

	if (!guest_session_expect(session, prefix, TIMEOUT))
		return false;
	size_t line = session->search_from;
	if (!guest_session_expect(session, " requests/s\n", TIMEOUT))
		return false;
	if (sscanf(session->output + line,
		   "%lu reads/s, %lu wrong; rng %lu, first disk %lu requests/s",
		   &reads, &wrong, &rng_requests, &disk_requests) != 4)
		return false;
	figures->reads += reads;
	figures->wrong += wrong;
	figures->rng_requests += rng_requests;
	figures->disk_requests += disk_requests;
	figures->reports++;
	return true;
}

/* The first report, which covers the start, is left out. */
static struct flood_figures read_reports(struct guest_session *session,
					 const char *prefix)
{
	struct flood_figures start = { 0 }, figures = { 0 };

	cr_assert(add_report(session, prefix, &start), "no report line:\n%s",
		  session->output);
	while (figures.reports < REPORTS)
		cr_assert(add_report(session, prefix, &figures),
			  "report line %u missing:\n%s", figures.reports + 1,
			  session->output);
	return figures;
}

/* VmHWM of /proc/PID/status in KiB, or 0 when it cannot be read. */
static unsigned long peak_rss_kib(pid_t pid)
{
	char path[64], line[256];
	unsigned long kib = 0;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	FILE *status = fopen(path, "re");
	if (!status)
		return 0;
	while (fgets(line, sizeof(line), status))
		if (sscanf(line, "VmHWM: %lu kB", &kib) == 1)
			break;
	fclose(status);
	return kib;
}

Test(hostile, flood_neither_stalls_nor_bloats_vessel)
{
	struct guest_session session;
	char cmdline[64];

	/* The second disk alone, for its rate without the flood. */
	snprintf(cmdline, sizeof(cmdline), "mode=flood %d calm", REPORTS + 1);
	start_flood_guest(&session, cmdline);
	struct flood_figures calm =
		read_reports(&session, "selftest: calm: second disk ");
	cr_assert_eq(guest_session_wait(&session, TIMEOUT), 0, "%s",
		     session.output);
	guest_session_close(&session);

	start_flood_guest(&session, "mode=flood");
	struct flood_figures flood =
		read_reports(&session, "selftest: flood: second disk ");
	unsigned long peak_kib = peak_rss_kib(session.pid);
	double sent = now_seconds();
	cr_assert_eq(kill(session.pid, SIGTERM), 0);
	int status = guest_session_wait(&session, SIGTERM_PATIENCE_SECONDS);
	double exit_seconds = now_seconds() - sent;
	/* vessel gives a malformed chain back and goes on with the queue
	 * (devices/virtio/virtqueue.h); the flood never breaks a ring itself,
	 * as it makes available only what came back. */
	cr_expect_null(strstr(session.output, "needs a reset"),
		       "a device stopped serving:\n%s", session.output);
	guest_session_close(&session);

	double calm_rate = (double)calm.reads / calm.reports;
	double flood_rate = (double)flood.reads / flood.reports;
	fprintf(stderr,
		"hostile: vessel ended %.3f s after SIGTERM%s; second disk %.0f "
		"reads/s calm, %.0f flooded; rng %.0f, first disk %.0f "
		"requests/s; peak RSS %lu KiB\n",
		exit_seconds, status < 0 ? " (by SIGKILL)" : "", calm_rate,
		flood_rate, (double)flood.rng_requests / flood.reports,
		(double)flood.disk_requests / flood.reports, peak_kib);

	cr_expect_eq(calm.wrong + flood.wrong, 0,
		     "the second disk returned wrong data or errors %lu times",
		     calm.wrong + flood.wrong);
	cr_expect(flood.rng_requests > 0 && flood.disk_requests > 0,
		  "the flooded devices were not all served: rng %lu, first "
		  "disk %lu requests",
		  flood.rng_requests, flood.disk_requests);
	cr_expect(status == 128 + SIGTERM && exit_seconds < SIGTERM_EXIT_SECONDS,
		  "vessel ended %.1f s after SIGTERM with status %d, not within "
		  "%.0f s by the signal",
		  exit_seconds, status, SIGTERM_EXIT_SECONDS);
	cr_expect(calm.reads > 0, "the second disk served nothing without flood");
	cr_expect(flood_rate * USEFUL_RATE_DIVISOR >= calm_rate ||
		  flood_rate >= USEFUL_RATE_FLOOR,
		  "the flood cut the second disk from %.0f to %.0f reads/s",
		  calm_rate, flood_rate);
	/* AddressSanitizer's shadow memory is no part of vessel's: the bound
	 * is checked on the plain build (the integration suite runs both). */
	if (!getenv("ASAN_OPTIONS"))
		cr_expect(peak_kib > 0 && peak_kib < PEAK_RSS_LIMIT_KIB,
			  "vessel's peak RSS is %lu KiB, the limit %d KiB",
			  peak_kib, PEAK_RSS_LIMIT_KIB);
}
