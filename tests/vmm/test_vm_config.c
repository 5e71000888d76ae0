/* The owned configuration: a command line written as JSON and read back is
 * the same machine; JSON that the command line would refuse is refused,
 * with one line naming the field. */
#include <criterion/criterion.h>
#include <errno.h>
#include <json-c/json.h>
#include <string.h>

#include "../../vmm/options.h"
#include "../../vmm/vm_config.h"

static char err[256];

static void assert_same_string(const char *a, const char *b, const char *what)
{
	if (!a || !b)
		cr_assert_eq(a, b, "%s: one is NULL", what);
	else
		cr_assert_str_eq(a, b, "%s", what);
}

static void assert_same_config(const struct vm_config *a,
			       const struct vm_config *b)
{
	assert_same_string(a->kernel_path, b->kernel_path, "kernel");
	assert_same_string(a->initrd_path, b->initrd_path, "initrd");
	assert_same_string(a->cmdline, b->cmdline, "cmdline");
	cr_assert_eq(a->memory_size, b->memory_size);
	cr_assert_eq(a->cpu_count, b->cpu_count);
	cr_assert_eq(a->no_reboot, b->no_reboot);
	cr_assert_eq(a->feature_mask.count, b->feature_mask.count);
	for (unsigned int i = 0; i < a->feature_mask.count; i++) {
		cr_assert_eq(a->feature_mask.changes[i].feature,
			     b->feature_mask.changes[i].feature);
		cr_assert_eq(a->feature_mask.changes[i].enable,
			     b->feature_mask.changes[i].enable);
	}
	cr_assert_eq(a->disk_count, b->disk_count);
	for (unsigned int i = 0; i < a->disk_count; i++) {
		assert_same_string(a->disks[i].path, b->disks[i].path, "disk");
		cr_assert_eq(a->disks[i].read_only, b->disks[i].read_only);
		cr_assert_eq(a->disks[i].direct, b->disks[i].direct);
		cr_assert_str_eq(a->disks[i].serial, b->disks[i].serial);
		cr_assert_eq(a->disks[i].queues, b->disks[i].queues);
	}
	cr_assert_eq(a->nic_count, b->nic_count);
	for (unsigned int i = 0; i < a->nic_count; i++) {
		const struct net_config *x = &a->nics[i], *y = &b->nics[i];

		cr_assert_eq(x->backend, y->backend);
		cr_assert_arr_eq(x->mac, y->mac, 6);
		assert_same_string(x->tap_name, y->tap_name, "ifname");
		cr_assert_eq(x->tap_fd, y->tap_fd);
		cr_assert_eq(x->user.restricted, y->user.restricted);
		cr_assert_eq(x->user.hostfwd_count, y->user.hostfwd_count);
		for (unsigned int j = 0; j < x->user.hostfwd_count; j++) {
			const struct net_hostfwd *p = &x->user.hostfwd[j];
			const struct net_hostfwd *q = &y->user.hostfwd[j];

			cr_assert_eq(p->udp, q->udp);
			cr_assert_eq(p->host_address.s_addr,
				     q->host_address.s_addr);
			cr_assert_eq(p->host_port, q->host_port);
			cr_assert_eq(p->guest_address.s_addr,
				     q->guest_address.s_addr);
			cr_assert_eq(p->guest_port, q->guest_port);
		}
	}
}

/* config -> JSON text -> config. */
static struct vm_config *through_json(const struct vm_config *config)
{
	struct json_object *object = vm_config_to_json(config);
	struct vm_config *back = NULL;

	cr_assert_not_null(object);
	struct json_object *reparsed =
		json_tokener_parse(json_object_to_json_string(object));
	cr_assert_not_null(reparsed);
	cr_assert_eq(vm_config_from_json(reparsed, &back, err, sizeof(err)), 0,
		     "%s", err);
	json_object_put(reparsed);
	json_object_put(object);
	return back;
}

