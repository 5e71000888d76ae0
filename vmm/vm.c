#include "vm_private.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../devices/log_limit.h"
#include "../devices/disk.h"
#include "../devices/net_slirp.h"
#include "../devices/net_tap.h"
#include "../devices/virtio/blk.h"
#include "../devices/virtio/net.h"
#include "../devices/virtio/rng.h"
#include "../firmware/boot.h"
#include "config.h"
#include "display.h"
#include "machine_layout.h"

/* Adds a device to the ordered list; name is copied. */
static void add_record(struct vm *vm, struct device_record record)
{
	unsigned int index = vm->device_count++;

	/* VM_MAX_DEVICES counts every device vm_create can make. */
	if (index >= VM_MAX_DEVICES)
		abort();
	snprintf(vm->device_names[index], VM_DEVICE_NAME_SIZE, "%s",
		 record.name);
	record.name = vm->device_names[index];
	vm->devices[index] = record;
}

/* Legacy (ISA) interrupt lines go through KVM_IRQ_LINE to the in-kernel
 * PIC and IOAPIC; edge-triggered ISA inputs see the level change. */
static void set_irq_level(void *opaque, uint32_t gsi, bool level)
{
	struct vm *vm = opaque;
	struct kvm_irq_level irq = { .irq = gsi, .level = level };

	if (ioctl(vm->fd, KVM_IRQ_LINE, &irq))
		fprintf(stderr, "vessel: KVM_IRQ_LINE %u: %s\n", gsi, strerror(errno));
}

static struct irq_line irq_line_for(struct vm *vm, uint32_t gsi)
{
	return (struct irq_line){ .set_level = set_irq_level, .opaque = vm,
				  .gsi = gsi };
}

static void on_guest_reset(void *opaque)
{
	vm_request_stop(opaque, VM_STOP_RESET, NULL);
}

static void on_guest_power_off(void *opaque)
{
	vm_request_stop(opaque, VM_STOP_POWER_OFF, NULL);
}

static void on_vcpu_stop(void *opaque, enum vcpu_stop_reason reason,
			 const char *message)
{
	static const enum vm_stop_reason vm_reason[] = {
		[VCPU_STOP_RESET] = VM_STOP_RESET,
		[VCPU_STOP_POWER_OFF] = VM_STOP_POWER_OFF,
		[VCPU_STOP_ERROR] = VM_STOP_ERROR,
	};
	vm_request_stop(opaque, vm_reason[reason], message);
}

static int watch_fd(void *opaque, int fd, uint32_t events,
		    device_fd_handler handler, void *handler_opaque)
{
	struct vm *vm = opaque;

	return event_loop_add(vm->loop, fd, events, handler, handler_opaque);
}

static int modify_fd(void *opaque, int fd, uint32_t events)
{
	struct vm *vm = opaque;

	return event_loop_modify(vm->loop, fd, events);
}

static int unwatch_fd(void *opaque, int fd)
{
	struct vm *vm = opaque;

	return event_loop_remove(vm->loop, fd);
}

static int add_poller(void *opaque, const struct device_poller *poller,
		      void *poller_opaque)
{
	struct vm *vm = opaque;

	return event_loop_add_poller(vm->loop, poller, poller_opaque);
}

static int remove_poller(void *opaque, void *poller_opaque)
{
	struct vm *vm = opaque;

	return event_loop_remove_poller(vm->loop, poller_opaque);
}

static int add_poll_source(void *opaque, const struct poll_source *source,
			   void *source_opaque)
{
	struct vm *vm = opaque;

	return event_loop_add_source(vm->loop, source, source_opaque);
}

static int remove_poll_source(void *opaque, void *source_opaque)
{
	struct vm *vm = opaque;

	return event_loop_remove_source(vm->loop, source_opaque);
}

static int msi_route(void *opaque, const void *function, unsigned int vector,
		     uint64_t address, uint32_t data)
{
	static struct log_limit failures = LOG_LIMIT_INIT; /* at the guest's pace */
	struct vm *vm = opaque;
	int result = interrupts_msi_route(&vm->interrupts, function, vector,
					  address, data);

	if (result)
		log_limited(&failures, "routing MSI vector %u: %s", vector,
			    strerror(-result));
	return result;
}

