/*
 * The `vessel run` command line (vmm/options.c): any arguments, parsed
 * into a machine configuration. A refusal must say why in one line; a
 * parse that succeeds must give values inside the ranges promised.
 *
 * Input: the arguments after "run", separated by NUL bytes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "vmm/options.h"

#define MAX_ARGS 64

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	int null = open("/dev/null", O_WRONLY);

	(void)argc;
	(void)argv;
	/* --help prints the usage on standard output. */
	if (null < 0 || dup2(null, STDOUT_FILENO) < 0)
		abort();
	close(null);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1);
	char *argv[MAX_ARGS + 2] = { "run" };
	int argc = 1;
	struct vm_config config;
	char err[256];

	if (!text)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	for (size_t start = 0; start <= size && argc <= MAX_ARGS;) {
		argv[argc++] = text + start;
		start += strlen(text + start) + 1;
	}
	argv[argc] = NULL;
	err[0] = '\0';
	int ret = options_parse_run(argc, argv, &config, NULL, err, sizeof(err));

	/* The user must see one line saying what is wrong (more only when
	 * it quotes an argument with a line break in it). */
	if (ret < 0 && (!err[0] || (strchr(err, '\n') && !memchr(data, '\n', size))))
		abort();
	if (ret == OPTIONS_OK) {
		if (config.cpu_count < 1 || config.cpu_count > OPTIONS_MAX_CPUS ||
		    config.disk_count > OPTIONS_MAX_DISKS ||
		    config.nic_count > OPTIONS_MAX_NICS || !config.kernel_path)
			abort();
		vm_config_release(&config);
	}
	free(text);
	return 0;
}