Test(vm_config, command_line_round_trip)
{
	char disk0[] = "/images/root.img,readonly,serial=root-disk";
	char disk1[] = "/dev/sdb,cache=none,queues=3";
	char user[] = "user,hostfwd=tcp:127.0.0.1:8080-:80,hostfwd=udp::5353-10.0.2.16:53,restrict=on";
	char tap[] = "tap,ifname=tap0,mac=52:54:00:ab:cd:ef";
	char tap_fd[] = "tap,fd=5";
	char *argv[] = { "run", "-k", "/boot/vmlinuz", "--initrd", "/boot/initrd",
			 "--cmdline", "console=ttyS0 quiet \"x\"", "--memory",
			 "2G", "--cpus", "4", "--cpu-features",
			 "-xsave,+sse2", "--no-reboot", "--disk", disk0,
			 "--disk", disk1, "--net", user, "--net", tap, "--net",
			 tap_fd };
	struct vm_config config;

	cr_assert_eq(options_parse_run(sizeof(argv) / sizeof(argv[0]), argv,
				       &config, NULL, err, sizeof(err)),
		     OPTIONS_OK, "%s", err);
	struct vm_config *back = through_json(&config);
	assert_same_config(&config, back);
	/* Nothing of back lives in argv. */
	cr_assert_neq(back->kernel_path, argv[2]);
	cr_assert_neq(config.kernel_path, argv[2]);
	vm_config_free(back);
	vm_config_release(&config);
}

Test(vm_config, defaults_round_trip)
{
	char *argv[] = { "run", "-k", "/k" };
	struct vm_config config;

	cr_assert_eq(options_parse_run(3, argv, &config, NULL, err, sizeof(err)),
		     OPTIONS_OK);
	struct vm_config *back = through_json(&config);
	assert_same_config(&config, back);
	cr_assert_null(back->initrd_path);
	vm_config_free(back);
	vm_config_release(&config);
}

Test(vm_config, copy_owns_its_strings)
{
	char disk[] = "/img";
	char tap[] = "tap,ifname=tap1";
	char *argv[] = { "run", "-k", "/k", "--disk", disk, "--net", tap };
	struct vm_config config;

	cr_assert_eq(options_parse_run(7, argv, &config, NULL, err, sizeof(err)),
		     OPTIONS_OK);
	struct vm_config *copy = vm_config_copy(&config);
	cr_assert_not_null(copy);
	assert_same_config(&config, copy);
	cr_assert_neq(copy->kernel_path, config.kernel_path);
	cr_assert_neq(copy->disks[0].path, config.disks[0].path);
	cr_assert_neq(copy->nics[0].tap_name, config.nics[0].tap_name);
	vm_config_release(&config);
	cr_assert_str_eq(copy->disks[0].path, "/img");
	vm_config_free(copy);
}

static int from_text(const char *text, struct vm_config **config)
{
	struct json_object *object = json_tokener_parse(text);

	cr_assert_not_null(object, "test JSON does not parse: %s", text);
	err[0] = '\0';
	int result = vm_config_from_json(object, config, err, sizeof(err));
	json_object_put(object);
	return result;
}

Test(vm_config, json_defaults_match_the_command_line)
{
	struct vm_config *config;

	cr_assert_eq(from_text("{\"kernel\": \"/k\", \"memory\": \"1G\", "
			       "\"nets\": [{\"backend\": \"user\"}, "
			       "{\"backend\": \"user\"}]}",
			       &config),
		     0, "%s", err);
	cr_assert_eq(config->memory_size, 1ULL << 30);
	cr_assert_eq(config->cpu_count, 1);
	cr_assert_str_eq(config->cmdline, OPTIONS_DEFAULT_CMDLINE);
	const uint8_t second_mac[6] = { 0x02, 0x76, 0x73, 0, 0, 2 };
	cr_assert_arr_eq(config->nics[1].mac, second_mac, 6);
	cr_assert_eq(config->nics[1].tap_fd, -1);
	vm_config_free(config);
}