static void msi_signal(void *opaque, const void *function, unsigned int vector)
{
	struct vm *vm = opaque;

	interrupts_msi_signal(&vm->interrupts, function, vector);
}

/* KVM completes the guest's write at address by signalling fd, without an
 * exit to vessel (KVM API, KVM_IOEVENTFD). */
static int ioeventfd(void *opaque, uint64_t address, uint32_t length, int fd,
		     bool assign)
{
	struct vm *vm = opaque;
	struct kvm_ioeventfd request = {
		.addr = address,
		.len = length,
		.fd = fd,
		.flags = assign ? 0 : KVM_IOEVENTFD_FLAG_DEASSIGN,
	};

	if (ioctl(vm->fd, KVM_IOEVENTFD, &request)) {
		static struct log_limit failures = LOG_LIMIT_INIT; /* BAR moves */
		int saved = errno;
		log_limited(&failures, "KVM_IOEVENTFD at 0x%llx: %s",
			    (unsigned long long)address, strerror(saved));
		return -saved;
	}
	return 0;
}

/* Puts a virtio device on PCI bus 0 with its BAR at the next free place
 * of the PCI MMIO window, and in the device list as name. */
static int add_virtio_function(struct vm *vm, struct virtio_device *device,
			       const char *name, struct virtio_pci **function)
{
	if (vm->next_bar_address + VIRTIO_PCI_BAR_SIZE > LAYOUT_PCI_MMIO_END)
		return -ENOSPC;
	*function = virtio_pci_create(device, &vm->virtio_platform,
				      vm->next_bar_address);
	if (!*function)
		return -errno;
	vm->next_bar_address += VIRTIO_PCI_BAR_SIZE;
	int result = pci_bus_add_device(vm->pci, virtio_pci_function(*function));
	if (!result)
		add_record(vm, virtio_pci_record(*function, name));
	return result;
}

/* As QEMU's virtio-blk-pci: a queue per vCPU unless told, so that Linux
 * maps each vCPU to a queue of its own and its completions interrupt the
 * vCPU that submitted them. */
static unsigned int disk_queue_count(const struct vm_config *vm_config,
				     const struct disk_config *config)
{
	if (config->queues)
		return config->queues;
	return vm_config->cpu_count < OPTIONS_MAX_DISK_QUEUES
		       ? vm_config->cpu_count
		       : OPTIONS_MAX_DISK_QUEUES;
}

static int create_disk(struct vm *vm, const struct disk_config *config,
		       struct vm_disk *disk, char *err, size_t err_len)
{
	const struct disk_options options = config_disk_options(config);
	char name[VM_DEVICE_NAME_SIZE];
	int result = disk_open(&disk->disk, &options, err, err_len);

	if (result)
		return result;
	snprintf(name, sizeof(name), "virtio-blk%u", (unsigned int)(disk - vm->disks));
	disk->blk = virtio_blk_create(disk->disk, disk_queue_count(vm->config, config),
				      &vm->device_context);
	result = disk->blk ? add_virtio_function(vm, virtio_blk_device(disk->blk),
						 name, &disk->function) : -errno;
	if (result)
		snprintf(err, err_len, "--disk %s: %s", config->path,
			 strerror(-result));
	return result;
}

static void destroy_disk(struct vm_disk *disk)
{
	virtio_pci_destroy(disk->function);
	virtio_blk_destroy(disk->blk);
	if (disk->disk)
		disk_close(disk->disk);
}

static struct net_backend *create_net_backend(struct vm *vm,
					      const struct net_config *config,
					      char *err, size_t err_len)
{
	if (config->backend == NET_BACKEND_USER)
		return net_slirp_create(&vm->device_context, &config->user, err,
					err_len);
	/* The backend takes a copy of an inherited descriptor. */
	struct net_tap_options options = { .ifname = config->tap_name,
					   .fd = config->tap_fd };
	return net_tap_create(&vm->device_context, &options, err, err_len);
}

static int create_nic(struct vm *vm, const struct net_config *config,
		      struct vm_nic *nic, char *err, size_t err_len)
{
	struct net_backend *backend = create_net_backend(vm, config, err, err_len);

