/*
 * The `vessel run` command line, parsed into a machine configuration, and
 * the value checks that the command line and the API's JSON share.
 *
 * Promise: options_parse_run() either fills a complete, owned configuration
 * (vm_config.h) with every value range-checked, or returns -EINVAL with one
 * line in err naming the option and the value that is wrong, and nothing to
 * release. It touches no file: checks that need the kernel or the host
 * (sizes, limits) are made by vmm/config.c.
 */
#ifndef VESSEL_VMM_OPTIONS_H
#define VESSEL_VMM_OPTIONS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "vm_config.h"

#define OPTIONS_DEFAULT_MEMORY (512ULL << 20)
#define OPTIONS_DEFAULT_NAME "vessel"
#define OPTIONS_DEFAULT_CMDLINE "console=ttyS0 reboot=k panic=1"

enum options_result {
	OPTIONS_OK,
	OPTIONS_HELP, /* --help was given: usage printed, exit 0 */
};

/* What `vessel run` takes beside the machine's configuration. */
struct run_options {
	const char *api_socket; /* --api-sock, into argv; NULL: no API */
	mode_t api_socket_mode; /* --api-sock-mode; 0: the API's default */
	bool paused; /* --paused: the vCPUs start parked */
};

/* argv[0] is "run". On success returns OPTIONS_OK (config to be released
 * with vm_config_release()) or OPTIONS_HELP (nothing to release). run
 * receives the options that are not the machine's (NULL: ignore them). */
int options_parse_run(int argc, char **argv, struct vm_config *config,
		      struct run_options *run, char *err, size_t err_len);

/* Points *slot at a copy of text (freeing what it held): 0, or -ENOMEM
 * with err. */
int options_own_string(char **slot, const char *text, char *err,
		       size_t err_len);

/* For a subcommand's getopt_long loop: prints the one line that says what
 * is wrong with the option getopt refused (':' for a missing value, '?'
 * for an unknown option; argv[optind - 1] names it) and returns 2, the
 * exit status of a bad command line. */
int options_report_refused(const char *command, int refusal, char **argv);

/* --api-sock-mode: octal permission bits. 0 or -EINVAL with err. */
int options_parse_socket_mode(const char *text, mode_t *mode, char *err,
			      size_t err_len);

/* "512M", "2G", "1048576" (bytes), "64K": 0 or -EINVAL. */
int options_parse_size(const char *text, uint64_t *bytes);

void options_print_run_usage(void);

/* What a configuration holds before any option: 0, or -ENOMEM with config
 * holding nothing to release. */
int options_config_defaults(struct vm_config *config, char *err,
			    size_t err_len);
/* A NIC before its options; index is its 0-based position. */
void options_net_defaults(unsigned int index, struct net_config *net);

/*
 * One check per value, shared by the command line and vm_config_from_json():
 * each returns 0 or -EINVAL with one line in err that starts with field
 * ("--cpus", "--disk /img: serial", "nets[1].mac") and quotes text.
 */
int options_parse_memory(const char *field, const char *text,
			 uint64_t *bytes, char *err, size_t err_len);
int options_parse_cpu_count(const char *field, const char *text,
			    unsigned int *count, char *err, size_t err_len);
int options_parse_disk_serial(const char *field, const char *text,
			      struct disk_config *disk, char *err,
			      size_t err_len);
/* "writeback" or "none" into disk->direct; 0 or -EINVAL, no message. */
int options_parse_disk_cache(const char *text, struct disk_config *disk);
/* "1" to OPTIONS_MAX_DISK_QUEUES into disk->queues; field names it in
 * err. */
int options_parse_disk_queues(const char *field, const char *text,
			      struct disk_config *disk, char *err,
			      size_t err_len);
int options_parse_mac(const char *field, const char *text, uint8_t mac[6],
		      char *err, size_t err_len);
/* Appends one hostfwd rule (net_hostfwd_parse() syntax) to user. */
int options_add_hostfwd(const char *field, const char *text,
			struct net_slirp_options *user, char *err,
			size_t err_len);
int options_check_ifname(const char *field, const char *text, char *err,
			 size_t err_len);
int options_parse_tap_fd(const char *field, const char *text, int *fd,
			 char *err, size_t err_len);
/* The NIC as a whole: a TAP NIC has exactly one of ifname and fd. field is
 * "--net tap" or "nets[0]". */
int options_check_net(const char *field, const struct net_config *net,
		      char *err, size_t err_len);

#endif
