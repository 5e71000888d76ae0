/*
 * A machine's state into a snapshot's state tree and back (vm.h's
 * vm_save, vm_save_memory and vm_restore): the VM's KVM state and clock,
 * every device by its record in the machine's order, every vCPU; and the
 * tracking of the guest's writes a diff snapshot is made of (dirty_log.h).
 */
#include "vm_private.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>

#include "vcpu_state.h"

#define VM_NODE "/vm"
#define DEVICES_NODE "/devices"

static int write_failed(char *err, size_t err_len, const char *what, int result)
{
	snprintf(err, err_len, "writing the state of %s: %s", what,
		 strerror(-result));
	return result;
}

static int save_devices(struct vm *vm, struct state_writer *writer, char *err,
			size_t err_len)
{
	char path[STATE_PATH_SIZE];

	for (unsigned int i = 0; i < vm->device_count; i++) {
		const struct device_record *device = &vm->devices[i];

		if (!device->ops->save) {
			snprintf(err, err_len, "%s cannot be saved by this vessel",
				 device->name);
			return -EOPNOTSUPP;
		}
		snprintf(path, sizeof(path), DEVICES_NODE "/%s", device->name);
		int result = state_writer_begin(writer, path,
						device->ops->state_version);
		if (result)
			return write_failed(err, err_len, device->name, result);
		result = device->ops->save(device->opaque, &writer->base);
		if (result == -EOPNOTSUPP) {
			snprintf(err, err_len, "%s is in a state this vessel "
				 "cannot save yet (a virtio device the guest has "
				 "set up)", device->name);
			return result;
		}
		if (result)
			return write_failed(err, err_len, device->name, result);
	}
	return 0;
}

int vm_save(struct vm *vm, struct state_writer *writer, char *err,
	    size_t err_len)
{
	struct kvm_clock_data clock = vm->paused_clock;
	char path[STATE_PATH_SIZE];

	if (!vm->clock_frozen && ioctl(vm->fd, KVM_GET_CLOCK, &clock)) {
		snprintf(err, err_len, "KVM_GET_CLOCK: %s", strerror(errno));
		return -errno;
	}
	int64_t realtime = vm->clock_frozen ? vm->paused_realtime_ns :
					      vcpu_state_realtime_ns();
	int result = state_writer_begin(writer, VM_NODE, VM_KVM_STATE_VERSION);
	if (!result)
		result = writer->base.put_u64(&writer->base, "clock", clock.clock);
	if (!result)
		result = writer->base.put_u64(&writer->base, "realtime-ns",
					      (uint64_t)realtime);
	if (result)
		return write_failed(err, err_len, "the VM", result);
	result = vm_kvm_state_save(vm->fd, writer, err, err_len);
	if (!result)
		result = save_devices(vm, writer, err, err_len);
	for (unsigned int i = 0; i < vm->vcpu_count && !result; i++) {
		snprintf(path, sizeof(path), "/%s", vm->vcpus[i].name);
		result = vcpu_state_save(vm->host->fd, vm->fd, vm->vcpus[i].fd,
					 writer, path, err, err_len);
	}
	return result;
}

int vm_save_memory(struct vm *vm, int fd, uint64_t *checksum,
		   struct progress *progress, char *err, size_t err_len)
{
	return vm_memory_save(&vm->memory, fd, checksum, progress, err, err_len);
}

int vm_save_memory_pages(struct vm *vm, int fd, const uint64_t *pages,
			 size_t count, uint64_t *checksum,
			 struct progress *progress, char *err, size_t err_len)
{
	return vm_memory_save_pages(&vm->memory, fd, pages, count, checksum,
				    progress, err, err_len);
}

int vm_track_writes(struct vm *vm, char *err, size_t err_len)
{
	return dirty_log_start(&vm->dirty_log, vm->fd, &vm->memory, err,
			       err_len);
}

bool vm_tracks_writes(const struct vm *vm)
{
	return dirty_log_active(&vm->dirty_log);
}

uint64_t *vm_harvest_writes(struct vm *vm, size_t *words, char *err,
			    size_t err_len)
{
	*words = dirty_log_bitmap_words(&vm->memory);
	uint64_t *pages = calloc(*words, sizeof(*pages));

	if (!pages) {
		snprintf(err, err_len, "out of memory for the dirty log");
		return NULL;
	}
	if (dirty_log_harvest(&vm->dirty_log, pages, err, err_len)) {
		/* Pages may be lost: only a full snapshot is safe now. */
		dirty_log_stop(&vm->dirty_log);
		free(pages);
		return NULL;
	}
	return pages;
}

