#include "vm_config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "options.h"

void vm_config_release(struct vm_config *config)
{
	free(config->kernel_path);
	free(config->initrd_path);
	free(config->cmdline);
	free(config->name);
	for (unsigned int i = 0; i < config->disk_count; i++)
		free(config->disks[i].path);
	for (unsigned int i = 0; i < config->nic_count; i++)
		free(config->nics[i].tap_name);
	*config = (struct vm_config){ .cpu_count = 0 };
}

void vm_config_free(struct vm_config *config)
{
	if (!config)
		return;
	vm_config_release(config);
	free(config);
}

/* *slot becomes a copy of itself (NULL stays NULL): false when out of
 * memory, with *slot NULL. */
static bool copy_string(char **slot)
{
	if (!*slot)
		return true;
	*slot = strdup(*slot);
	return *slot != NULL;
}

struct vm_config *vm_config_copy(const struct vm_config *config)
{
	struct vm_config *copy = malloc(sizeof(*copy));

	if (!copy)
		return NULL;
	*copy = *config;
	bool ok = copy_string(&copy->kernel_path);
	ok = copy_string(&copy->initrd_path) && ok;
	ok = copy_string(&copy->cmdline) && ok;
	ok = copy_string(&copy->name) && ok;
	for (unsigned int i = 0; i < copy->disk_count; i++)
		ok = copy_string(&copy->disks[i].path) && ok;
	for (unsigned int i = 0; i < copy->nic_count; i++)
		ok = copy_string(&copy->nics[i].tap_name) && ok;
	if (!ok) {
		/* What failed is NULL; what succeeded is copy's own. */
		vm_config_free(copy);
		return NULL;
	}
	return copy;
}

/* Adds value under key; false (value dropped) when either ran out of
 * memory. */
static bool put(struct json_object *object, const char *key,
		struct json_object *value)
{
	if (!value)
		return false;
	if (json_object_object_add(object, key, value)) {
		json_object_put(value);
		return false;
	}
	return true;
}

static bool append(struct json_object *array, struct json_object *value)
{
	if (!value)
		return false;
	if (json_object_array_add(array, value)) {
		json_object_put(value);
		return false;
	}
	return true;
}

static struct json_object *mac_to_json(const uint8_t mac[6])
{
	char text[sizeof("00:00:00:00:00:00")];

	snprintf(text, sizeof(text), "%02x:%02x:%02x:%02x:%02x:%02x", mac[0],
		 mac[1], mac[2], mac[3], mac[4], mac[5]);
	return json_object_new_string(text);
}

/* The rule in net_hostfwd_parse()'s syntax, every part spelled out. */
static struct json_object *hostfwd_to_json(const struct net_hostfwd *rule)
{
	char host[INET_ADDRSTRLEN], guest[INET_ADDRSTRLEN];
	char text[sizeof("udp:255.255.255.255:65535-255.255.255.255:65535")];

	inet_ntop(AF_INET, &rule->host_address, host, sizeof(host));
	inet_ntop(AF_INET, &rule->guest_address, guest, sizeof(guest));
	snprintf(text, sizeof(text), "%s:%s:%u-%s:%u", rule->udp ? "udp" : "tcp",
		 host, rule->host_port, guest, rule->guest_port);
	return json_object_new_string(text);
}

static struct json_object *disk_to_json(const struct disk_config *disk)
{
	struct json_object *object = json_object_new_object();

	if (!object)
		return NULL;
	if (put(object, "path", json_object_new_string(disk->path)) &&
	    put(object, "readonly", json_object_new_boolean(disk->read_only)) &&
	    put(object, "serial", json_object_new_string(disk->serial)) &&
	    put(object, "cache", json_object_new_string(disk->direct ?
							 "none" :
							 "writeback")) &&
	    (!disk->queues ||
	     put(object, "queues", json_object_new_int((int)disk->queues))))
		return object;
	json_object_put(object);
	return NULL;
}

