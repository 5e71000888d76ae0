/*
 * libslirp runs entirely on the event thread: its sockets are polled and
 * its timers kept by one poll source, and guest frames go in through
 * transmit(), which the device calls on the same thread. That is why the
 * SlirpCb notify hook has nothing to do (the loop asks slirp for its
 * descriptors again before every wait) and why no lock is needed.
 */
#include "net_slirp.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <slirp/libslirp.h>

#include "dynamic_library.h"
#include "log_limit.h"

/* libslirp, and GLib with it, is loaded by the first --net user only: a
 * VM without one does not carry them (dynamic_library.h). */
#define SLIRP_LIBRARY "libslirp.so.0"
#define SLIRP_CALLS(X)                                                        \
	X(new) X(cleanup) X(input) X(pollfds_fill) X(pollfds_poll)            \
	X(handle_timer) X(add_hostfwd) X(state_save) X(state_load)            \
	X(state_version)

static struct slirp_calls {
#define SLIRP_CALL_MEMBER(name) __typeof__(slirp_##name) *name;
	SLIRP_CALLS(SLIRP_CALL_MEMBER)
#undef SLIRP_CALL_MEMBER
} libslirp;

static int load_libslirp(char *err, size_t err_len)
{
#define SLIRP_CALL_SYMBOL(name) { "slirp_" #name, offsetof(struct slirp_calls, name) },
	static const struct dynamic_symbol symbols[] = { SLIRP_CALLS(SLIRP_CALL_SYMBOL) };
#undef SLIRP_CALL_SYMBOL
	/* Backends are made by the machine's owner, one at a time. */
	static bool loaded;

	return dynamic_library_load_once(&loaded, SLIRP_LIBRARY, symbols,
					 sizeof(symbols) / sizeof(symbols[0]),
					 &libslirp, err, err_len);
}

/* Frames held for a guest without receive buffers. slirp's frames are at
 * most its MTU plus an Ethernet header except for large IPv6 UDP
 * datagrams, so each is allocated at its own size. */
#define NET_SLIRP_HELD_FRAMES 64

/* The guest network; the DHCP server's first address is also the default
 * guest address of a host forward. */
#define NET_SLIRP_NETWORK 0x0a000200u /* 10.0.2.0/24 */
#define NET_SLIRP_NETMASK 0xffffff00u
#define NET_SLIRP_HOST 0x0a000202u /* 10.0.2.2 */
#define NET_SLIRP_NAMESERVER 0x0a000203u /* 10.0.2.3 */
#define NET_SLIRP_GUEST 0x0a00020fu /* 10.0.2.15 */

#define NET_HOSTFWD_SYNTAX "[tcp|udp]:[HOSTADDR]:HOSTPORT-[GUESTADDR]:GUESTPORT"

struct held_frame {
	uint8_t *data;
	size_t length;
};

struct net_slirp_timer {
	struct net_slirp_timer *next;
	SlirpTimerId id;
	void *cb_opaque;
	bool armed;
	bool due; /* expired when dispatch() looked; fires once this round */
	int64_t expire_ms; /* on clock_get_ns()'s clock */
};

struct net_slirp {
	struct net_backend backend;
	struct device_context context;
	Slirp *slirp;
	struct net_receiver receiver; /* receive NULL until attach() */
	/* receive_ready() seen and no -ENOBUFS since: frames go straight
	 * through when nothing is held. */
	bool receiver_has_room;
	struct held_frame held[NET_SLIRP_HELD_FRAMES]; /* a FIFO */
	unsigned int held_first, held_count;
	struct net_slirp_timer *timers;
	struct poll_set *filling; /* prepare()'s set, for add_poll */
	const struct poll_set *polled; /* dispatch()'s set, for get_revents */
	bool poll_set_full_reported;
	uint8_t transmit_buffer[NET_FRAME_MAX]; /* a frame made contiguous */
};

static struct net_slirp *net_slirp_of(struct net_backend *backend)
{
	return (struct net_slirp *)((char *)backend -
				    offsetof(struct net_slirp, backend));
}

static int64_t clock_ns(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (int64_t)now.tv_sec * 1000000000 + now.tv_nsec;
}

/* --- frames to the guest -------------------------------------------------- */