	if (!backend)
		return -EINVAL;
	nic->net = virtio_net_create(&vm->device_context, backend, config->mac);
	if (!nic->net) {
		int saved = errno;
		backend->ops->destroy(backend);
		snprintf(err, err_len, "creating virtio-net: %s", strerror(saved));
		return -saved;
	}
	char name[VM_DEVICE_NAME_SIZE];
	snprintf(name, sizeof(name), "virtio-net%u", (unsigned int)(nic - vm->nics));
	int result = add_virtio_function(vm, virtio_net_device(nic->net), name,
					 &nic->function);
	if (result)
		snprintf(err, err_len, "adding virtio-net: %s", strerror(-result));
	return result;
}

static void destroy_nic(struct vm_nic *nic)
{
	virtio_pci_destroy(nic->function);
	virtio_net_destroy(nic->net);
}

static int create_virtio_devices(struct vm *vm, char *err, size_t err_len)
{
	vm->device_context = (struct device_context){
		.memory = &vm->memory.guest,
		.watch_fd = watch_fd,
		.modify_fd = modify_fd,
		.unwatch_fd = unwatch_fd,
		.add_poll_source = add_poll_source,
		.remove_poll_source = remove_poll_source,
		.add_poller = add_poller,
		.remove_poller = remove_poller,
		.context_opaque = vm,
	};
	vm->virtio_platform = (struct virtio_pci_platform){
		.mmio_bus = vm->mmio_bus,
		.msi_route = msi_route,
		.msi_signal = msi_signal,
		.ioeventfd = ioeventfd,
		.opaque = vm,
	};
	vm->next_bar_address = LAYOUT_PCI_MMIO_START;

	/* Disks first, so the guest names them vda, vdb, ... in the order
	 * of --disk (it probes PCI slots in order). */
	for (unsigned int i = 0; i < vm->config->disk_count; i++) {
		int result = create_disk(vm, &vm->config->disks[i], &vm->disks[i],
					 err, err_len);
		if (result)
			return result;
	}
	/* Then NICs, eth0, eth1, ... in the order of --net. */
	for (unsigned int i = 0; i < vm->config->nic_count; i++) {
		int result = create_nic(vm, &vm->config->nics[i], &vm->nics[i],
					err, err_len);
		if (result)
			return result;
	}
	/* Entropy for every guest: the generic kernel waits for it at boot. */
	vm->rng = virtio_rng_create(&vm->device_context);
	int result = vm->rng ? add_virtio_function(vm, virtio_rng_device(vm->rng),
						   "virtio-rng",
						   &vm->rng_function) : -ENOMEM;
	if (result)
		snprintf(err, err_len, "creating virtio-rng: %s", strerror(-result));
	return result;
}

static int create_kvm_vm(struct vm *vm, char *err, size_t err_len)
{
	const char *step;

	/* KVM returns EINTR when a signal arrives while it sets the VM up
	 * (seen in the emulated host); nothing was created, so ask again. */
	do {
		vm->fd = ioctl(vm->host->fd, KVM_CREATE_VM, 0);
	} while (vm->fd < 0 && errno == EINTR);
	if (vm->fd < 0) {
		step = "KVM_CREATE_VM";
		goto fail;
	}
	vm->interrupts.vm_fd = vm->fd;
	step = "KVM_SET_TSS_ADDR";
	if (ioctl(vm->fd, KVM_SET_TSS_ADDR, LAYOUT_KVM_TSS_ADDRESS))
		goto fail;
	uint64_t identity_map = LAYOUT_KVM_IDENTITY_MAP_ADDRESS;
	step = "KVM_SET_IDENTITY_MAP_ADDR";
	if (ioctl(vm->fd, KVM_SET_IDENTITY_MAP_ADDR, &identity_map))
		goto fail;
	/* PIC, IOAPIC and LAPICs in the kernel: interrupt delivery never
	 * waits for vessel (docs/architecture.md, threads). */
	step = "KVM_CREATE_IRQCHIP";
	if (ioctl(vm->fd, KVM_CREATE_IRQCHIP, 0))
		goto fail;
	/* The PIT too, with the PC speaker port (0x61) it gates. */
	struct kvm_pit_config pit = { .flags = KVM_PIT_SPEAKER_DUMMY };
	step = "KVM_CREATE_PIT2";
	if (ioctl(vm->fd, KVM_CREATE_PIT2, &pit))
		goto fail;
	return 0;
fail:
	snprintf(err, err_len, "%s: %s", step, strerror(errno));
	return -errno;
}

