#include "net_backend.h"

#include <errno.h>

/* vessel runs on little-endian x86: the header's fields are used as they
 * are in memory. */
int net_header_check(const struct virtio_net_hdr *hdr, size_t frame_len,
		     uint32_t offloads)
{
	uint8_t gso = hdr->gso_type & ~VIRTIO_NET_HDR_GSO_ECN;

	if (frame_len < NET_FRAME_MIN || frame_len > NET_FRAME_MAX)
		return -EINVAL;
	if (hdr->flags & ~(VIRTIO_NET_HDR_F_NEEDS_CSUM | VIRTIO_NET_HDR_F_DATA_VALID))
		return -EINVAL;
	if (hdr->flags & VIRTIO_NET_HDR_F_NEEDS_CSUM) {
		/* The 16-bit checksum field lies inside the frame. */
		if (!(offloads & NET_OFFLOAD_CSUM) ||
		    (size_t)hdr->csum_start + hdr->csum_offset + 2 > frame_len)
			return -EINVAL;
	}
	switch (gso) {
	case VIRTIO_NET_HDR_GSO_NONE:
		/* ECN marks a TSO frame only. */
		return hdr->gso_type == VIRTIO_NET_HDR_GSO_NONE ? 0 : -EINVAL;
	case VIRTIO_NET_HDR_GSO_TCPV4:
		if (!(offloads & NET_OFFLOAD_TSO4))
			return -EINVAL;
		break;
	case VIRTIO_NET_HDR_GSO_TCPV6:
		if (!(offloads & NET_OFFLOAD_TSO6))
			return -EINVAL;
		break;
	default:
		return -EINVAL;
	}
	if ((hdr->gso_type & VIRTIO_NET_HDR_GSO_ECN) &&
	    !(offloads & NET_OFFLOAD_TSO_ECN))
		return -EINVAL;
	/* Segmenting needs a segment size and headers inside the frame. */
	if (hdr->gso_size == 0 || hdr->hdr_len > frame_len)
		return -EINVAL;
	return 0;
}