struct refusal {
	const char *json;
	const char *field; /* what the message must name */
};

Test(vm_config, refusals_name_the_field)
{
	static const struct refusal refusals[] = {
		{ "[]", "configuration" },
		{ "{}", "kernel" },
		{ "{\"kernel\": \"/k\", \"colour\": 1}", "colour: unknown key" },
		{ "{\"kernel\": \"/k\", \"cm\\nline\": 1}", "cm?line: unknown key" },
		{ "{\"kernel\": \"/k\", \"disks\": [{\"path\": \"/i\", \"cache\": \"a\\r\\u001b[2Jb\"}]}", "'a??[2Jb' is not writeback" },
		{ "{\"kernel\": 7}", "kernel: expected a string" },
		{ "{\"kernel\": \"/k\\u0000x\"}", "kernel: contains a NUL" },
		{ "{\"kernel\": \"/k\", \"version\": 2}", "version" },
		{ "{\"kernel\": \"/k\", \"version\": \"1\"}", "version" },
		{ "{\"kernel\": \"/k\", \"initrd\": null}", "initrd" },
		{ "{\"kernel\": \"/k\", \"cmdline\": [\"a\"]}", "cmdline" },
		{ "{\"kernel\": \"/k\", \"memory\": 0}", "memory" },
		{ "{\"kernel\": \"/k\", \"memory\": 1000}", "memory: '1000' is not a multiple of 4K" },
		{ "{\"kernel\": \"/k\", \"memory\": -4096}", "memory" },
		{ "{\"kernel\": \"/k\", \"memory\": \"12Q\"}", "memory" },
		{ "{\"kernel\": \"/k\", \"memory\": 1.5}", "memory" },
		{ "{\"kernel\": \"/k\", \"memory\": 99999999999999999999}", "memory" },
		{ "{\"kernel\": \"/k\", \"cpus\": 0}", "cpus" },
		{ "{\"kernel\": \"/k\", \"cpus\": 255}", "cpus" },
		{ "{\"kernel\": \"/k\", \"cpus\": \"2\"}", "cpus: expected an integer" },
		{ "{\"kernel\": \"/k\", \"cpus\": 2.0}", "cpus" },
		{ "{\"kernel\": \"/k\", \"cpus\": 4294967297}", "cpus" },
		{ "{\"kernel\": \"/k\", \"cpu_features\": \"-xsave\"}", "cpu_features: expected an array" },
		{ "{\"kernel\": \"/k\", \"cpu_features\": [\"-nosuch\"]}", "nosuch" },
		{ "{\"kernel\": \"/k\", \"cpu_features\": [\"xsave\"]}", "xsave" },
		{ "{\"kernel\": \"/k\", \"cpu_features\": [\"-xsave,-cx16\"]}", "cpu_features[0]" },
		{ "{\"kernel\": \"/k\", \"cpu_features\": [3]}", "cpu_features[0]" },
		{ "{\"kernel\": \"/k\", \"no_reboot\": 1}", "no_reboot" },
		{ "{\"kernel\": \"/k\", \"disks\": {}}", "disks: expected an array" },
		{ "{\"kernel\": \"/k\", \"disks\": [{}]}", "disks[0].path is required" },
		{ "{\"kernel\": \"/k\", \"disks\": [{\"path\": \"\"}]}", "disks[0].path" },
		{ "{\"kernel\": \"/k\", \"disks\": [\"/img\"]}", "disks[0]: expected an object" },
		{ "{\"kernel\": \"/k\", \"disks\": [{\"path\": \"/i\", \"serial\": \"this-serial-is-longer-than-20\"}]}", "disks[0].serial" },
		{ "{\"kernel\": \"/k\", \"disks\": [{\"path\": \"/i\", \"cache\": \"unsafe\"}]}", "disks[0].cache" },
		{ "{\"kernel\": \"/k\", \"disks\": [{\"path\": \"/i\", \"readonly\": \"yes\"}]}", "disks[0].readonly" },
		{ "{\"kernel\": \"/k\", \"disks\": [{\"path\": \"/i\", \"queues\": 0}]}", "disks[0].queues" },
		{ "{\"kernel\": \"/k\", \"disks\": [{\"path\": \"/i\", \"queues\": 17}]}", "disks[0].queues" },
		{ "{\"kernel\": \"/k\", \"disks\": [{\"path\": \"/i\", \"queues\": \"2\"}]}", "disks[0].queues: expected an integer" },
		{ "{\"kernel\": \"/k\", \"disks\": [{\"path\": \"/i\", \"fast\": true}]}", "disks[0].fast: unknown key" },
		{ "{\"kernel\": \"/k\", \"disks\": [{\"path\": \"/a\"}, {\"path\": \"/a\"}, {\"path\": \"/a\"}, {\"path\": \"/a\"}, {\"path\": \"/a\"}, {\"path\": \"/a\"}, {\"path\": \"/a\"}, {\"path\": \"/a\"}, {\"path\": \"/a\"}]}", "disks: more than 8" },
		{ "{\"kernel\": \"/k\", \"nets\": [{}]}", "nets[0].backend is required" },
		{ "{\"kernel\": \"/k\", \"nets\": [{\"backend\": \"slirp\"}]}", "nets[0].backend" },
		{ "{\"kernel\": \"/k\", \"nets\": [{\"backend\": \"user\", \"mac\": \"01:00:00:00:00:01\"}]}", "nets[0].mac" },
		{ "{\"kernel\": \"/k\", \"nets\": [{\"backend\": \"user\", \"hostfwd\": [\"tcp:8080:80\"]}]}", "hostfwd" },
		{ "{\"kernel\": \"/k\", \"nets\": [{\"backend\": \"user\", \"hostfwd\": [\"::1-:2\", \"::2-:2\", \"::3-:2\", \"::4-:2\", \"::5-:2\", \"::6-:2\", \"::7-:2\", \"::8-:2\", \"::9-:2\"]}]}", "nets[0].hostfwd: more than 8" },
		{ "{\"kernel\": \"/k\", \"nets\": [{\"backend\": \"user\", \"restrict\": \"on\"}]}", "nets[0].restrict" },
		{ "{\"kernel\": \"/k\", \"nets\": [{\"backend\": \"user\", \"ifname\": \"tap0\"}]}", "nets[0].ifname: unknown key" },
		{ "{\"kernel\": \"/k\", \"nets\": [{\"backend\": \"tap\"}]}", "nets[0] needs one of" },
		{ "{\"kernel\": \"/k\", \"nets\": [{\"backend\": \"tap\", \"ifname\": \"a\", \"fd\": 3}]}", "nets[0] needs one of" },
		{ "{\"kernel\": \"/k\", \"nets\": [{\"backend\": \"tap\", \"ifname\": \"name-longer-than-15\"}]}", "nets[0].ifname" },
		{ "{\"kernel\": \"/k\", \"nets\": [{\"backend\": \"tap\", \"fd\": -1}]}", "nets[0].fd" },
		{ "{\"kernel\": \"/k\", \"nets\": [{\"backend\": \"tap\", \"hostfwd\": []}]}", "nets[0].hostfwd: unknown key" },
		{ "{\"kernel\": \"/k\", \"nets\": [{\"backend\": \"user\"}, {\"backend\": \"user\"}, {\"backend\": \"user\"}, {\"backend\": \"user\"}, {\"backend\": \"user\"}]}", "nets: more than 4" },
	};

	for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
		struct vm_config *config = NULL;

		cr_assert_eq(from_text(refusals[i].json, &config), -EINVAL,
			     "accepted %s", refusals[i].json);
		cr_assert_null(config);
		cr_assert(strstr(err, refusals[i].field),
			  "%s: '%s' does not name %s", refusals[i].json, err,
			  refusals[i].field);
		cr_assert_null(strchr(err, '\n'), "%s", err);
	}
}