static bool user_net_to_json(struct json_object *object,
			     const struct net_slirp_options *user)
{
	struct json_object *rules = json_object_new_array();

	if (!put(object, "hostfwd", rules))
		return false;
	for (unsigned int i = 0; i < user->hostfwd_count; i++)
		if (!append(rules, hostfwd_to_json(&user->hostfwd[i])))
			return false;
	return put(object, "restrict", json_object_new_boolean(user->restricted));
}

static struct json_object *net_to_json(const struct net_config *net)
{
	struct json_object *object = json_object_new_object();
	bool user = net->backend == NET_BACKEND_USER;

	if (!object)
		return NULL;
	bool ok = put(object, "backend",
		      json_object_new_string(user ? "user" : "tap")) &&
		  put(object, "mac", mac_to_json(net->mac));
	if (ok && user)
		ok = user_net_to_json(object, &net->user);
	else if (ok && net->tap_name)
		ok = put(object, "ifname", json_object_new_string(net->tap_name));
	else if (ok)
		ok = put(object, "fd", json_object_new_int(net->tap_fd));
	if (ok)
		return object;
	json_object_put(object);
	return NULL;
}

static bool features_to_json(struct json_object *array,
			     const struct cpuid_feature_mask *mask)
{
	for (unsigned int i = 0; i < mask->count; i++) {
		const struct cpuid_feature_change *change = &mask->changes[i];
		char text[64];

		snprintf(text, sizeof(text), "%c%s", change->enable ? '+' : '-',
			 change->feature->name);
		if (!append(array, json_object_new_string(text)))
			return false;
	}
	return true;
}

static bool devices_to_json(struct json_object *object,
			    const struct vm_config *config)
{
	struct json_object *disks = json_object_new_array();
	struct json_object *nets = json_object_new_array();

	if (!put(object, "disks", disks)) {
		json_object_put(nets);
		return false;
	}
	if (!put(object, "nets", nets))
		return false;
	for (unsigned int i = 0; i < config->disk_count; i++)
		if (!append(disks, disk_to_json(&config->disks[i])))
			return false;
	for (unsigned int i = 0; i < config->nic_count; i++)
		if (!append(nets, net_to_json(&config->nics[i])))
			return false;
	return true;
}

/* --display's own syntax, which parse_display reads back. */
static struct json_object *display_to_json(const struct display_config *display)
{
	char text[64];

	if (display->kind == DISPLAY_NONE)
		return json_object_new_string("none");
	snprintf(text, sizeof(text), "sdl,width=%u,height=%u,depth=%u",
		 display->width, display->height, display->depth);
	return json_object_new_string(text);
}

struct json_object *vm_config_to_json(const struct vm_config *config)
{
	struct json_object *object = json_object_new_object();
	struct json_object *features = json_object_new_array();

	if (!object || !features)
		goto fail;
	bool ok = put(object, "version", json_object_new_int(VM_CONFIG_VERSION)) &&
		  put(object, "kernel", json_object_new_string(config->kernel_path));
	if (ok && config->initrd_path)
		ok = put(object, "initrd",
			 json_object_new_string(config->initrd_path));
	ok = ok &&
	     put(object, "cmdline", json_object_new_string(config->cmdline)) &&
	     put(object, "memory",
		 json_object_new_uint64(config->memory_size)) &&
	     put(object, "cpus", json_object_new_int((int)config->cpu_count)) &&
	     features_to_json(features, &config->feature_mask) &&
	     put(object, "cpu_features", json_object_get(features)) &&
	     put(object, "no_reboot",
		 json_object_new_boolean(config->no_reboot)) &&
	     put(object, "name", json_object_new_string(config->name)) &&
	     put(object, "display", display_to_json(&config->display)) &&
	     devices_to_json(object, config);
	json_object_put(features);
	if (ok)
		return object;
	features = NULL;
fail:
	json_object_put(features);
	json_object_put(object);
	return NULL;
}

/*
 * From JSON: each key of an object goes to its field's handler through a
 * table, so a key without one is refused; each handler checks the value's
 * type, then hands its text to options.c's check for that value.
 */

static int wrong_type(const char *field, const char *expected, char *err,
		      size_t err_len)
{
	snprintf(err, err_len, "%s: expected %s", field, expected);
	return -EINVAL;
}