void vm_put_back_writes(struct vm *vm, const uint64_t *pages)
{
	dirty_log_put_back(&vm->dirty_log, pages);
}

/* A saved device with no device of that name here: another machine. */
struct unknown_device_check {
	struct vm *vm;
	char *err;
	size_t err_len;
};

static int check_known_device(void *opaque, const char *name)
{
	struct unknown_device_check *check = opaque;

	for (unsigned int i = 0; i < check->vm->device_count; i++)
		if (!strcmp(check->vm->devices[i].name, name))
			return 0;
	snprintf(check->err, check->err_len, "the snapshot has a device %s "
		 "this machine does not", name);
	return -EINVAL;
}

static int restore_devices(struct vm *vm, struct state_reader *reader,
			   char *err, size_t err_len)
{
	struct unknown_device_check check = { vm, err, err_len };
	char path[STATE_PATH_SIZE];
	int result = state_reader_for_each_child(reader, DEVICES_NODE,
						 check_known_device, &check);

	for (unsigned int i = 0; i < vm->device_count && !result; i++) {
		const struct device_record *device = &vm->devices[i];

		snprintf(path, sizeof(path), DEVICES_NODE "/%s", device->name);
		result = state_reader_begin(reader, path,
					    device->ops->state_version);
		if (result) {
			snprintf(err, err_len, "%s", reader->err);
			break;
		}
		reader->err[0] = '\0';
		result = device->ops->restore ?
			device->ops->restore(device->opaque, &reader->base) :
			-EOPNOTSUPP;
		if (result)
			snprintf(err, err_len, "%s: %s", path + 1,
				 reader->err[0] ? reader->err :
				 result == -EINVAL ? "a value out of range" :
				 strerror(-result));
	}
	return result;
}

int vm_check_state(const struct vm_config *config, struct state_reader *reader,
		   char *err, size_t err_len)
{
	uint64_t clock;
	char path[STATE_PATH_SIZE];
	int result = state_reader_begin(reader, VM_NODE, VM_KVM_STATE_VERSION);

	if (!result)
		result = reader->base.get_u64(&reader->base, "clock", &clock);
	if (!result)
		result = reader->base.get_u64(&reader->base, "realtime-ns", &clock);
	if (result) {
		snprintf(err, err_len, "%s", reader->err);
		return result;
	}
	result = vm_kvm_state_check(reader, err, err_len);
	for (unsigned int i = 0; i < config->cpu_count && !result; i++) {
		/* vcpu.c names vCPU i "vcpuI". */
		snprintf(path, sizeof(path), "/vcpu%u", i);
		result = vcpu_state_check(reader, path, err, err_len);
	}
	return result;
}

int vm_restore_state(struct vm *vm, struct state_reader *reader, char *err,
		     size_t err_len)
{
	uint64_t clock, realtime;
	char path[STATE_PATH_SIZE];
	int result = state_reader_begin(reader, VM_NODE, VM_KVM_STATE_VERSION);

	if (!result)
		result = reader->base.get_u64(&reader->base, "clock", &clock);
	if (!result)
		result = reader->base.get_u64(&reader->base, "realtime-ns", &realtime);
	if (result) {
		snprintf(err, err_len, "%s", reader->err);
		return result;
	}
	result = vm_kvm_state_restore(vm->fd, reader, err, err_len);
	/* The guest's clock goes on when it runs (vm_resume) from where it
	 * was, moved on by the time that passed (vcpu_state.h). */
	vm->paused_clock = (struct kvm_clock_data){
		.clock = vcpu_state_clock_after(clock, (int64_t)realtime,
						vcpu_state_realtime_ns()),
	};
	vm->clock_frozen = true;
	if (!result)
		result = restore_devices(vm, reader, err, err_len);
	for (unsigned int i = 0; i < vm->vcpu_count && !result; i++) {
		snprintf(path, sizeof(path), "/%s", vm->vcpus[i].name);
		result = vcpu_state_restore(vm->fd, vm->vcpus[i].fd, reader, path,
					    err, err_len);
		/* EINVAL: the guest had not set up kvmclock on this vCPU. */
		if (!result)
			ioctl(vm->vcpus[i].fd, KVM_KVMCLOCK_CTRL, 0);
	}
	return result;
}