static int deliver(struct net_slirp *net, const uint8_t *data, size_t length)
{
	static const struct virtio_net_hdr no_offload;
	struct iovec frame = { .iov_base = (void *)data, .iov_len = length };
	int ret = net->receiver.receive(net->receiver.opaque, &no_offload,
					&frame, 1);

	if (ret == -ENOBUFS) {
		net->receiver_has_room = false;
		return ret;
	}
	/* Anything else means taken: given to the guest or counted by the
	 * device. */
	net->backend.stats.rx_frames++;
	return 0;
}

static void hold(struct net_slirp *net, const uint8_t *data, size_t length)
{
	struct held_frame *slot;
	uint8_t *copy;

	if (net->held_count == NET_SLIRP_HELD_FRAMES ||
	    !(copy = malloc(length))) {
		net->backend.stats.rx_dropped++;
		return;
	}
	memcpy(copy, data, length);
	slot = &net->held[(net->held_first + net->held_count) %
			  NET_SLIRP_HELD_FRAMES];
	*slot = (struct held_frame){ .data = copy, .length = length };
	net->held_count++;
}

/* Delivers held frames in order until the receiver runs out of room. */
static void deliver_held(struct net_slirp *net)
{
	while (net->held_count > 0) {
		struct held_frame *frame = &net->held[net->held_first];

		if (deliver(net, frame->data, frame->length) == -ENOBUFS)
			return;
		free(frame->data);
		net->held_first = (net->held_first + 1) % NET_SLIRP_HELD_FRAMES;
		net->held_count--;
	}
}

/* A frame from slirp. Always "sent" as far as slirp is concerned: one
 * dropped here is counted, and TCP retransmits it. */
static ssize_t net_slirp_send_packet(const void *buf, size_t len, void *opaque)
{
	struct net_slirp *net = opaque;

	if (len < NET_FRAME_MIN || len > NET_FRAME_MAX) {
		net->backend.stats.rx_dropped++;
		return (ssize_t)len;
	}
	/* Frames keep their order: none overtakes one already held. */
	if (!net->receiver_has_room || net->held_count > 0 ||
	    deliver(net, buf, len) == -ENOBUFS)
		hold(net, buf, len);
	return (ssize_t)len;
}

/* --- slirp's other callbacks ---------------------------------------------- */

/* Something the guest sent that slirp could not make sense of: the guest
 * can send it as often as it likes. */
static void net_slirp_guest_error(const char *msg, void *opaque)
{
	static struct log_limit guest_errors = LOG_LIMIT_INIT;

	(void)opaque;
	log_limited(&guest_errors, "net user: %s", msg);
}

static int64_t net_slirp_clock_get_ns(void *opaque)
{
	(void)opaque;
	return clock_ns();
}

static void *net_slirp_timer_new(SlirpTimerId id, void *cb_opaque,
				 void *opaque)
{
	struct net_slirp *net = opaque;
	struct net_slirp_timer *timer = calloc(1, sizeof(*timer));

	/* Without memory the timer never fires: slirp's only one sends
	 * periodic IPv6 router advertisements, which a guest also gets by
	 * soliciting them. */
	if (!timer)
		return NULL;
	timer->id = id;
	timer->cb_opaque = cb_opaque;
	timer->next = net->timers;
	net->timers = timer;
	return timer;
}

static void net_slirp_timer_free(void *handle, void *opaque)
{
	struct net_slirp *net = opaque;

	for (struct net_slirp_timer **link = &net->timers; *link;
	     link = &(*link)->next) {
		if (*link == handle) {
			*link = (*link)->next;
			free(handle);
			return;
		}
	}
}

static void net_slirp_timer_mod(void *handle, int64_t expire_ms, void *opaque)
{
	struct net_slirp_timer *timer = handle;

	(void)opaque;
	if (!timer)
		return;
	timer->armed = true;
	timer->expire_ms = expire_ms;
}

/* slirp registers descriptors for hosts whose poll needs them bound to an
 * event object beforehand (Windows); on Linux it hands over every
 * descriptor through libslirp.pollfds_fill() before each wait. */
static void net_slirp_ignore_poll_fd(int fd, void *opaque)
{
	(void)fd;
	(void)opaque;
}

/* Nothing to wake: see the top of this file. */
static void net_slirp_notify(void *opaque)
{
	(void)opaque;
}

static const SlirpCb net_slirp_callbacks = {
	.send_packet = net_slirp_send_packet,
	.guest_error = net_slirp_guest_error,
	.clock_get_ns = net_slirp_clock_get_ns,
	.timer_free = net_slirp_timer_free,
	.timer_mod = net_slirp_timer_mod,
	.register_poll_fd = net_slirp_ignore_poll_fd,
	.unregister_poll_fd = net_slirp_ignore_poll_fd,
	.notify = net_slirp_notify,
	.timer_new_opaque = net_slirp_timer_new,
};

