#!/usr/bin/env python3
"""Writes the seed corpus of each fuzz target into corpus/NAME/: a handful
of meaningful inputs each (a well-formed request of every kind a device
knows, and the classic malformed ones), in the operation encoding the
target's header comment describes. The files are committed; run this
again after changing an encoding. corpus/snapshot is not written here: it
holds the state.dtb of a real snapshot (`vessel snapshot` of the selftest
guest), which no script can make without a VM.

Usage: tests/fuzz/make_corpus.py
"""
import os
import shutil
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def u8(v):
    return struct.pack("<B", v & 0xff)


def u16(v):
    return struct.pack("<H", v & 0xffff)


def u32(v):
    return struct.pack("<I", v & 0xffffffff)


def u64(v):
    return struct.pack("<Q", v & 0xffffffffffffffff)


# --- fuzz_driver.c's operations, without their operation byte -------------

DATA = 0x10000
TABLE = 0xa000
F_NEXT, F_WRITE, F_INDIRECT = 1, 2, 4


def desc(slot, addr, length, flags, nxt):
    return u16(slot) + u32(addr) + u32(length) + u16(flags) + u16(nxt)


def chain(head, segments, first_writable):
    """segments: (offset in the data area, length)."""
    body = u8(len(segments) - 1 | first_writable << 4) + u16(head)
    for offset, length in segments:
        body += u16(offset) + u16(length)
    return body


def avail(head):
    return u16(head)


def avail_idx(idx):
    return u16(idx)


def flags(avail_flags, used_event):
    return u16(avail_flags) + u16(used_event)


def write(gpa, data):
    return u32(gpa) + u8(len(data)) + data


DESC, CHAIN, AVAIL, AVAIL_IDX, FLAGS, WRITE = range(6)

# --- targets --------------------------------------------------------------


def virtqueue():
    def drv(op, body):
        return u8(op << 1) + body

    def dev(op, body=b""):
        return u8(op << 1 | 1) + body
    pop = dev(0, u16(0) + u16(0) + u16(16) + u16(4))
    push = dev(1, u32(16))
    size16, event_idx, indirect = 4, 0x10, 0x20
    return {
        "chain_pop_push": u8(size16) + drv(CHAIN, chain(0, [(0, 16), (0x100, 512), (0x400, 1)], 1)) + pop + push,
        "indirect_table": u8(size16 | indirect)
            + drv(DESC, desc(0, TABLE, 48, F_INDIRECT, 0))
            + drv(DESC, desc(256, DATA, 16, F_NEXT, 1))
            + drv(DESC, desc(257, DATA + 0x100, 512, F_NEXT | F_WRITE, 2))
            + drv(DESC, desc(258, DATA + 0x400, 1, F_WRITE, 0))
            + drv(AVAIL, avail(0)) + pop + push,
        "looping_chain": u8(size16) + drv(DESC, desc(0, DATA, 16, F_NEXT, 1))
            + drv(DESC, desc(1, DATA, 16, F_NEXT, 0)) + drv(AVAIL, avail(0)) + pop,
        "event_idx": u8(size16 | event_idx)
            + drv(CHAIN, chain(0, [(0, 64)], 0)) + drv(CHAIN, chain(1, [(0, 64)], 0))
            + drv(FLAGS, flags(0, 1)) + pop + push + dev(3) + pop + push + dev(3)
            + dev(4) + u8(0x80 | 4 << 1 | 1) + dev(5),
        "ring_runs_ahead": u8(size16) + drv(AVAIL_IDX, avail_idx(0x8000)) + pop + dev(5),
        "rewind": u8(size16) + drv(CHAIN, chain(0, [(0, 8)], 1)) + drv(CHAIN, chain(2, [(0, 8)], 1))
            + pop + pop + dev(2, u8(2)) + pop + push + push,
    }


def blk_request(kind, sector, data_len, first_writable, extra=b""):
    """A request header at DATA, optional payload, a status byte: the
    write operations that lay it out and the chain that sends it."""
    header = u32(kind) + u32(0) + u64(sector)
    ops = u8(WRITE << 2) + write(DATA, header)
    segments = [(0, 16)]
    if extra:
        ops += u8(WRITE << 2) + write(DATA + 0x100, extra)
    if data_len:
        segments.append((0x100, data_len))
    segments.append((0x2000, 1))
    return ops + u8(CHAIN << 2) + chain(0, segments, first_writable)