static int create_devices(struct vm *vm, char *err, size_t err_len)
{
	int result;

	vm->pio_bus = bus_create("pio");
	vm->mmio_bus = bus_create("mmio");
	vm->serial = serial_create(irq_line_for(vm, LAYOUT_COM1_GSI),
				   console_serial_backend(vm->console));
	vm->i8042 = i8042_create(irq_line_for(vm, LAYOUT_KEYBOARD_GSI),
				 irq_line_for(vm, LAYOUT_MOUSE_GSI),
				 on_guest_reset, vm);
	vm->rtc = cmos_rtc_create(NULL);
	vm->pci = pci_bus_create();
	vm->acpi_pm = acpi_pm_create(LAYOUT_ACPI_S5_SLEEP_TYPE,
				     irq_line_for(vm, LAYOUT_ACPI_SCI_GSI),
				     on_guest_power_off, vm);
	if (!vm->pio_bus || !vm->mmio_bus || !vm->serial || !vm->i8042 ||
	    !vm->rtc || !vm->pci || !vm->acpi_pm) {
		snprintf(err, err_len, "out of memory for devices");
		return -ENOMEM;
	}
	const char *device = "serial";
	result = serial_attach(vm->serial, vm->pio_bus, LAYOUT_COM1_PORT);
	if (!result) {
		device = "i8042";
		result = i8042_attach(vm->i8042, vm->pio_bus,
				      LAYOUT_I8042_DATA_PORT,
				      LAYOUT_I8042_COMMAND_PORT);
	}
	if (!result) {
		device = "cmos-rtc";
		result = cmos_rtc_attach(vm->rtc, vm->pio_bus,
					 LAYOUT_CMOS_RTC_PORT);
	}
	if (!result) {
		device = "pci";
		result = pci_bus_attach(vm->pci, vm->pio_bus,
					LAYOUT_PCI_CONFIG_PORT);
	}
	if (!result) {
		device = "acpi-pm";
		result = acpi_pm_attach(vm->acpi_pm, vm->pio_bus,
					LAYOUT_ACPI_PM1_EVENT_PORT,
					LAYOUT_ACPI_PM1_CONTROL_PORT);
	}
	if (result) {
		snprintf(err, err_len, "attaching %s: %s", device, strerror(-result));
		return result;
	}
	add_record(vm, serial_record(vm->serial, "serial0"));
	add_record(vm, i8042_record(vm->i8042, "i8042"));
	add_record(vm, cmos_rtc_record(vm->rtc, "cmos-rtc"));
	add_record(vm, pci_bus_record(vm->pci, "pci-host"));
	add_record(vm, acpi_pm_record(vm->acpi_pm, "acpi-pm"));
	return 0;
}

/* Closing the display's window asks the guest to power off, as the ACPI
 * power button does; closing it again, before the guest has, stops the VM
 * at once. Display thread. */
static void on_display_window_closed(void *opaque)
{
	struct vm *vm = opaque;

	if (!atomic_exchange(&vm->window_closed_once, true)) {
		acpi_pm_press_power_button(vm->acpi_pm);
		return;
	}
	vm_request_stop(vm, VM_STOP_REQUESTED,
			"the display window was closed twice");
}

/* The screen, keyboard and mouse of --display (vmm/display.h): a new
 * window, or the one a suspended VM kept, already in vm->display. */
static int create_display(struct vm *vm, char *err, size_t err_len)
{
	const struct display_machine machine = {
		.vm_fd = vm->fd,
		.input = vm->i8042,
		.name = vm->config->name,
		.window_closed = on_display_window_closed,
		.opaque = vm,
	};

	int result = vm->display ?
		display_attach(vm->display, &machine, err, err_len) :
		display_create(&vm->display, &vm->config->display, &machine,
			       err, err_len);

	if (!result && vm->display)
		add_record(vm, display_record(vm->display, "display"));
	return result;
}