/* A JSON string may hold "\u0000"; a path or a name cannot. */
static int get_string(struct json_object *value, const char *field,
		      const char **text, char *err, size_t err_len)
{
	if (!json_object_is_type(value, json_type_string))
		return wrong_type(field, "a string", err, err_len);
	*text = json_object_get_string(value);
	if (strlen(*text) != (size_t)json_object_get_string_len(value)) {
		snprintf(err, err_len, "%s: contains a NUL character", field);
		return -EINVAL;
	}
	return 0;
}

static int set_string(struct json_object *value, const char *field,
		      char **slot, char *err, size_t err_len)
{
	const char *text;
	int result = get_string(value, field, &text, err, err_len);

	return result ? result : options_own_string(slot, text, err, err_len);
}

static int get_bool(struct json_object *value, const char *field, bool *flag,
		    char *err, size_t err_len)
{
	if (!json_object_is_type(value, json_type_boolean))
		return wrong_type(field, "true or false", err, err_len);
	*flag = json_object_get_boolean(value);
	return 0;
}

/* An integer's text, as written, for options.c's checks. */
static int get_integer_text(struct json_object *value, const char *field,
			    const char **text, char *err, size_t err_len)
{
	if (!json_object_is_type(value, json_type_int))
		return wrong_type(field, "an integer", err, err_len);
	*text = json_object_get_string(value);
	return 0;
}

static int get_array(struct json_object *value, const char *field,
		     size_t max, size_t *length, char *err, size_t err_len)
{
	if (!json_object_is_type(value, json_type_array))
		return wrong_type(field, "an array", err, err_len);
	*length = json_object_array_length(value);
	if (*length > max) {
		snprintf(err, err_len, "%s: more than %zu entries", field, max);
		return -EINVAL;
	}
	return 0;
}

/* Room for "nets[3].hostfwd[7]", and bounded for any key a client sends. */
#define FIELD_NAME_SIZE 96

/* A field handler: value is the key's, field names it in a message. */
typedef int (*field_parser)(struct json_object *value, const char *field,
			    void *target, char *err, size_t err_len);

struct field_handler {
	const char *key;
	field_parser parse;
};

/* Runs the handler of each of object's keys; refuses a key without one.
 * handlers ends with a NULL key. */
static int parse_fields(struct json_object *object, const char *field,
			const struct field_handler *handlers, void *target,
			char *err, size_t err_len)
{
	if (!json_object_is_type(object, json_type_object))
		return wrong_type(*field ? field : "the configuration",
				  "an object", err, err_len);
	json_object_object_foreach(object, key, value) {
		const struct field_handler *handler = NULL;
		char name[FIELD_NAME_SIZE];

		for (size_t i = 0; handlers[i].key && !handler; i++)
			if (!strcmp(handlers[i].key, key))
				handler = &handlers[i];
		snprintf(name, sizeof(name), "%.40s%s%.40s", field,
			 *field ? "." : "", key);
		if (!handler) {
			snprintf(err, err_len, "%s: unknown key", name);
			return -EINVAL;
		}
		int result = handler->parse(value, name, target, err, err_len);
		if (result)
			return result;
	}
	return 0;
}

static int parse_version(struct json_object *value, const char *field,
			 void *target, char *err, size_t err_len)
{
	(void)target;
	if (!json_object_is_type(value, json_type_int))
		return wrong_type(field, "an integer", err, err_len);
	if (json_object_get_int64(value) != VM_CONFIG_VERSION) {
		snprintf(err, err_len, "%s: %s is not %d, the version this vessel reads",
			 field, json_object_get_string(value), VM_CONFIG_VERSION);
		return -EINVAL;
	}
	return 0;
}

static int parse_kernel(struct json_object *value, const char *field,
			void *target, char *err, size_t err_len)
{
	return set_string(value, field, &((struct vm_config *)target)->kernel_path,
			  err, err_len);
}

static int parse_initrd(struct json_object *value, const char *field,
			void *target, char *err, size_t err_len)
{
	return set_string(value, field, &((struct vm_config *)target)->initrd_path,
			  err, err_len);
}