/* --- the poll source ------------------------------------------------------ */

static short poll_events_of(int slirp_events)
{
	short events = 0;

	if (slirp_events & SLIRP_POLL_IN)
		events |= POLLIN;
	if (slirp_events & SLIRP_POLL_OUT)
		events |= POLLOUT;
	if (slirp_events & SLIRP_POLL_PRI)
		events |= POLLPRI;
	if (slirp_events & SLIRP_POLL_ERR)
		events |= POLLERR;
	if (slirp_events & SLIRP_POLL_HUP)
		events |= POLLHUP;
	return events;
}

static int slirp_events_of(short revents)
{
	int events = 0;

	if (revents & POLLIN)
		events |= SLIRP_POLL_IN;
	if (revents & POLLOUT)
		events |= SLIRP_POLL_OUT;
	if (revents & POLLPRI)
		events |= SLIRP_POLL_PRI;
	/* POLLNVAL (the descriptor was closed under slirp) goes back as an
	 * error, so that slirp drops the socket rather than the loop waking
	 * for it every round. */
	if (revents & (POLLERR | POLLNVAL))
		events |= SLIRP_POLL_ERR;
	if (revents & POLLHUP)
		events |= SLIRP_POLL_HUP;
	return events;
}

/* slirp's add_poll: the descriptor's index in the set, or -1 for "not
 * watched this round", which slirp takes as no events. */
static int net_slirp_add_poll(int fd, int events, void *opaque)
{
	struct net_slirp *net = opaque;
	int index;

	if (net->held_count > 0) {
		/* Backpressure: slirp reads no host socket (and accepts no
		 * connection) while frames wait for the guest. poll(2)
		 * reports hang-ups and errors whatever it is asked, so a
		 * socket with nothing else wanted stays out of the set rather
		 * than wake every round. */
		events &= ~(SLIRP_POLL_IN | SLIRP_POLL_PRI);
		if (!(events & SLIRP_POLL_OUT))
			return -1;
	}
	index = poll_set_add(net->filling, fd, poll_events_of(events));
	if (index < 0) {
		if (!net->poll_set_full_reported)
			fprintf(stderr,
				"vessel: net user: the event loop has no room for more sockets; some connections stall until others close\n");
		net->poll_set_full_reported = true;
		return -1;
	}
	return index;
}

static int net_slirp_get_revents(int index, void *opaque)
{
	struct net_slirp *net = opaque;

	return slirp_events_of(net->polled->fds[index].revents);
}

static void net_slirp_prepare(void *opaque, struct poll_set *set,
			      int *timeout_ms)
{
	struct net_slirp *net = opaque;
	uint32_t timeout = *timeout_ms < 0 ? UINT32_MAX : (uint32_t)*timeout_ms;
	int64_t now_ms = clock_ns() / 1000000;

	net->filling = set;
	libslirp.pollfds_fill(net->slirp, &timeout, net_slirp_add_poll, net);
	for (struct net_slirp_timer *timer = net->timers; timer;
	     timer = timer->next) {
		int64_t left = timer->expire_ms - now_ms;

		if (!timer->armed)
			continue;
		if (left < 0)
			left = 0;
		if (left < (int64_t)timeout)
			timeout = (uint32_t)left;
	}
	if (timeout != UINT32_MAX)
		*timeout_ms = timeout > INT_MAX ? INT_MAX : (int)timeout;
}

/* Fires the timers that had expired on entry, one at a time: a timer's
 * handler may re-arm it, which makes it wait for a later round, or free or
 * create timers, which is why the list is searched again each time. */
static void fire_expired_timers(struct net_slirp *net)
{
	int64_t now_ms = clock_ns() / 1000000;
	struct net_slirp_timer *timer;

	for (timer = net->timers; timer; timer = timer->next)
		timer->due = timer->armed && timer->expire_ms <= now_ms;
	for (;;) {
		for (timer = net->timers; timer && !timer->due; timer = timer->next)
			;
		if (!timer)
			return;
		timer->due = false;
		timer->armed = false;
		libslirp.handle_timer(net->slirp, timer->id, timer->cb_opaque);
	}
}

/*
 * What one dispatch of slirp's sockets and timers hands the guest goes as
 * one burst (net_receiver's burst_begin and burst_end): the guest hears of
 * it once, and virtio-net gives the guest's sent chains back with it.
 * Frames slirp answers with at once from inside transmit() (an ARP reply)
 * stay outside any burst.
 */