/* Maps a file read-only for the duration of the load. */
static int map_file(const char *path, const uint8_t **data, size_t *size,
		    char *err, size_t err_len)
{
	struct stat info;
	int fd = boot_file_open(path, &info, err, err_len);

	if (fd < 0)
		return fd;
	*size = (size_t)info.st_size;
	*data = NULL;
	if (*size) {
		void *mapping = mmap(NULL, *size, PROT_READ, MAP_PRIVATE, fd, 0);
		if (mapping == MAP_FAILED) {
			int saved = errno;
			snprintf(err, err_len, "%s: %s", path, strerror(saved));
			close(fd);
			return -saved;
		}
		*data = mapping;
	}
	close(fd);
	return 0;
}

/* Loads kernel and initrd, then lets the files go: vessel keeps no copy of
 * them while the guest runs (a reset loads them afresh). */
static int load_guest(struct vm *vm, struct boot_entry *entry, char *err,
		      size_t err_len)
{
	struct kernel_image kernel;
	const uint8_t *initrd = NULL;
	size_t initrd_size = 0;
	int result = kernel_image_open(vm->config->kernel_path, &kernel, err,
				       err_len);

	if (result)
		return result;
	if (vm->config->initrd_path) {
		result = map_file(vm->config->initrd_path, &initrd, &initrd_size,
				  err, err_len);
		if (result) {
			kernel_image_close(&kernel);
			return result;
		}
	}
	struct boot_request request = {
		.kernel = &kernel,
		.initrd = initrd,
		.initrd_size = initrd_size,
		.cmdline = vm->config->cmdline,
		.cpu_count = vm->config->cpu_count,
		.machine = machine_layout_firmware(),
		.framebuffer = display_boot_framebuffer(vm->display),
	};
	result = boot_load(&request, &vm->memory.guest, entry, err, err_len);
	if (initrd_size)
		munmap((void *)initrd, initrd_size);
	kernel_image_close(&kernel);
	return result;
}

/* The vCPUs, the boot vCPU at the kernel's entry; with no entry (a
 * restore) their registers are left for the snapshot to set. */
static int create_vcpus(struct vm *vm, const struct boot_entry *entry,
			char *err, size_t err_len)
{
	struct kvm_cpuid2 *cpuid;
	size_t cpuid_size = sizeof(*cpuid) + vm->host->supported_cpuid->nent *
						     sizeof(cpuid->entries[0]);
	int result;

	cpuid = malloc(cpuid_size);
	vm->vcpus = calloc(vm->config->cpu_count, sizeof(*vm->vcpus));
	if (!cpuid || !vm->vcpus) {
		free(cpuid);
		snprintf(err, err_len, "out of memory for vCPUs");
		return -ENOMEM;
	}
	memcpy(cpuid, vm->host->supported_cpuid, cpuid_size);
	result = cpuid_apply_mask(cpuid, &vm->config->feature_mask, err, err_len);
	if (result) {
		free(cpuid);
		return result;
	}
	struct vcpu_context context = {
		.pio_bus = vm->pio_bus,
		.mmio_bus = vm->mmio_bus,
		.memory = &vm->memory.guest,
		.stop_machine = on_vcpu_stop,
		.opaque = vm,
	};
	for (unsigned int i = 0; i < vm->config->cpu_count; i++) {
		result = vcpu_create(&vm->vcpus[i], vm->fd, i,
				     vm->host->vcpu_mmap_size, cpuid,
				     vm->config->cpu_count, &context, err,
				     err_len);
		if (result)
			break;
		vm->vcpu_count++;
	}
	free(cpuid);
	if (result || !entry)
		return result;

	/* The boot vCPU starts at the kernel's entry; the others wait in
	 * KVM's wait-for-SIPI state until the kernel starts them. */
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	int boot_fd = vm->vcpus[0].fd;
	if (ioctl(boot_fd, KVM_GET_REGS, &regs) ||
	    ioctl(boot_fd, KVM_GET_SREGS, &sregs)) {
		snprintf(err, err_len, "reading boot vCPU registers: %s",
			 strerror(errno));
		return -errno;
	}
	boot_entry_registers(entry, &regs, &sregs);
	if (ioctl(boot_fd, KVM_SET_SREGS, &sregs) ||
	    ioctl(boot_fd, KVM_SET_REGS, &regs)) {
		snprintf(err, err_len, "setting boot vCPU registers: %s",
			 strerror(errno));
		return -errno;
	}
	return 0;
}