static int parse_cmdline(struct json_object *value, const char *field,
			 void *target, char *err, size_t err_len)
{
	return set_string(value, field, &((struct vm_config *)target)->cmdline,
			  err, err_len);
}

static int parse_name(struct json_object *value, const char *field,
		      void *target, char *err, size_t err_len)
{
	return set_string(value, field, &((struct vm_config *)target)->name,
			  err, err_len);
}

/* As --display takes it: "none", "sdl,width=1280,height=800". */
static int parse_display(struct json_object *value, const char *field,
			 void *target, char *err, size_t err_len)
{
	const char *text;
	char reason[256];
	int result = get_string(value, field, &text, err, err_len);

	if (result)
		return result;
	if (display_parse_option(text, &((struct vm_config *)target)->display,
				 reason, sizeof(reason))) {
		snprintf(err, err_len, "%s: %s", field, reason);
		return -EINVAL;
	}
	return 0;
}

/* Bytes as an integer, or a size as the command line writes it ("2G"). */
static int parse_memory(struct json_object *value, const char *field,
			void *target, char *err, size_t err_len)
{
	struct vm_config *config = target;
	const char *text;

	if (json_object_is_type(value, json_type_int))
		text = json_object_get_string(value);
	else if (get_string(value, field, &text, err, err_len))
		return wrong_type(field, "a size in bytes or a string like \"2G\"",
				  err, err_len);
	return options_parse_memory(field, text, &config->memory_size, err,
				    err_len);
}

static int parse_cpus(struct json_object *value, const char *field,
		      void *target, char *err, size_t err_len)
{
	struct vm_config *config = target;
	const char *text;
	int result = get_integer_text(value, field, &text, err, err_len);

	return result ? result :
			options_parse_cpu_count(field, text, &config->cpu_count,
						err, err_len);
}

/* ["-xsave", "+avx"]: joined as --cpu-features takes them. */
static int parse_cpu_features(struct json_object *value, const char *field,
			      void *target, char *err, size_t err_len)
{
	struct vm_config *config = target;
	size_t count, size = 1;
	int result = get_array(value, field, CPUID_MAX_FEATURE_CHANGES, &count,
			       err, err_len);

	if (result)
		return result;
	for (size_t i = 0; i < count; i++) {
		const char *text;
		char name[FIELD_NAME_SIZE];

		snprintf(name, sizeof(name), "%.40s[%zu]", field, i);
		result = get_string(json_object_array_get_idx(value, i), name,
				    &text, err, err_len);
		if (result)
			return result;
		if (!*text || strchr(text, ',')) {
			snprintf(err, err_len, "%s: '%s' is not +NAME or -NAME",
				 name, text);
			return -EINVAL;
		}
		size += strlen(text) + 1;
	}
	char *joined = calloc(1, size);
	if (!joined) {
		snprintf(err, err_len, "out of memory");
		return -ENOMEM;
	}
	for (size_t i = 0; i < count; i++) {
		if (i)
			strcat(joined, ",");
		strcat(joined, json_object_get_string(
				       json_object_array_get_idx(value, i)));
	}
	result = cpuid_parse_features(joined, &config->feature_mask, err,
				      err_len);
	free(joined);
	return result;
}

static int parse_no_reboot(struct json_object *value, const char *field,
			   void *target, char *err, size_t err_len)
{
	return get_bool(value, field, &((struct vm_config *)target)->no_reboot,
			err, err_len);
}

static int parse_disk_path(struct json_object *value, const char *field,
			   void *target, char *err, size_t err_len)
{
	struct disk_config *disk = target;
	int result = set_string(value, field, &disk->path, err, err_len);

	if (!result && !*disk->path) {
		snprintf(err, err_len, "%s: empty", field);
		return -EINVAL;
	}
	return result;
}

static int parse_disk_readonly(struct json_object *value, const char *field,
			       void *target, char *err, size_t err_len)
{
	return get_bool(value, field, &((struct disk_config *)target)->read_only,
			err, err_len);
}