static void net_slirp_dispatch(void *opaque, const struct poll_set *set)
{
	struct net_slirp *net = opaque;
	bool burst = net->receiver.burst_begin && net->receiver.burst_end;

	net->polled = set;
	if (burst)
		net->receiver.burst_begin(net->receiver.opaque);
	libslirp.pollfds_poll(net->slirp, 0, net_slirp_get_revents, net);
	fire_expired_timers(net);
	if (burst)
		net->receiver.burst_end(net->receiver.opaque);
}

static const struct poll_source net_slirp_poll_source = {
	.prepare = net_slirp_prepare,
	.dispatch = net_slirp_dispatch,
};

/* --- backend ops ---------------------------------------------------------- */

static void net_slirp_attach(struct net_backend *backend,
			     const struct net_receiver *receiver)
{
	net_slirp_of(backend)->receiver = *receiver;
}

static int net_slirp_transmit(struct net_backend *backend,
			      const struct virtio_net_hdr *hdr,
			      const struct iovec *frame, unsigned int count)
{
	struct net_slirp *net = net_slirp_of(backend);
	const uint8_t *data;
	size_t length = 0;

	/* No offloads: the header says nothing slirp needs. */
	(void)hdr;
	for (unsigned int i = 0; i < count; i++)
		length += frame[i].iov_len;
	if (length < NET_FRAME_MIN || length > NET_FRAME_MAX) {
		backend->stats.tx_dropped++;
		return -EINVAL;
	}
	data = frame[0].iov_base;
	if (count > 1) {
		size_t copied = 0;

		for (unsigned int i = 0; i < count; i++) {
			memcpy(net->transmit_buffer + copied, frame[i].iov_base,
			       frame[i].iov_len);
			copied += frame[i].iov_len;
		}
		data = net->transmit_buffer;
	}
	libslirp.input(net->slirp, data, (int)length);
	backend->stats.tx_frames++;
	return 0;
}

static void net_slirp_receive_ready(struct net_backend *backend)
{
	struct net_slirp *net = net_slirp_of(backend);

	/* Not attached yet: there is nobody to deliver to. */
	if (!net->receiver.receive)
		return;
	net->receiver_has_room = true;
	deliver_held(net);
}

static int net_slirp_set_receive_offloads(struct net_backend *backend,
					  uint32_t offloads)
{
	return offloads & ~backend->offloads ? -EINVAL : 0;
}

/* Everything but the poll source, which create() adds last. */
static void net_slirp_free(struct net_slirp *net)
{
	/* libslirp.cleanup() closes the sockets and frees its timers through
	 * timer_free. */
	if (net->slirp)
		libslirp.cleanup(net->slirp);
	while (net->timers)
		net_slirp_timer_free(net->timers, net);
	for (unsigned int i = 0; i < net->held_count; i++)
		free(net->held[(net->held_first + i) % NET_SLIRP_HELD_FRAMES].data);
	free(net);
}

static void net_slirp_destroy(struct net_backend *backend)
{
	struct net_slirp *net = net_slirp_of(backend);

	net->context.remove_poll_source(net->context.context_opaque, net);
	net_slirp_free(net);
}

/* --- snapshots ----------------------------------------------------------- */

/* libslirp's state stream, gathered into one buffer. */
struct slirp_stream {
	uint8_t *data;
	size_t size, capacity, position;
	bool failed;
};

static ssize_t stream_write(const void *buf, size_t len, void *opaque)
{
	struct slirp_stream *stream = opaque;

	if (stream->size + len > stream->capacity) {
		size_t capacity = (stream->size + len) * 2;
		uint8_t *grown = realloc(stream->data, capacity);
		if (!grown) {
			stream->failed = true;
			return -1;
		}
		stream->data = grown;
		stream->capacity = capacity;
	}
	memcpy(stream->data + stream->size, buf, len);
	stream->size += len;
	return (ssize_t)len;
}

/* Never past the saved bytes, whatever libslirp asks for. */
static ssize_t stream_read(void *buf, size_t len, void *opaque)
{
	struct slirp_stream *stream = opaque;

	if (len > stream->size - stream->position) {
		stream->failed = true;
		return -1;
	}
	memcpy(buf, stream->data + stream->position, len);
	stream->position += len;
	return (ssize_t)len;
}