def virtio_blk():
    features = (1 << 32) | (1 << 28) | (1 << 9) | (1 << 13) | (1 << 14)
    start = u8(0) + u64(features) + u8(4)
    start_event_idx = u8(0) + u64(features | 1 << 29) + u8(4)
    kick = u8(2)
    wait = u8(3 | 0x80)
    T_IN, T_OUT, T_FLUSH, T_GET_ID, T_DISCARD, T_WRITE_ZEROES = 0, 1, 4, 8, 11, 13
    range_segment = u64(8) + u32(8) + u32(0)
    return {
        "read": start + blk_request(T_IN, 0, 4096, 1) + kick + wait + wait,
        "write": start + blk_request(T_OUT, 16, 4096, 2) + kick + wait + wait,
        "flush": start + blk_request(T_FLUSH, 0, 0, 1) + kick + wait,
        "get_id": start + blk_request(T_GET_ID, 0, 20, 1) + kick + wait,
        "discard": start + blk_request(T_DISCARD, 0, 16, 2, range_segment) + kick + wait,
        "write_zeroes": start_event_idx + blk_request(T_WRITE_ZEROES, 0, 16, 2, range_segment) + kick + wait,
        "read_past_end": start + blk_request(T_IN, (1 << 20) // 512 - 1, 4096, 1) + kick + wait,
        "read_only_write": u8(1) + u64(features) + u8(4) + blk_request(T_OUT, 0, 512, 2) + kick + wait,
        "config": start + u8(3 | 0x40) + u8(3) + u8(0) + u8(3 | 0x40) + u8(2) + u8(12),
    }


def virtio_net():
    CSUM, GUEST_CSUM, HOST_TSO4, MRG_RXBUF, STATUS, CTRL_VQ, ANNOUNCE = 0, 1, 11, 15, 16, 17, 21
    GUEST_TSO4 = 7
    base = 1 << 32 | 1 << 28 | 1 << 29 | 1 << STATUS | 1 << CTRL_VQ | 1 << ANNOUNCE
    offloads = base | 1 << CSUM | 1 << GUEST_CSUM | 1 << HOST_TSO4 | 1 << GUEST_TSO4

    def start(features):
        return u64(features) + u8(4) + u8(4) + u8(4)

    def drv(queue, op, body):
        return u8(op << 4 | queue << 2) + body

    def kick(queue):
        return u8(queue << 2 | 1)

    def frame_from_network(length, header=b"\0" * 12):
        return u8(2) + u32(length) + u16(length // 2) + u16(0) + header
    events = u8(3 | 0x80)
    ethernet = b"\xff" * 6 + b"\x02\x76\x73\0\0\x02" + b"\x08\x00"
    ip_tcp = bytes(20 + 20) + bytes(16)
    plain = bytes(12) + ethernet + ip_tcp
    # NEEDS_CSUM at the TCP checksum, GSO TCPV4 with a 1448-byte MSS.
    gso = (u8(1) + u8(1) + u16(54) + u16(1448) + u16(34) + u16(16) + u16(0)
           + ethernet + ip_tcp)
    rx_buffers = drv(0, CHAIN, chain(0, [(0x4000, 2048)], 0)) + drv(0, CHAIN, chain(1, [(0x5000, 2048)], 0))
    small_buffers = b"".join(drv(0, CHAIN, chain(i, [(0x4000 + i * 0x400, 1024)], 0)) for i in range(4))
    return {
        "transmit": start(base) + drv(1, WRITE, write(DATA, plain))
            + drv(1, CHAIN, chain(0, [(0, len(plain))], 8)) + kick(1) + events,
        "transmit_gso": start(offloads) + drv(1, WRITE, write(DATA, gso))
            + drv(1, CHAIN, chain(0, [(0, 12), (12, len(gso) - 12)], 8)) + kick(1) + events,
        "transmit_short": start(base) + drv(1, CHAIN, chain(0, [(0, 8)], 8)) + kick(1),
        "receive": start(base) + rx_buffers + kick(0) + frame_from_network(60) + events,
        "receive_mergeable": start(base | 1 << MRG_RXBUF) + small_buffers + kick(0)
            + u8(3 | 1 << 2) + frame_from_network(3000) + frame_from_network(60) + u8(3 | 1 << 2),
        "receive_no_buffers": start(base) + frame_from_network(60) + rx_buffers + kick(0) + events,
        "announce_ack": start(base) + u8(3 | 4 << 2) + drv(2, WRITE, write(DATA, b"\x03\x00"))
            + drv(2, CHAIN, chain(0, [(0, 2), (0x10, 1)], 1)) + kick(2) + u8(3 | 5 << 2) + u8(1) + u8(6),
        "link_down": start(base) + u8(3 | 3 << 2) + u8(3 | 3 << 2 | 0x80) + u8(3 | 2 << 2 | 0x40),
    }


def virtio_pci():
    SIZES = {1: 0, 2: 1, 4: 2, 8: 3}

    def config_write(offset, size, value):
        return u8(SIZES[size] << 3) + u64(value) + u8(offset)

    def config_read(offset, size):
        return u8(1 | SIZES[size] << 3) + u64(0) + u8(offset)

    def bar_write(offset, size, value):
        return u8(2 | SIZES[size] << 3) + u64(value) + u16(offset)

    def bar_read(offset, size):
        return u8(3 | SIZES[size] << 3) + u64(0) + u16(offset)
    events = u8(4)
    decode = config_write(0x04, 2, 0x6)
    negotiate = (bar_write(0x14, 1, 3) + bar_write(0x08, 4, 1) + bar_write(0x0c, 4, 1)
                 + bar_write(0x08, 4, 0) + bar_write(0x0c, 4, 0x3) + bar_write(0x14, 1, 0xb))
    queue = (bar_write(0x16, 2, 0) + bar_write(0x18, 2, 16) + bar_write(0x1a, 2, 1)
             + bar_write(0x20, 8, 0) + bar_write(0x28, 8, 0x1000) + bar_write(0x30, 8, 0x2000)
             + bar_write(0x1c, 2, 1))
    msix = (config_write(0x9a, 2, 0x8000) + bar_write(0x4010, 4, 0xfee00000)
            + bar_write(0x4018, 4, 0x41) + bar_write(0x401c, 4, 0) + bar_write(0x10, 2, 0))
    driver_ok = bar_write(0x14, 1, 0xf) + events
    chain_on_queue0 = u8(6 | CHAIN << 4) + chain(0, [(0, 64)], 1)
    return {
        "probe": decode + config_read(0x00, 4) + config_read(0x34, 1) + config_read(0x40, 4)
            + bar_read(0x00, 4) + bar_read(0x12, 2) + bar_read(0x2000, 4),
        "start_and_kick": decode + negotiate + queue + msix + driver_ok + chain_on_queue0
            + bar_write(0x3000, 2, 0) + events + bar_read(0x1000, 1),
        "reset": decode + negotiate + queue + driver_ok + bar_write(0x14, 1, 0) + events + bar_read(0x14, 1),
        "bad_features": decode + bar_write(0x14, 1, 3) + bar_write(0x08, 4, 1) + bar_write(0x0c, 4, 0)
            + bar_write(0x14, 1, 0xb) + bar_read(0x14, 1),
        "msix_masked": decode + negotiate + queue + msix + bar_write(0x401c, 4, 1) + driver_ok
            + chain_on_queue0 + bar_write(0x3000, 2, 0) + events + bar_read(0x5000, 8)
            + bar_write(0x401c, 4, 0) + config_write(0x9a, 2, 0xc000),
        "bar_move": config_write(0x10, 4, 0xffffffff) + config_read(0x10, 4) + config_write(0x14, 4, 0xffffffff)
            + config_write(0x10, 4, 0xd0000000) + config_write(0x14, 4, 0) + decode + bar_read(0x00, 4),
        "pci_cfg_window": config_write(0x88, 1, 0) + config_write(0x8c, 4, 0x14) + config_write(0x90, 4, 1)
            + config_read(0x94, 4) + config_write(0x94, 1, 3),
    }


def port(kind_read, size, offset, value=0):
    size_bits = {1: 0, 2: 2, 4: 3}[size]
    return u8(kind_read | size_bits << 1) + u8(offset) + u32(value)


def pci():
    # fuzz_pci.c: an op byte that is 0 mod 3 selects a register of slot
    # (op >> 2) % 3; others are port accesses from 0xcf7.
    select_slot1 = 6  # 6 % 3 == 0, (6 >> 2) % 3 == 1

    def select(register):
        return u8(select_slot1) + u8(register)

    def data_write(size, value, offset=5):
        return u8(1) + port(0, size, offset, value)

    def data_read(size, offset=5):
        return u8(1) + port(1, size, offset)
    return {
        "bar_sizing": select(0x10) + data_write(4, 0xffffffff) + data_read(4) + data_write(4, 0xc0000000),
        "bar64_move": select(0x18) + data_write(4, 0xffffffff) + select(0x1c) + data_write(4, 0xffffffff)
            + data_read(4) + data_write(4, 0x1) + select(0x04) + data_write(2, 0x2) + data_write(2, 0x0),
        "ids_read_only": select(0x00) + data_write(4, 0x12345678) + data_read(4) + select(0x08)
            + data_write(4, 0xffffffff) + select(0x0c) + data_write(4, 0xffffffff),
        "capability": select(0x34) + data_read(1) + select(0x40) + data_read(4) + data_write(4, 0xffffffff)
            + data_read(1, 6) + data_write(1, 0xff, 7),
        "address_port": u8(1) + port(0, 4, 1, 0x80000810) + u8(1) + port(1, 4, 1) + u8(1) + port(0, 1, 1, 0)
            + u8(1) + port(1, 2, 6),
    }


def serial():
    def out(register, value):
        return u8(0) + port(0, 1, 1 + register, value)

    def inp(register):
        return u8(0) + port(1, 1, 1 + register)

    def host(data):
        return u8(len(data) << 3 | 1) + data
    return {
        "init": out(3, 0x80) + out(0, 1) + out(1, 0) + out(3, 3) + out(2, 0xc7) + out(4, 0x0b)
            + out(1, 0x0f) + out(0, ord("A")) + inp(2) + inp(5),
        "receive": out(1, 1) + host(b"hello") + inp(2) + inp(5) + inp(0) + inp(0) + host(b"x" * 20) + inp(6),
        "loopback": out(4, 0x10) + out(0, 0x55) + inp(0) + inp(6) + out(4, 0x1f) + inp(6) + host(b"lost"),
        "fifo_off": out(2, 0) + host(b"ab") + inp(0) + inp(5) + out(7, 0x5a) + inp(7),
    }


def i8042():
    def command(value):
        return port(0, 1, 5, value)

    def data_write(value):
        return port(0, 1, 1, value)

    def status():
        return port(1, 1, 5)

    def data_read():
        return port(1, 1, 1)
    return {
        "self_test": command(0xaa) + status() + data_read() + command(0xab) + data_read() + command(0xa9) + data_read(),
        "command_byte": command(0x20) + data_read() + command(0x60) + data_write(0x47) + command(0x20) + data_read(),
        "output_port_reset": command(0xd0) + data_read() + command(0xd1) + data_write(0xfe),
        "pulse_reset": command(0xfe),
        "keyboard_write": data_write(0xff) + status() + data_read() + command(0xd4) + data_write(0xf4),
    }


def cmos_rtc():
    clock = u64(1_700_000_000) + u32(999_900_000)

    def read(register):
        return port(0, 1, 1, register) + port(1, 1, 2)

    def write(register, value):
        return port(0, 1, 1, register) + port(0, 1, 2, value)
    return {
        "read_clock": clock + b"".join(read(r) for r in (0x0a, 0, 2, 4, 6, 7, 8, 9, 0x32, 0x0b, 0x0c, 0x0d)),
        "binary_24h": clock + write(0x0b, 0x06) + read(0) + read(4) + read(9),
        "twelve_hour": clock + write(0x0b, 0x00) + read(4) + write(4, 0x81) + read(4),
        "set_clock": clock + write(0x0b, 0x82) + write(0, 0x59) + write(9, 0x99) + write(7, 0x31)
            + write(0x0b, 0x02) + read(9) + read(0x0e) + write(0x7f, 1) + port(1, 2, 1),
    }


def bzimage():
    kernel = 0x200
    image = bytearray(5 * 512 + kernel)
    image[0x1f1] = 4
    image[0x1f4:0x1f8] = u32(kernel // 16)
    image[0x1fe:0x200] = u16(0xaa55)
    image[0x200:0x202] = b"\xeb\x6a"
    image[0x202:0x206] = b"HdrS"
    image[0x206:0x208] = u16(0x020f)
    image[0x211] = 1
    image[0x214:0x218] = u32(0x100000)
    image[0x22c:0x230] = u32(0x7fffffff)
    image[0x230:0x234] = u32(0x200000)
    image[0x234] = 1
    image[0x236:0x238] = u16(3)
    image[0x238:0x23c] = u32(2047)
    image[0x258:0x260] = u64(16 << 20)
    image[0x260:0x264] = u32(8 << 20)
    old = bytearray(image)
    old[0x206:0x208] = u16(0x020b)
    huge = bytearray(image)
    huge[0x260:0x264] = u32(0xffffffff)
    return {"valid": bytes(image), "old_protocol": bytes(old), "huge_init_size": bytes(huge),
            "truncated": bytes(image[:0x250])}


def elf_pvh():
    def build(is64, entry_in_note, load_paddr=2 << 20, filesz=0x100, memsz=0x2000):
        note_offset, load_offset = 0x200, 0x300
        note = u32(4) + u32(8 if is64 else 4) + u32(18) + b"Xen\0"
        note += u64(entry_in_note) if is64 else u32(entry_in_note)
        if is64:
            ehdr = (b"\x7fELF" + bytes([2, 1, 1]) + bytes(9) + u16(2) + u16(62) + u32(1)
                    + u64(0) + u64(64) + u64(0) + u32(0) + u16(64) + u16(56) + u16(2)
                    + u16(0) + u16(0) + u16(0))
            phdrs = (u32(1) + u32(7) + u64(load_offset) + u64(load_paddr) + u64(load_paddr)
                     + u64(filesz) + u64(memsz) + u64(0x1000)
                     + u32(4) + u32(4) + u64(note_offset) + u64(0) + u64(0)
                     + u64(len(note)) + u64(0) + u64(4))
        else:
            ehdr = (b"\x7fELF" + bytes([1, 1, 1]) + bytes(9) + u16(2) + u16(3) + u32(1)
                    + u32(0) + u32(52) + u32(0) + u32(0) + u16(52) + u16(32) + u16(2)
                    + u16(0) + u16(0) + u16(0))
            phdrs = (u32(1) + u32(load_offset) + u32(load_paddr) + u32(load_paddr)
                     + u32(filesz) + u32(memsz) + u32(7) + u32(0x1000)
                     + u32(4) + u32(note_offset) + u32(0) + u32(0) + u32(len(note))
                     + u32(0) + u32(4) + u32(4))
        file = bytearray(load_offset + filesz)
        file[:len(ehdr)] = ehdr
        file[len(ehdr):len(ehdr) + len(phdrs)] = phdrs
        file[note_offset:note_offset + len(note)] = note
        # The target puts the magic in front itself.
        return bytes(file[4:])
    entry = (2 << 20) + 0x10
    return {
        "elf64": build(True, entry),
        "elf32": build(False, entry),
        "entry_outside": build(True, 0x1234),
        "load_below_1m": build(True, 0x1010, load_paddr=0x1000),
        "filesz_past_end": build(True, entry, filesz=0x100, memsz=0x80),
    }


def options():
    def argv(*args):
        return b"\0".join(a.encode() for a in args)
    return {
        "minimal": argv("--kernel", "/k"),
        "everything": argv("--kernel", "/k", "--initrd", "/i", "--cmdline", "console=ttyS0", "--memory", "1G",
                           "--cpus", "4", "--cpu-features", "-xsave,+cx16", "--no-reboot"),
        "disks": argv("-k", "/k", "--disk", "a.img,readonly,serial=abc", "--disk", "b.img,cache=none",
                      "--disk", "c.img,cache=writeback"),
        "nets": argv("-k", "/k", "--net", "user,mac=02:00:00:00:00:01,hostfwd=tcp:127.0.0.1:8080-:80,"
                     "hostfwd=udp::53-10.0.2.15:53,restrict=on", "--net", "tap,ifname=tap0", "--net", "tap,fd=3"),
        "sizes": argv("-k", "/k", "-m", "64K", "-m", "512M", "-m", "18446744073709551615", "-c", "x"),
        "short_grouped": argv("-hk", "/k"),
        "errors": argv("--cpus", "0", "--bogus", "--disk", ",serial=" + "x" * 30),
    }


def page_list():
    return {
        "three": u64(0) + u64(7) + u64(262143),
        "empty": b"",
        "unordered": u64(9) + u64(3),
        "beyond": u64(262144),
        "cut": u64(5) + b"\x01\x02",
    }


TARGETS = {
    "virtqueue": virtqueue, "virtio_blk": virtio_blk, "virtio_net": virtio_net,
    "virtio_pci": virtio_pci, "pci": pci, "serial": serial, "i8042": i8042,
    "cmos_rtc": cmos_rtc, "bzimage": bzimage, "elf_pvh": elf_pvh, "options": options,
    "page_list": page_list,
}


def main():
    for name, seeds in TARGETS.items():
        directory = os.path.join(HERE, "corpus", name)
        shutil.rmtree(directory, ignore_errors=True)
        os.makedirs(directory)
        for seed, data in seeds().items():
            with open(os.path.join(directory, seed), "wb") as out:
                out.write(data)


if __name__ == "__main__":
    main()
