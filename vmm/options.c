#include "options.h"

#include <errno.h>
#include <getopt.h>
#include <net/if.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int options_parse_size(const char *text, uint64_t *bytes)
{
	char *end;
	unsigned int shift = 0;

	if (!*text || *text == '-' || *text == '+' || *text == ' ')
		return -EINVAL;
	errno = 0;
	unsigned long long value = strtoull(text, &end, 10);
	if (errno || end == text)
		return -EINVAL;
	switch (*end) {
	case 'K': case 'k': shift = 10; end++; break;
	case 'M': case 'm': shift = 20; end++; break;
	case 'G': case 'g': shift = 30; end++; break;
	case 'T': case 't': shift = 40; end++; break;
	default: break;
	}
	if (*end == 'i' && shift && end[1] == 'B')
		end += 2;
	else if (*end == 'B' && shift)
		end++;
	if (*end || value > (UINT64_MAX >> shift))
		return -EINVAL;
	*bytes = (uint64_t)value << shift;
	return 0;
}

void options_print_run_usage(void)
{
	printf("Usage: vessel run --kernel PATH [options]\n"
	       "\n"
	       "Boot a Linux kernel in a new virtual machine with its serial console\n"
	       "on this terminal. In a terminal, Ctrl-A x quits and Ctrl-A h lists the\n"
	       "other escapes.\n"
	       "\n"
	       "Options:\n"
	       "  -k, --kernel PATH        bzImage (Linux 64-bit boot protocol) or ELF\n"
	       "                           with a PVH entry note (required)\n"
	       "  -i, --initrd PATH        initial ramdisk\n"
	       "  -c, --cmdline TEXT       kernel command line\n"
	       "                           (default: \"" OPTIONS_DEFAULT_CMDLINE "\")\n"
	       "  -m, --memory SIZE        guest RAM, e.g. 512M, 2G (default: 512M)\n"
	       "  -n, --cpus N             vCPUs, 1 to %d (default: 1)\n"
	       "      --cpu-features LIST  hide (-name) or require (+name) CPUID\n"
	       "                           features, comma-separated, e.g. -xsave,-cx16\n"
	       "      --disk PATH[,readonly][,serial=ID][,cache=writeback|none][,queues=N]\n"
	       "                           a virtio-blk disk (raw image or block\n"
	       "                           device), repeatable: vda, vdb, ...;\n"
	       "                           N request queues (default: one per vCPU)\n"
	       "      --net user[,mac=MAC][,hostfwd=RULE]...[,restrict=on|off]\n"
	       "                           a virtio-net NIC on user-mode networking\n"
	       "                           (libslirp: NAT, DHCP 10.0.2.15, gateway\n"
	       "                           10.0.2.2, DNS 10.0.2.3, IPv6 fd00::/64);\n"
	       "                           RULE [tcp|udp]:[HOSTADDR]:PORT-[GUESTADDR]:PORT\n"
	       "                           forwards a host port to the guest;\n"
	       "                           restrict=on allows nothing but forwards\n"
	       "      --net tap,ifname=NAME|fd=N[,mac=MAC]\n"
	       "                           a virtio-net NIC on an existing TAP device\n"
	       "                           (with offloads); repeatable: eth0, eth1, ...\n"
	       "      --no-reboot          exit (status 0) when the guest reboots\n"
	       "      --api-sock PATH      serve the control API on this Unix socket\n"
	       "                           (docs/api.md; mode 0600 unless\n"
	       "                           --api-sock-mode says otherwise)\n"
	       "      --api-sock-mode MODE the socket's permissions, octal (0660)\n"
	       "      --paused             build the VM with its vCPUs parked: it\n"
	       "                           runs on `vessel resume` (or the API)\n"
	       "      --display none|sdl[,width=W][,height=H][,depth=16|24|32]\n"
	       "                           the guest's screen in an SDL window: a VESA\n"
	       "                           linear framebuffer (default 1024x768x32) and\n"
	       "                           a PS/2 keyboard and mouse (default: none)\n"
	       "      --name NAME          the VM's name, in the window title\n"
	       "                           (default: " OPTIONS_DEFAULT_NAME ")\n"
	       "  -h, --help               show this help\n"
	       "\n"
	       "Exit status: 0 when the guest powers off (or reboots with --no-reboot,\n"
	       "or Ctrl-A x, or a stop through the API), 1 on an error, 2 for a bad\n"
	       "command line, 128+N when ended by signal N.\n"
	       "\n"
	       "CPU feature names (as /proc/cpuinfo spells them):\n",
	       OPTIONS_MAX_CPUS);
	cpuid_print_feature_names();
}