/*
 * libslirp's own state (its ARP and DHCP tables, so the guest keeps its
 * lease, and its sockets), in libslirp's format and version. Frames held
 * for a quiesced device are not saved: the guest sees them lost, as on
 * a congested link.
 */
static int net_slirp_save(struct net_backend *backend,
			  struct device_state_writer *writer)
{
	struct net_slirp *net = net_slirp_of(backend);
	struct slirp_stream stream = { 0 };

	libslirp.state_save(net->slirp, stream_write, &stream);
	int result = stream.failed ? -ENOMEM :
		writer->put_u64(writer, "slirp-version",
				(uint64_t)libslirp.state_version());
	if (!result)
		result = writer->put_bytes(writer, "slirp-state", stream.data,
					   stream.size);
	free(stream.data);
	return result;
}

static int net_slirp_restore(struct net_backend *backend,
			     struct device_state_reader *reader)
{
	struct net_slirp *net = net_slirp_of(backend);
	struct slirp_stream stream = { 0 };
	uint64_t version;
	int result = reader->get_u64(reader, "slirp-version", &version);

	if (!result)
		result = reader->get_size(reader, "slirp-state", &stream.size);
	if (result)
		return result;
	if (version > INT_MAX)
		return -EINVAL;
	stream.data = malloc(stream.size ? stream.size : 1);
	if (!stream.data)
		return -ENOMEM;
	result = reader->get_bytes(reader, "slirp-state", stream.data,
				   stream.size);
	if (!result && (libslirp.state_load(net->slirp, (int)version, stream_read,
					 &stream) < 0 || stream.failed))
		result = -EINVAL;
	free(stream.data);
	return result;
}

static const struct net_backend_ops net_slirp_ops = {
	.attach = net_slirp_attach,
	.transmit = net_slirp_transmit,
	.receive_ready = net_slirp_receive_ready,
	.set_receive_offloads = net_slirp_set_receive_offloads,
	.destroy = net_slirp_destroy,
	.save = net_slirp_save,
	.restore = net_slirp_restore,
};

/* --- hostfwd= ------------------------------------------------------------- */

/* 1..65535 in decimal digits, nothing else. */
static bool parse_port(const char *text, uint16_t *port)
{
	unsigned long value = 0;
	size_t length = strlen(text);

	if (length == 0 || length > 5)
		return false;
	for (const char *digit = text; *digit; digit++) {
		if (*digit < '0' || *digit > '9')
			return false;
		value = value * 10 + (unsigned long)(*digit - '0');
	}
	if (value == 0 || value > 65535)
		return false;
	*port = (uint16_t)value;
	return true;
}

/* A dotted IPv4 address, or fallback when empty. */
static bool parse_address(const char *text, uint32_t fallback,
			  struct in_addr *address)
{
	if (!*text) {
		address->s_addr = htonl(fallback);
		return true;
	}
	return inet_pton(AF_INET, text, address) == 1;
}

int net_hostfwd_parse(const char *text, struct net_hostfwd *forward,
		      char *err, size_t err_len)
{
	struct net_hostfwd parsed = { .udp = false };
	char buffer[sizeof("tcp:255.255.255.255:65535-255.255.255.255:65535")];
	char *host, *host_port, *guest, *guest_port;

	if (strlen(text) >= sizeof(buffer))
		goto syntax;
	strcpy(buffer, text);
	/* PROTOCOL:HOST-GUEST, then ADDRESS:PORT on either side. */
	host = strchr(buffer, ':');
	if (!host)
		goto syntax;
	*host++ = '\0';
	guest = strchr(host, '-');
	if (!guest)
		goto syntax;
	*guest++ = '\0';
	host_port = strchr(host, ':');
	guest_port = strchr(guest, ':');
	if (!host_port || !guest_port)
		goto syntax;
	*host_port++ = '\0';
	*guest_port++ = '\0';

	if (!strcmp(buffer, "udp")) {
		parsed.udp = true;
	} else if (*buffer && strcmp(buffer, "tcp")) {
		snprintf(err, err_len,
			 "hostfwd %s: protocol \"%s\" is neither tcp nor udp",
			 text, buffer);
		return -EINVAL;
	}
	if (!parse_address(host, INADDR_ANY, &parsed.host_address)) {
		snprintf(err, err_len,
			 "hostfwd %s: host address \"%s\" is not an IPv4 address",
			 text, host);
		return -EINVAL;
	}
	if (!parse_port(host_port, &parsed.host_port)) {
		snprintf(err, err_len,
			 "hostfwd %s: host port \"%s\" is not a number in 1..65535",
			 text, host_port);
		return -EINVAL;
	}
	if (!parse_address(guest, NET_SLIRP_GUEST, &parsed.guest_address)) {
		snprintf(err, err_len,
			 "hostfwd %s: guest address \"%s\" is not an IPv4 address",
			 text, guest);
		return -EINVAL;
	}
	/* slirp would send the connection to any address, but only one on
	 * the guest network can answer. */
	if ((ntohl(parsed.guest_address.s_addr) & NET_SLIRP_NETMASK) !=
	    NET_SLIRP_NETWORK) {
		snprintf(err, err_len,
			 "hostfwd %s: guest address %s is not on the guest network 10.0.2.0/24",
			 text, guest);
		return -EINVAL;
	}
	if (!parse_port(guest_port, &parsed.guest_port)) {
		snprintf(err, err_len,
			 "hostfwd %s: guest port \"%s\" is not a number in 1..65535",
			 text, guest_port);
		return -EINVAL;
	}
	*forward = parsed;
	return 0;
syntax:
	snprintf(err, err_len, "hostfwd %s: expected " NET_HOSTFWD_SYNTAX, text);
	return -EINVAL;
}

