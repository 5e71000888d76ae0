/*
 * The "user" network backend: libslirp's user-mode TCP/IP stack. The guest
 * sits on 10.0.2.0/24 (IPv6 fd00::/64) behind a NAT at 10.0.2.2 that
 * reaches the host's network through ordinary sockets; slirp's DHCP server
 * hands out 10.0.2.15 on, its DNS proxy answers at 10.0.2.3 with the host's
 * resolver. Host port forwards map a host address and port to the guest.
 * Restricted mode cuts the guest off from everything but the forwards.
 *
 * Promise: slirp's sockets and timers run on the event loop (a poll
 * source); nothing else runs slirp code. Frames for a guest that is not
 * reading wait in a bounded queue (later ones are dropped and counted);
 * while any wait, slirp's sockets are not read and no connection is
 * accepted, so the host's socket buffers (and TCP windows) push back.
 * The backend has no offloads: frames carry an all-zero header.
 */
#ifndef VESSEL_DEVICES_NET_SLIRP_H
#define VESSEL_DEVICES_NET_SLIRP_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "device_context.h"
#include "net_backend.h"

#define NET_SLIRP_MAX_HOSTFWD 8

/* hostfwd=[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT, as QEMU
 * spells it: protocol tcp when empty, ports 1..65535, the guest address on
 * 10.0.2.0/24. */
struct net_hostfwd {
	bool udp;
	struct in_addr host_address; /* default 0.0.0.0: every address */
	uint16_t host_port;
	struct in_addr guest_address; /* default 10.0.2.15 */
	uint16_t guest_port;
};

struct net_slirp_options {
	bool restricted;
	struct net_hostfwd hostfwd[NET_SLIRP_MAX_HOSTFWD];
	unsigned int hostfwd_count;
};

/* Parses one hostfwd= value: 0, or -EINVAL with one line in err. */
int net_hostfwd_parse(const char *text, struct net_hostfwd *forward,
		      char *err, size_t err_len);

/* Adds a poll source to context (removed by destroy()). NULL with one line
 * in err, such as "hostfwd tcp:127.0.0.1:8080-10.0.2.15:80: cannot listen
 * (Address already in use)". */
struct net_backend *net_slirp_create(const struct device_context *context,
				     const struct net_slirp_options *options,
				     char *err, size_t err_len);

#endif
