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
	       "      --disk PATH[,readonly][,serial=ID][,cache=writeback|none]\n"
	       "                           a virtio-blk disk (raw image or block\n"
	       "                           device), repeatable: vda, vdb, ...\n"
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
	       "      --display none|sdl[,width=W][,height=H][,depth=16|24|32]\n"
	       "                           the guest's screen in an SDL window: a VESA\n"
	       "                           linear framebuffer (default 1024x768x32) and\n"
	       "                           a PS/2 keyboard and mouse (default: none)\n"
	       "      --name NAME          the VM's name, in the window title\n"
	       "                           (default: " OPTIONS_DEFAULT_NAME ")\n"
	       "  -h, --help               show this help\n"
	       "\n"
	       "Exit status: 0 when the guest powers off (or reboots with --no-reboot,\n"
	       "or Ctrl-A x), 1 on an error.\n"
	       "\n"
	       "CPU feature names (as /proc/cpuinfo spells them):\n",
	       OPTIONS_MAX_CPUS);
	cpuid_print_feature_names();
}

enum { OPTION_CPU_FEATURES = 256, OPTION_NO_REBOOT, OPTION_DISK, OPTION_NET,
       OPTION_DISPLAY, OPTION_NAME };

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
	{ "display", required_argument, NULL, OPTION_DISPLAY },
	{ "name", required_argument, NULL, OPTION_NAME },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

/* PATH[,readonly][,serial=ID][,cache=writeback|none]; text is modified
 * (the path is cut at the first comma). */
static int parse_disk(char *text, struct disk_config *disk, char *err,
		      size_t err_len)
{
	char *item = strchr(text, ',');

	*disk = (struct disk_config){ .path = text };
	if (item)
		*item++ = '\0';
	if (!*text) {
		snprintf(err, err_len, "--disk: no path");
		return -EINVAL;
	}
	while (item && *item) {
		char *next = strchr(item, ',');
		if (next)
			*next++ = '\0';
		if (!strcmp(item, "readonly") || !strcmp(item, "readonly=on")) {
			disk->read_only = true;
		} else if (!strncmp(item, "serial=", 7)) {
			if (strlen(item + 7) > OPTIONS_DISK_SERIAL_MAX) {
				snprintf(err, err_len,
					 "--disk %s: serial '%s' is longer than %d bytes",
					 text, item + 7, OPTIONS_DISK_SERIAL_MAX);
				return -EINVAL;
			}
			strcpy(disk->serial, item + 7);
		} else if (!strcmp(item, "cache=writeback")) {
			disk->direct = false;
		} else if (!strcmp(item, "cache=none")) {
			disk->direct = true;
		} else {
			snprintf(err, err_len, "--disk %s: unknown option '%s'", text,
				 item);
			return -EINVAL;
		}
		item = next;
	}
	return 0;
}

/* xx:xx:xx:xx:xx:xx, a unicast address other than all zeros. */
static int parse_mac(const char *text, uint8_t mac[6])
{
	unsigned int octets[6];
	int consumed = 0;

	if (sscanf(text, "%2x:%2x:%2x:%2x:%2x:%2x%n", &octets[0], &octets[1],
		   &octets[2], &octets[3], &octets[4], &octets[5],
		   &consumed) != 6 || text[consumed] || strlen(text) != 17)
		return -EINVAL;
	for (int i = 0; i < 6; i++)
		mac[i] = (uint8_t)octets[i];
	/* The group bit marks multicast addresses, which no NIC may own. */
	if ((mac[0] & 1) || !(mac[0] | mac[1] | mac[2] | mac[3] | mac[4] | mac[5]))
		return -EINVAL;
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
	if (!strcmp(item, "mac")) {
		if (parse_mac(value, net->mac)) {
			snprintf(err, err_len,
				 "--net: mac '%s' is not a unicast MAC address like 02:00:00:00:00:01",
				 value);
			return -EINVAL;
		}
	} else if (user && !strcmp(item, "hostfwd")) {
		struct net_slirp_options *options = &net->user;

		if (options->hostfwd_count == NET_SLIRP_MAX_HOSTFWD) {
			snprintf(err, err_len, "--net: more than %d hostfwd rules",
				 NET_SLIRP_MAX_HOSTFWD);
			return -EINVAL;
		}
		if (net_hostfwd_parse(value, &options->hostfwd[options->hostfwd_count],
				      err, err_len))
			return -EINVAL;
		options->hostfwd_count++;
	} else if (user && !strcmp(item, "restrict")) {
		if (parse_on_off(value, &net->user.restricted)) {
			snprintf(err, err_len, "--net: restrict '%s' is not on or off",
				 value);
			return -EINVAL;
		}
	} else if (!user && !strcmp(item, "ifname")) {
		if (!*value || strlen(value) >= IFNAMSIZ || strchr(value, '/')) {
			snprintf(err, err_len,
				 "--net: ifname '%s' is not an interface name (1 to %d bytes)",
				 value, IFNAMSIZ - 1);
			return -EINVAL;
		}
		net->tap_name = value;
	} else if (!user && !strcmp(item, "fd")) {
		char *end;
		errno = 0;
		long fd = strtol(value, &end, 10);
		if (errno || end == value || *end || fd < 0 || fd > INT32_MAX) {
			snprintf(err, err_len, "--net: fd '%s' is not a descriptor number",
				 value);
			return -EINVAL;
		}
		net->tap_fd = (int)fd;
	} else {
		value[-1] = '=';
		goto unknown;
	}
	return 0;
unknown:
	snprintf(err, err_len, "--net %s: unknown option '%s'",
		 user ? "user" : "tap", item);
	return -EINVAL;
}