/* --- creation ------------------------------------------------------------- */

static int add_hostfwd(struct net_slirp *net, const struct net_hostfwd *forward,
		       char *err, size_t err_len)
{
	char host[INET_ADDRSTRLEN], guest[INET_ADDRSTRLEN];
	int ret;

	/* libslirp sets errno on every failure path (4.5 on). */
	if (libslirp.add_hostfwd(net->slirp, forward->udp, forward->host_address,
			      forward->host_port, forward->guest_address,
			      forward->guest_port) == 0)
		return 0;
	ret = -errno;
	inet_ntop(AF_INET, &forward->host_address, host, sizeof(host));
	inet_ntop(AF_INET, &forward->guest_address, guest, sizeof(guest));
	snprintf(err, err_len, "hostfwd %s:%s:%u-%s:%u: cannot listen (%s)",
		 forward->udp ? "udp" : "tcp", host, forward->host_port, guest,
		 forward->guest_port, strerror(-ret));
	return ret;
}

struct net_backend *net_slirp_create(const struct device_context *context,
				     const struct net_slirp_options *options,
				     char *err, size_t err_len)
{
	SlirpConfig config = {
		.version = 4,
		.restricted = options->restricted,
		.in_enabled = true,
		.vnetwork.s_addr = htonl(NET_SLIRP_NETWORK),
		.vnetmask.s_addr = htonl(NET_SLIRP_NETMASK),
		.vhost.s_addr = htonl(NET_SLIRP_HOST),
		.vdhcp_start.s_addr = htonl(NET_SLIRP_GUEST),
		.vnameserver.s_addr = htonl(NET_SLIRP_NAMESERVER),
		.in6_enabled = true,
		.vprefix_len = 64,
	};
	struct net_slirp *net;
	int ret;

	if (options->hostfwd_count > NET_SLIRP_MAX_HOSTFWD) {
		snprintf(err, err_len, "net user: more than %u hostfwd",
			 NET_SLIRP_MAX_HOSTFWD);
		return NULL;
	}
	if (load_libslirp(err, err_len))
		return NULL;
	inet_pton(AF_INET6, "fd00::", &config.vprefix_addr6);
	inet_pton(AF_INET6, "fd00::2", &config.vhost6);
	inet_pton(AF_INET6, "fd00::3", &config.vnameserver6);

	net = calloc(1, sizeof(*net));
	if (!net) {
		snprintf(err, err_len, "net user: out of memory");
		return NULL;
	}
	net->backend = (struct net_backend){
		.name = "user",
		.ops = &net_slirp_ops,
		.offloads = 0,
	};
	net->context = *context;
	net->slirp = libslirp.new(&config, &net_slirp_callbacks, net);
	if (!net->slirp) {
		snprintf(err, err_len, "net user: libslirp refused its configuration");
		goto fail;
	}
	for (unsigned int i = 0; i < options->hostfwd_count; i++) {
		if (add_hostfwd(net, &options->hostfwd[i], err, err_len))
			goto fail;
	}
	ret = context->add_poll_source(context->context_opaque,
				       &net_slirp_poll_source, net);
	if (ret) {
		snprintf(err, err_len, "net user: cannot join the event loop: %s",
			 strerror(-ret));
		goto fail;
	}
	return &net->backend;
fail:
	net_slirp_free(net);
	return NULL;
}