enum {
	OPTION_CPU_FEATURES = 256,
	OPTION_NO_REBOOT,
	OPTION_DISK,
	OPTION_NET,
	OPTION_API_SOCK,
	OPTION_API_SOCK_MODE,
	OPTION_PAUSED,
	OPTION_DISPLAY,
	OPTION_NAME,
};

static const struct option run_options[] = {
	{ "kernel", required_argument, NULL, 'k' },
	{ "initrd", required_argument, NULL, 'i' },
	{ "cmdline", required_argument, NULL, 'c' },
	{ "memory", required_argument, NULL, 'm' },
	{ "cpus", required_argument, NULL, 'n' },
	{ "cpu-features", required_argument, NULL, OPTION_CPU_FEATURES },
	{ "no-reboot", no_argument, NULL, OPTION_NO_REBOOT },
	{ "disk", required_argument, NULL, OPTION_DISK },
	{ "net", required_argument, NULL, OPTION_NET },
	{ "api-sock", required_argument, NULL, OPTION_API_SOCK },
	{ "api-sock-mode", required_argument, NULL, OPTION_API_SOCK_MODE },
	{ "paused", no_argument, NULL, OPTION_PAUSED },
	{ "display", required_argument, NULL, OPTION_DISPLAY },
	{ "name", required_argument, NULL, OPTION_NAME },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

int options_report_refused(const char *command, int refusal, char **argv)
{
	if (refusal == ':')
		fprintf(stderr, "vessel %s: %s needs a value\n", command,
			argv[optind - 1]);
	else
		fprintf(stderr, "vessel %s: unknown option '%s' (see vessel %s "
			"--help)\n", command, argv[optind - 1], command);
	return 2;
}

int options_parse_socket_mode(const char *text, mode_t *mode, char *err,
			      size_t err_len)
{
	char *end;
	unsigned long value;

	errno = 0;
	value = strtoul(text, &end, 8);
	if (!*text || *end || errno || value > 0777 || value == 0) {
		snprintf(err, err_len,
			 "--api-sock-mode '%s': not permission bits in octal, "
			 "such as 0600 or 0660", text);
		return -EINVAL;
	}
	*mode = (mode_t)value;
	return 0;
}

int options_parse_memory(const char *field, const char *text,
			 uint64_t *bytes, char *err, size_t err_len)
{
	if (options_parse_size(text, bytes) || *bytes == 0) {
		snprintf(err, err_len,
			 "%s: '%s' is not a size (examples: 512M, 2G)", field,
			 text);
		return -EINVAL;
	}
	/* KVM memory slots are made of whole pages. */
	if (*bytes % 4096) {
		snprintf(err, err_len, "%s: '%s' is not a multiple of 4K", field,
			 text);
		return -EINVAL;
	}
	return 0;
}

int options_parse_disk_serial(const char *field, const char *text,
			      struct disk_config *disk, char *err,
			      size_t err_len)
{
	if (strlen(text) > OPTIONS_DISK_SERIAL_MAX) {
		snprintf(err, err_len, "%s '%s' is longer than %d bytes",
			 field, text, OPTIONS_DISK_SERIAL_MAX);
		return -EINVAL;
	}
	strcpy(disk->serial, text);
	return 0;
}

int options_parse_disk_cache(const char *text, struct disk_config *disk)
{
	if (!strcmp(text, "writeback"))
		disk->direct = false;
	else if (!strcmp(text, "none"))
		disk->direct = true;
	else
		return -EINVAL;
	return 0;
}

/* A count from 1 to max, in decimal. */
static int parse_count(const char *field, const char *text, long max,
		       unsigned int *count, char *err, size_t err_len)
{
	char *end;

	errno = 0;
	long value = strtol(text, &end, 10);
	if (errno || end == text || *end || value < 1 || value > max) {
		snprintf(err, err_len, "%s: '%s' is not a count from 1 to %ld",
			 field, text, max);
		return -EINVAL;
	}
	*count = (unsigned int)value;
	return 0;
}

int options_parse_disk_queues(const char *field, const char *text,
			      struct disk_config *disk, char *err,
			      size_t err_len)
{
	return parse_count(field, text, OPTIONS_MAX_DISK_QUEUES, &disk->queues,
			   err, err_len);
}

int options_own_string(char **slot, const char *text, char *err,
		       size_t err_len)
{
	char *copy = strdup(text);

	if (!copy) {
		snprintf(err, err_len, "out of memory");
		return -ENOMEM;
	}
	free(*slot);
	*slot = copy;
	return 0;
}

/* PATH[,readonly][,serial=ID][,cache=writeback|none][,queues=N]; text is
 * modified (the path is cut at the first comma). */
static int parse_disk(char *text, struct disk_config *disk, char *err,
		      size_t err_len)
{
	char *item = strchr(text, ',');
	char field[256];

	*disk = (struct disk_config){ .path = NULL };
	if (item)
		*item++ = '\0';
	if (!*text) {
		snprintf(err, err_len, "--disk: no path");
		return -EINVAL;
	}
	snprintf(field, sizeof(field), "--disk %s: serial", text);
	while (item && *item) {
		char *next = strchr(item, ',');
		if (next)
			*next++ = '\0';
		if (!strcmp(item, "readonly") || !strcmp(item, "readonly=on")) {
			disk->read_only = true;
		} else if (!strncmp(item, "serial=", 7)) {
			if (options_parse_disk_serial(field, item + 7, disk, err,
						      err_len))
				return -EINVAL;
		} else if (!strncmp(item, "queues=", 7)) {
			snprintf(field, sizeof(field), "--disk %s: queues", text);
			if (options_parse_disk_queues(field, item + 7, disk, err,
						      err_len))
				return -EINVAL;
		} else if (strncmp(item, "cache=", 6) ||
			   options_parse_disk_cache(item + 6, disk)) {
			snprintf(err, err_len, "--disk %s: unknown option '%s'", text,
				 item);
			return -EINVAL;
		}
		item = next;
	}
	return options_own_string(&disk->path, text, err, err_len);
}

/* xx:xx:xx:xx:xx:xx, a unicast address other than all zeros. */
int options_parse_mac(const char *field, const char *text, uint8_t mac[6],
		      char *err, size_t err_len)
{
	unsigned int octets[6];
	int consumed = 0;

	if (sscanf(text, "%2x:%2x:%2x:%2x:%2x:%2x%n", &octets[0], &octets[1],
		   &octets[2], &octets[3], &octets[4], &octets[5],
		   &consumed) != 6 || text[consumed] || strlen(text) != 17)
		goto bad;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)octets[i];
	/* The group bit marks multicast addresses, which no NIC may own. */
	if ((mac[0] & 1) || !(mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]))
		goto bad;
	return 0;