static int parse_disk_serial(struct json_object *value, const char *field,
			     void *target, char *err, size_t err_len)
{
	const char *text;
	int result = get_string(value, field, &text, err, err_len);

	return result ? result :
			options_parse_disk_serial(field, text, target, err,
						  err_len);
}

static int parse_disk_cache(struct json_object *value, const char *field,
			    void *target, char *err, size_t err_len)
{
	const char *text;
	int result = get_string(value, field, &text, err, err_len);

	if (result)
		return result;
	if (options_parse_disk_cache(text, target)) {
		snprintf(err, err_len, "%s: '%s' is not writeback or none", field,
			 text);
		return -EINVAL;
	}
	return 0;
}

static int parse_disk_queues(struct json_object *value, const char *field,
			     void *target, char *err, size_t err_len)
{
	const char *text;
	int result = get_integer_text(value, field, &text, err, err_len);

	return result ? result :
			options_parse_disk_queues(field, text, target, err,
						  err_len);
}

static const struct field_handler disk_fields[] = {
	{ "path", parse_disk_path },
	{ "readonly", parse_disk_readonly },
	{ "serial", parse_disk_serial },
	{ "cache", parse_disk_cache },
	{ "queues", parse_disk_queues },
	{ NULL, NULL },
};

static int parse_disks(struct json_object *value, const char *field,
		       void *target, char *err, size_t err_len)
{
	struct vm_config *config = target;
	size_t count;
	int result = get_array(value, field, OPTIONS_MAX_DISKS, &count, err,
			       err_len);

	for (size_t i = 0; !result && i < count; i++) {
		struct disk_config *disk = &config->disks[config->disk_count++];
		char name[FIELD_NAME_SIZE];

		snprintf(name, sizeof(name), "%.40s[%zu]", field, i);
		result = parse_fields(json_object_array_get_idx(value, i), name,
				      disk_fields,
				      disk, err, err_len);
		if (!result && !disk->path) {
			snprintf(err, err_len, "%s.path is required", name);
			result = -EINVAL;
		}
	}
	return result;
}

static int parse_net_mac(struct json_object *value, const char *field,
			 void *target, char *err, size_t err_len)
{
	const char *text;
	int result = get_string(value, field, &text, err, err_len);

	return result ? result :
			options_parse_mac(field, text,
					  ((struct net_config *)target)->mac,
					  err, err_len);
}

static int parse_net_hostfwd(struct json_object *value, const char *field,
			     void *target, char *err, size_t err_len)
{
	struct net_config *net = target;
	size_t count;
	int result = get_array(value, field, NET_SLIRP_MAX_HOSTFWD, &count, err,
			       err_len);

	for (size_t i = 0; !result && i < count; i++) {
		const char *text;
		char name[FIELD_NAME_SIZE];

		snprintf(name, sizeof(name), "%.40s[%zu]", field, i);
		result = get_string(json_object_array_get_idx(value, i), name,
				    &text, err, err_len);
		if (!result)
			result = options_add_hostfwd(name, text, &net->user, err,
						     err_len);
	}
	return result;
}

static int parse_net_restrict(struct json_object *value, const char *field,
			      void *target, char *err, size_t err_len)
{
	return get_bool(value, field,
			&((struct net_config *)target)->user.restricted, err,
			err_len);
}

static int parse_net_ifname(struct json_object *value, const char *field,
			    void *target, char *err, size_t err_len)
{
	struct net_config *net = target;
	int result = set_string(value, field, &net->tap_name, err, err_len);

	return result ? result :
			options_check_ifname(field, net->tap_name, err, err_len);
}

static int parse_net_fd(struct json_object *value, const char *field,
			void *target, char *err, size_t err_len)
{
	const char *text;
	int result = get_integer_text(value, field, &text, err, err_len);

	return result ? result :
			options_parse_tap_fd(field, text,
					     &((struct net_config *)target)->tap_fd,
					     err, err_len);
}

/* backend was read first, to pick the table. */
static int ignore_backend(struct json_object *value, const char *field,
			  void *target, char *err, size_t err_len)
{
	(void)value, (void)field, (void)target, (void)err, (void)err_len;
	return 0;
}

