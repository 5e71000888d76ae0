/*
 * The "tap" network backend: an existing TAP interface of the host, opened
 * by name through /dev/net/tun or inherited as a descriptor, with
 * IFF_VNET_HDR so that frames carry the virtio-net header both ways and
 * checksum and TSO offloads pass straight through.
 *
 * Promise: what the TAP side delivers is untrusted too: a read shorter than
 * the header plus an Ethernet header, or a header with an unknown GSO type
 * or offsets outside the frame, is dropped and counted. Reads stop while
 * the guest has no receive buffers (the frame in hand is kept), so the
 * kernel's TAP queue fills and drops, not vessel.
 */
#ifndef VESSEL_DEVICES_NET_TAP_H
#define VESSEL_DEVICES_NET_TAP_H

#include <stddef.h>
#include <stdint.h>

#include "device_context.h"
#include "net_backend.h"

/* Frames read per wake-up at most, so that a busy TAP queue does not keep
 * the event thread from its other descriptors. */
#define NET_TAP_READ_BUDGET 64

struct net_tap_options {
	const char *ifname; /* open this existing interface, or */
	int fd; /* use a copy of this TAP descriptor (it stays the
		 * caller's): -1 when ifname */
};

/* Sets the interface or descriptor up (IFF_TAP, IFF_NO_PI, IFF_VNET_HDR,
 * 12-byte headers, non-blocking), probes its offloads, then hands it to
 * net_tap_create_on_fd(). An interface named is never created: one that
 * does not exist is refused. NULL with one line in err. */
struct net_backend *net_tap_create(const struct device_context *context,
				   const struct net_tap_options *options,
				   char *err, size_t err_len);

/* The frame pump alone, on fd: a descriptor already set up as a TAP queue
 * with 12-byte virtio-net headers (one frame per read and per write,
 * header first), which the unit tests stand in for with a SOCK_SEQPACKET
 * socketpair. offloads: what fd can carry (NET_OFFLOAD_*), with none yet
 * enabled on received frames. name is for messages. fd is made
 * non-blocking and is the backend's from this call on, closed on failure
 * too. NULL with one line in err. */
struct net_backend *net_tap_create_on_fd(const struct device_context *context,
					 int fd, uint32_t offloads,
					 const char *name, char *err,
					 size_t err_len);

#endif