bad:
	snprintf(err, err_len,
		 "%s '%s' is not a unicast MAC address like 02:00:00:00:00:01",
		 field, text);
	return -EINVAL;
}

int options_add_hostfwd(const char *field, const char *text,
			struct net_slirp_options *user, char *err,
			size_t err_len)
{
	if (user->hostfwd_count == NET_SLIRP_MAX_HOSTFWD) {
		snprintf(err, err_len, "%s: more than %d hostfwd rules", field,
			 NET_SLIRP_MAX_HOSTFWD);
		return -EINVAL;
	}
	if (net_hostfwd_parse(text, &user->hostfwd[user->hostfwd_count], err,
			      err_len))
		return -EINVAL;
	user->hostfwd_count++;
	return 0;
}

int options_check_ifname(const char *field, const char *text, char *err,
			 size_t err_len)
{
	if (!*text || strlen(text) >= IFNAMSIZ || strchr(text, '/')) {
		snprintf(err, err_len,
			 "%s '%s' is not an interface name (1 to %d bytes)",
			 field, text, IFNAMSIZ - 1);
		return -EINVAL;
	}
	return 0;
}

int options_parse_tap_fd(const char *field, const char *text, int *fd,
			 char *err, size_t err_len)
{
	char *end;

	errno = 0;
	long value = strtol(text, &end, 10);
	if (errno || end == text || *end || value < 0 || value > INT32_MAX) {
		snprintf(err, err_len, "%s '%s' is not a descriptor number",
			 field, text);
		return -EINVAL;
	}
	*fd = (int)value;
	return 0;
}