/* Builds the machine of config: booted from its kernel, or (image)
 * restored from a snapshot with no kernel loaded and no boot registers. */
static struct vm *assemble(const struct vm_config *config,
			   const struct kvm_host *host, struct event_loop *loop,
			   struct console *console, const struct vm_owner *owner,
			   const struct vm_image *image, struct display *display,
			   char *err, size_t err_len)
{
	struct vm *vm = calloc(1, sizeof(*vm));
	struct boot_entry entry;

	if (!vm) {
		if (image)
			close(image->memory.fd);
		display_destroy(display);
		snprintf(err, err_len, "out of memory for the VM");
		return NULL;
	}
	/* The VM owns a kept display from here, failure or not. */
	vm->display = display;
	vm->config = config;
	vm->host = host;
	vm->loop = loop;
	vm->console = console;
	vm->owner = *owner;
	vm->fd = -1;
	vm->memory.fd = -1;
	pthread_mutex_init(&vm->stop_lock, NULL);
	interrupts_init(&vm->interrupts, -1);

	int result = create_kvm_vm(vm, err, err_len);
	if (image && result)
		close(image->memory.fd);
	else if (image)
		result = vm_memory_open_image(&vm->memory, config->memory_size,
					      &image->memory, err, err_len);
	else
		result = vm_memory_create(&vm->memory, config->memory_size, err,
					  err_len);
	if (result ||
	    vm_memory_register(&vm->memory, vm->fd, err, err_len) ||
	    create_devices(vm, err, err_len) ||
	    create_virtio_devices(vm, err, err_len) ||
	    create_display(vm, err, err_len) ||
	    (!image && load_guest(vm, &entry, err, err_len)) ||
	    create_vcpus(vm, image ? NULL : &entry, err, err_len) ||
	    (image && vm_restore_state(vm, image->state, err, err_len))) {
		vm_destroy(vm);
		return NULL;
	}
	return vm;
}

struct vm *vm_create(const struct vm_config *config,
		     const struct kvm_host *host, struct event_loop *loop,
		     struct console *console, const struct vm_owner *owner,
		     struct display *display, char *err, size_t err_len)
{
	return assemble(config, host, loop, console, owner, NULL, display, err,
			err_len);
}

struct vm *vm_restore(const struct vm_config *config,
		      const struct kvm_host *host, struct event_loop *loop,
		      struct console *console, const struct vm_owner *owner,
		      const struct vm_image *image, char *err, size_t err_len)
{
	return assemble(config, host, loop, console, owner, image,
			image->display, err, err_len);
}

void vm_destroy(struct vm *vm)
{
	if (!vm)
		return;
	for (unsigned int i = 0; i < vm->vcpu_count; i++) {
		vcpu_stop(&vm->vcpus[i]);
		vcpu_destroy(&vm->vcpus[i]);
	}
	free(vm->vcpus);
	display_destroy(vm->display);
	virtio_pci_destroy(vm->rng_function);
	virtio_rng_destroy(vm->rng);
	for (unsigned int i = 0; i < OPTIONS_MAX_NICS; i++)
		destroy_nic(&vm->nics[i]);
	for (unsigned int i = 0; i < OPTIONS_MAX_DISKS; i++)
		destroy_disk(&vm->disks[i]);
	acpi_pm_destroy(vm->acpi_pm);
	pci_bus_destroy(vm->pci);
	cmos_rtc_destroy(vm->rtc);
	i8042_destroy(vm->i8042);
	serial_destroy(vm->serial);
	bus_destroy(vm->mmio_bus);
	bus_destroy(vm->pio_bus);
	dirty_log_stop(&vm->dirty_log);
	vm_memory_destroy(&vm->memory);
	interrupts_destroy(&vm->interrupts);
	if (vm->fd >= 0)
		close(vm->fd);
	pthread_mutex_destroy(&vm->stop_lock);
	free(vm);
}