static const struct field_handler user_net_fields[] = {
	{ "backend", ignore_backend },
	{ "mac", parse_net_mac },
	{ "hostfwd", parse_net_hostfwd },
	{ "restrict", parse_net_restrict },
	{ NULL, NULL },
};

static const struct field_handler tap_net_fields[] = {
	{ "backend", ignore_backend },
	{ "mac", parse_net_mac },
	{ "ifname", parse_net_ifname },
	{ "fd", parse_net_fd },
	{ NULL, NULL },
};

static int parse_net(struct json_object *object, const char *field,
		     struct net_config *net, char *err, size_t err_len)
{
	struct json_object *backend;
	const char *text;
	char name[FIELD_NAME_SIZE];

	if (!json_object_is_type(object, json_type_object))
		return wrong_type(field, "an object", err, err_len);
	snprintf(name, sizeof(name), "%.40s.backend", field);
	if (!json_object_object_get_ex(object, "backend", &backend)) {
		snprintf(err, err_len, "%s is required (user or tap)", name);
		return -EINVAL;
	}
	int result = get_string(backend, name, &text, err, err_len);
	if (result)
		return result;
	if (!strcmp(text, "user")) {
		net->backend = NET_BACKEND_USER;
		result = parse_fields(object, field, user_net_fields, net, err,
				      err_len);
	} else if (!strcmp(text, "tap")) {
		net->backend = NET_BACKEND_TAP;
		result = parse_fields(object, field, tap_net_fields, net, err,
				      err_len);
	} else {
		snprintf(err, err_len, "%s: '%s' is not user or tap", name, text);
		return -EINVAL;
	}
	return result ? result : options_check_net(field, net, err, err_len);
}

static int parse_nets(struct json_object *value, const char *field,
		      void *target, char *err, size_t err_len)
{
	struct vm_config *config = target;
	size_t count;
	int result = get_array(value, field, OPTIONS_MAX_NICS, &count, err,
			       err_len);

	for (size_t i = 0; !result && i < count; i++) {
		struct net_config *net = &config->nics[config->nic_count];
		char name[FIELD_NAME_SIZE];

		options_net_defaults(config->nic_count++, net);
		snprintf(name, sizeof(name), "%.40s[%zu]", field, i);
		result = parse_net(json_object_array_get_idx(value, i), name, net,
				   err, err_len);
	}
	return result;
}

static const struct field_handler config_fields[] = {
	{ "version", parse_version },
	{ "kernel", parse_kernel },
	{ "initrd", parse_initrd },
	{ "cmdline", parse_cmdline },
	{ "memory", parse_memory },
	{ "cpus", parse_cpus },
	{ "cpu_features", parse_cpu_features },
	{ "no_reboot", parse_no_reboot },
	{ "name", parse_name },
	{ "display", parse_display },
	{ "disks", parse_disks },
	{ "nets", parse_nets },
	{ NULL, NULL },
};

/* Messages quote the client's keys and values, which JSON lets carry any
 * character: control characters become '?' so a refusal stays one line
 * (a log, a terminal, the API's single-line error). */
static void make_printable(char *text)
{
	for (; *text; text++)
		if ((unsigned char)*text < 0x20 || *text == 0x7f)
			*text = '?';
}

int vm_config_from_json(struct json_object *object,
			struct vm_config **config, char *err, size_t err_len)
{
	struct vm_config *parsed = malloc(sizeof(*parsed));
	int result;

	if (!parsed) {
		snprintf(err, err_len, "out of memory");
		return -ENOMEM;
	}
	result = options_config_defaults(parsed, err, err_len);
	if (!result)
		result = parse_fields(object, "", config_fields, parsed, err,
				      err_len);
	if (!result && !parsed->kernel_path) {
		snprintf(err, err_len, "kernel is required");
		result = -EINVAL;
	}
	if (result) {
		vm_config_free(parsed);
		if (err_len)
			make_printable(err);
		return result;
	}
	*config = parsed;
	return 0;
}