int options_check_net(const char *field, const struct net_config *net,
		      char *err, size_t err_len)
{
	bool has_name = net->tap_name != NULL, has_fd = net->tap_fd >= 0;

	if (net->backend == NET_BACKEND_TAP && has_name == has_fd) {
		snprintf(err, err_len, "%s needs one of ifname=NAME or fd=N",
			 field);
		return -EINVAL;
	}
	return 0;
}

static int parse_on_off(const char *text, bool *value)
{
	if (!strcmp(text, "on") || !strcmp(text, "yes")) {
		*value = true;
		return 0;
	}
	if (!strcmp(text, "off") || !strcmp(text, "no")) {
		*value = false;
		return 0;
	}
	return -EINVAL;
}

/* One NET option (KEY=VALUE) of a --net of the given backend. */
static int parse_net_item(char *item, struct net_config *net, char *err,
			  size_t err_len)
{
	char *value = strchr(item, '=');
	bool user = net->backend == NET_BACKEND_USER;

	if (!value)
		goto unknown;
	*value++ = '\0';
	if (!strcmp(item, "mac"))
		return options_parse_mac("--net: mac", value, net->mac, err, err_len);
	if (user && !strcmp(item, "hostfwd"))
		return options_add_hostfwd("--net", value, &net->user, err,
					   err_len);
	if (user && !strcmp(item, "restrict")) {
		if (parse_on_off(value, &net->user.restricted)) {
			snprintf(err, err_len, "--net: restrict '%s' is not on or off",
				 value);
			return -EINVAL;
		}
		return 0;
	}
	if (!user && !strcmp(item, "ifname")) {
		if (options_check_ifname("--net: ifname", value, err, err_len))
			return -EINVAL;
		return options_own_string(&net->tap_name, value, err, err_len);
	}
	if (!user && !strcmp(item, "fd"))
		return options_parse_tap_fd("--net: fd", value, &net->tap_fd, err,
					    err_len);
	value[-1] = '=';
unknown:
	snprintf(err, err_len, "--net %s: unknown option '%s'",
		 user ? "user" : "tap", item);
	return -EINVAL;
}

void options_net_defaults(unsigned int index, struct net_config *net)
{
	*net = (struct net_config){
		.mac = { 0x02, 0x76, 0x73, 0, 0, (uint8_t)(index + 1) },
		.tap_fd = -1,
	};
}

/* user[,...] or tap,...; text is modified. index: the --net's position. */
static int parse_net(char *text, unsigned int index, struct net_config *net,
		     char *err, size_t err_len)
{
	char *item = strchr(text, ',');

	options_net_defaults(index, net);
	if (item)
		*item++ = '\0';
	if (!strcmp(text, "user")) {
		net->backend = NET_BACKEND_USER;
	} else if (!strcmp(text, "tap")) {
		net->backend = NET_BACKEND_TAP;
	} else {
		snprintf(err, err_len, "--net: '%s' is not a backend (user or tap)",
			 text);
		return -EINVAL;
	}
	while (item && *item) {
		char *next = strchr(item, ',');
		if (next)
			*next++ = '\0';
		int result = parse_net_item(item, net, err, err_len);
		if (result)
			return result;
		item = next;
	}
	return options_check_net("--net tap", net, err, err_len);
}

int options_parse_cpu_count(const char *field, const char *text,
			    unsigned int *count, char *err, size_t err_len)
{
	return parse_count(field, text, OPTIONS_MAX_CPUS, count, err, err_len);
}

int options_config_defaults(struct vm_config *config, char *err,
			    size_t err_len)
{
	*config = (struct vm_config){
		.memory_size = OPTIONS_DEFAULT_MEMORY,
		.cpu_count = 1,
	};
	int result = options_own_string(&config->cmdline, OPTIONS_DEFAULT_CMDLINE, err,
				err_len);
	return result ? result : options_own_string(&config->name, OPTIONS_DEFAULT_NAME,
					    err, err_len);
}

static int parse_run(int argc, char **argv, struct vm_config *config,
		     struct run_options *run, char *err, size_t err_len)
{
	int result = options_config_defaults(config, err, err_len);