/* user[,...] or tap,...; text is modified. index: the --net's position. */
static int parse_net(char *text, unsigned int index, struct net_config *net,
		     char *err, size_t err_len)
{
	char *item = strchr(text, ',');

	*net = (struct net_config){
		.mac = { 0x02, 0x76, 0x73, 0, 0, (uint8_t)(index + 1) },
		.tap_fd = -1,
	};
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
		if (parse_net_item(item, net, err, err_len))
			return -EINVAL;
		item = next;
	}
	bool has_name = net->tap_name != NULL, has_fd = net->tap_fd >= 0;
	if (net->backend == NET_BACKEND_TAP && has_name == has_fd) {
		snprintf(err, err_len, "--net tap needs one of ifname=NAME or fd=N");
		return -EINVAL;
	}
	return 0;
}

static int parse_cpu_count(const char *text, unsigned int *count, char *err,
			   size_t err_len)
{
	char *end;

	errno = 0;
	long value = strtol(text, &end, 10);
	if (errno || end == text || *end || value < 1 ||
	    value > OPTIONS_MAX_CPUS) {
		snprintf(err, err_len, "--cpus: '%s' is not a count from 1 to %d",
			 text, OPTIONS_MAX_CPUS);
		return -EINVAL;
	}
	*count = (unsigned int)value;
	return 0;
}

int options_parse_run(int argc, char **argv, struct vm_config *config,
		      char *err, size_t err_len)
{
	*config = (struct vm_config){
		.cmdline = OPTIONS_DEFAULT_CMDLINE,
		.memory_size = OPTIONS_DEFAULT_MEMORY,
		.cpu_count = 1,
		.name = OPTIONS_DEFAULT_NAME,
	};
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
			config->kernel_path = optarg;
			break;
		case 'i':
			config->initrd_path = optarg;
			break;
		case 'c':
			config->cmdline = optarg;
			break;
		case 'm':
			if (options_parse_size(optarg, &config->memory_size) ||
			    config->memory_size == 0) {
				snprintf(err, err_len,
					 "--memory: '%s' is not a size (examples: 512M, 2G)",
					 optarg);
				return -EINVAL;
			}
			/* KVM memory slots are made of whole pages. */
			if (config->memory_size % 4096) {
				snprintf(err, err_len,
					 "--memory: '%s' is not a multiple of 4K",
					 optarg);
				return -EINVAL;
			}
			break;
		case 'n':
			if (parse_cpu_count(optarg, &config->cpu_count, err,
					    err_len))
				return -EINVAL;
			break;
		case OPTION_CPU_FEATURES:
			if (cpuid_parse_features(optarg, &config->feature_mask,
						 err, err_len))
				return -EINVAL;
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
			if (parse_disk(optarg, &config->disks[config->disk_count],
				       err, err_len))
				return -EINVAL;
			config->disk_count++;
			break;
		case OPTION_NET:
			if (config->nic_count == OPTIONS_MAX_NICS) {
				snprintf(err, err_len, "--net: more than %d NICs",
					 OPTIONS_MAX_NICS);
				return -EINVAL;
			}
			if (parse_net(optarg, config->nic_count,
				      &config->nics[config->nic_count], err,
				      err_len))
				return -EINVAL;
			config->nic_count++;
			break;
		case OPTION_DISPLAY:
			if (display_parse_option(optarg, &config->display, err,
						 err_len))
				return -EINVAL;
			break;
		case OPTION_NAME:
			config->name = optarg;
			break;
		case 'h':
			options_print_run_usage();
			return OPTIONS_HELP;
		case ':':
			snprintf(err, err_len, "%s needs a value",
				 argv[optind - 1]);
			return -EINVAL;
		default:
			snprintf(err, err_len,
				 "unknown option '%s' (see vessel run --help)",
				 argv[optind - 1]);
			return -EINVAL;
		}
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
