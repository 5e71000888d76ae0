/*
 * net_header_check(), the one judge of virtio-net headers from a guest or
 * a network: each rule it enforces, at its boundary.
 */
#include <criterion/criterion.h>
#include <errno.h>

#include "devices/net_backend.h"

#define ALL_OFFLOADS                                                          \
	(NET_OFFLOAD_CSUM | NET_OFFLOAD_TSO4 | NET_OFFLOAD_TSO6 |             \
	 NET_OFFLOAD_TSO_ECN)
#define FRAME_LEN 1514

/* A TCP segment as a guest hands it over for TSO: partial checksum at
 * the TCP checksum field of an Ethernet, IPv4 and TCP header. */
static struct virtio_net_hdr tso_header(uint8_t gso_type)
{
	return (struct virtio_net_hdr){
		.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
		.gso_type = gso_type,
		.hdr_len = 14 + 20 + 20,
		.gso_size = 1448,
		.csum_start = 14 + 20,
		.csum_offset = 16,
	};
}

static int check(struct virtio_net_hdr hdr, size_t frame_len,
		 uint32_t offloads)
{
	return net_header_check(&hdr, frame_len, offloads);
}

Test(net_header_check, plain_frame_is_valid_without_offloads)
{
	struct virtio_net_hdr plain = { 0 };

	cr_assert_eq(check(plain, FRAME_LEN, 0), 0);
	cr_assert_eq(check(plain, FRAME_LEN, ALL_OFFLOADS), 0);
}

Test(net_header_check, frame_length_within_min_and_max)
{
	struct virtio_net_hdr plain = { 0 };

	cr_assert_eq(check(plain, NET_FRAME_MIN, 0), 0);
	cr_assert_eq(check(plain, NET_FRAME_MIN - 1, 0), -EINVAL);
	cr_assert_eq(check(plain, 0, 0), -EINVAL);
	cr_assert_eq(check(plain, NET_FRAME_MAX, 0), 0);
	cr_assert_eq(check(plain, NET_FRAME_MAX + 1, 0), -EINVAL);
	cr_assert_eq(check(plain, SIZE_MAX, 0), -EINVAL);
}

Test(net_header_check, unknown_flags_are_refused)
{
	struct virtio_net_hdr data_valid = {
		.flags = VIRTIO_NET_HDR_F_DATA_VALID,
	};

	cr_assert_eq(check(data_valid, FRAME_LEN, 0), 0);
	for (unsigned int bit = 2; bit < 8; bit++) {
		struct virtio_net_hdr unknown = { .flags = 1u << bit };

		cr_assert_eq(check(unknown, FRAME_LEN, ALL_OFFLOADS), -EINVAL,
			     "flag bit %u", bit);
	}
}

Test(net_header_check, needs_csum_only_with_the_checksum_offload)
{
	struct virtio_net_hdr partial = tso_header(VIRTIO_NET_HDR_GSO_NONE);

	partial.gso_size = 0;
	cr_assert_eq(check(partial, FRAME_LEN, NET_OFFLOAD_CSUM), 0);
	cr_assert_eq(check(partial, FRAME_LEN, 0), -EINVAL);
	cr_assert_eq(check(partial, FRAME_LEN,
			   ALL_OFFLOADS & ~NET_OFFLOAD_CSUM),
		     -EINVAL);
}

Test(net_header_check, checksum_field_must_lie_inside_the_frame)
{
	struct virtio_net_hdr partial = {
		.flags = VIRTIO_NET_HDR_F_NEEDS_CSUM,
		.csum_start = 34,
		.csum_offset = 16,
	};

	/* The two checksum bytes end exactly at the end of the frame. */
	cr_assert_eq(check(partial, 34 + 16 + 2, NET_OFFLOAD_CSUM), 0);
	cr_assert_eq(check(partial, 34 + 16 + 1, NET_OFFLOAD_CSUM), -EINVAL);
	/* Offsets that would overflow 16 bits in a careless sum. */
	partial.csum_start = 0xffff;
	partial.csum_offset = 0xffff;
	cr_assert_eq(check(partial, NET_FRAME_MAX, NET_OFFLOAD_CSUM),
		     -EINVAL);
}

Test(net_header_check, each_gso_type_needs_its_offload)
{
	const uint32_t csum = NET_OFFLOAD_CSUM;

	cr_assert_eq(check(tso_header(VIRTIO_NET_HDR_GSO_TCPV4), FRAME_LEN,
			   csum | NET_OFFLOAD_TSO4),
		     0);
	cr_assert_eq(check(tso_header(VIRTIO_NET_HDR_GSO_TCPV4), FRAME_LEN,
			   csum | NET_OFFLOAD_TSO6),
		     -EINVAL);
	cr_assert_eq(check(tso_header(VIRTIO_NET_HDR_GSO_TCPV6), FRAME_LEN,
			   csum | NET_OFFLOAD_TSO6),
		     0);
	cr_assert_eq(check(tso_header(VIRTIO_NET_HDR_GSO_TCPV6), FRAME_LEN,
			   csum | NET_OFFLOAD_TSO4),
		     -EINVAL);
}

Test(net_header_check, udp_fragmentation_and_unknown_gso_types_are_refused)
{
	cr_assert_eq(check(tso_header(VIRTIO_NET_HDR_GSO_UDP), FRAME_LEN,
			   ALL_OFFLOADS),
		     -EINVAL);
	for (unsigned int type = 5; type < 0x80; type++) {
		cr_assert_eq(check(tso_header((uint8_t)type), FRAME_LEN,
				   ALL_OFFLOADS),
			     -EINVAL, "gso_type %u", type);
	}
	cr_assert_eq(check(tso_header(2), FRAME_LEN, ALL_OFFLOADS), -EINVAL);
}

Test(net_header_check, ecn_only_on_tso_with_its_offload)
{
	const uint32_t tso4 = NET_OFFLOAD_CSUM | NET_OFFLOAD_TSO4;

	cr_assert_eq(check(tso_header(VIRTIO_NET_HDR_GSO_TCPV4 |
				      VIRTIO_NET_HDR_GSO_ECN),
			   FRAME_LEN, tso4 | NET_OFFLOAD_TSO_ECN),
		     0);
	cr_assert_eq(check(tso_header(VIRTIO_NET_HDR_GSO_TCPV4 |
				      VIRTIO_NET_HDR_GSO_ECN),
			   FRAME_LEN, tso4),
		     -EINVAL);
}

Test(net_header_check, ecn_without_gso_is_refused)
{
	struct virtio_net_hdr ecn_only = { .gso_type = VIRTIO_NET_HDR_GSO_ECN };

	cr_assert_eq(check(ecn_only, FRAME_LEN, ALL_OFFLOADS), -EINVAL);
}

Test(net_header_check, gso_needs_a_segment_size)
{
	struct virtio_net_hdr no_size = tso_header(VIRTIO_NET_HDR_GSO_TCPV4);

	no_size.gso_size = 0;
	cr_assert_eq(check(no_size, FRAME_LEN, ALL_OFFLOADS), -EINVAL);
}

Test(net_header_check, gso_headers_must_lie_inside_the_frame)
{
	struct virtio_net_hdr headers = tso_header(VIRTIO_NET_HDR_GSO_TCPV6);

	headers.hdr_len = FRAME_LEN;
	cr_assert_eq(check(headers, FRAME_LEN, ALL_OFFLOADS), 0);
	headers.hdr_len = FRAME_LEN + 1;
	cr_assert_eq(check(headers, FRAME_LEN, ALL_OFFLOADS), -EINVAL);
}