	if (result)
		return result;
	/* getopt keeps state between calls; tests parse many command lines. */
	optind = 0;
	opterr = 0;
	for (;;) {
		int option = getopt_long(argc, argv, ":k:i:c:m:n:h", run_options,
					 NULL);
		if (option == -1)
			break;
		switch (option) {
		case 'k':
			result = options_own_string(&config->kernel_path, optarg, err,
					    err_len);
			break;
		case 'i':
			result = options_own_string(&config->initrd_path, optarg, err,
					    err_len);
			break;
		case 'c':
			result = options_own_string(&config->cmdline, optarg, err,
					    err_len);
			break;
		case 'm':
			result = options_parse_memory("--memory", optarg,
						      &config->memory_size, err,
						      err_len);
			break;
		case 'n':
			result = options_parse_cpu_count("--cpus", optarg,
							 &config->cpu_count,
							 err, err_len);
			break;
		case OPTION_CPU_FEATURES:
			result = cpuid_parse_features(optarg,
						      &config->feature_mask,
						      err, err_len);
			break;
		case OPTION_NO_REBOOT:
			config->no_reboot = true;
			break;
		case OPTION_DISK:
			if (config->disk_count == OPTIONS_MAX_DISKS) {
				snprintf(err, err_len, "--disk: more than %d disks",
					 OPTIONS_MAX_DISKS);
				return -EINVAL;
			}
			result = parse_disk(optarg,
					    &config->disks[config->disk_count],
					    err, err_len);
			/* Counted even when refused: release frees its path. */
			config->disk_count++;
			break;
		case OPTION_NET:
			if (config->nic_count == OPTIONS_MAX_NICS) {
				snprintf(err, err_len, "--net: more than %d NICs",
					 OPTIONS_MAX_NICS);
				return -EINVAL;
			}
			result = parse_net(optarg, config->nic_count,
					   &config->nics[config->nic_count], err,
					   err_len);
			/* Counted even when refused: release frees its name. */
			config->nic_count++;
			break;
		case OPTION_API_SOCK:
			run->api_socket = optarg;
			break;
		case OPTION_API_SOCK_MODE:
			result = options_parse_socket_mode(optarg,
							   &run->api_socket_mode,
							   err, err_len);
			break;
		case OPTION_PAUSED:
			run->paused = true;
			break;
		case OPTION_DISPLAY:
			result = display_parse_option(optarg, &config->display,
						      err, err_len);
			break;
		case OPTION_NAME:
			result = options_own_string(&config->name, optarg, err, err_len);
			break;
		case 'h':
			options_print_run_usage();
			return OPTIONS_HELP;
		case ':':
			snprintf(err, err_len, "%s needs a value",
				 argv[optind - 1]);
			return -EINVAL;
		default:
			/* In a group of short options (-xk) optind still
			 * points at the group: name the letter. optopt is 0
			 * for an unknown long option, which is whole in
			 * argv[optind - 1]. */
			if (optopt)
				snprintf(err, err_len,
					 "unknown option '-%c' (see vessel run "
					 "--help)",
					 optopt);
			else
				snprintf(err, err_len,
					 "unknown option '%s' (see vessel run "
					 "--help)",
					 argv[optind - 1]);
			return -EINVAL;
		}
		if (result)
			return result;
	}
	if (optind < argc) {
		snprintf(err, err_len, "unexpected argument '%s'", argv[optind]);
		return -EINVAL;
	}
	if (!config->kernel_path) {
		snprintf(err, err_len, "--kernel is required (see vessel run --help)");
		return -EINVAL;
	}
	return OPTIONS_OK;
}

int options_parse_run(int argc, char **argv, struct vm_config *config,
		      struct run_options *run, char *err, size_t err_len)
{
	struct run_options ignored;

	*(run ? run : &ignored) = (struct run_options){ 0 };
	int result = parse_run(argc, argv, config, run ? run : &ignored, err,
			       err_len);
	if (result == OPTIONS_OK && run && run->paused && !run->api_socket) {
		snprintf(err, err_len, "--paused needs --api-sock: nothing "
			 "else could resume the VM");
		result = -EINVAL;
	}

	if (result != OPTIONS_OK)
		vm_config_release(config);
	return result;
}
