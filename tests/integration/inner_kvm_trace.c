#include "inner_kvm_trace.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_EVENT "kvm_exit: vcpu "
#define SHUTDOWN_REASON " reason shutdown "
#define ENTRY_EVENT "kvm_entry: vcpu "

#define EXITINTINFO_VALID (1u << 31)

/* Longer than any kvm_entry or kvm_exit line. */
#define EVENT_TEXT_MAX 512

/* One line of the trace, copied: sscanf on the trace itself would measure
 * the whole rest of it (megabytes) for every line. */
struct trace_line {
	char text[EVENT_TEXT_MAX];
	const char *event; /* where the event's name begins in text */
};

/* Calls found(line, context) for every line of trace holding event (every
 * line, for ""). */
static void each_line_with(const char *trace, const char *event,
			   void (*found)(const struct trace_line *line,
					 void *context),
			   void *context)
{
	size_t event_length = strlen(event);
	struct trace_line copy;

	for (const char *line = trace; *line;) {
		const char *end = strchrnul(line, '\n');
		const char *at = memmem(line, (size_t)(end - line), event,
					event_length);

		if (at && (size_t)(at - line) < sizeof(copy.text) - event_length) {
			size_t length = (size_t)(end - line);

			if (length >= sizeof(copy.text))
				length = sizeof(copy.text) - 1;
			memcpy(copy.text, line, length);
			copy.text[length] = '\0';
			copy.event = copy.text + (at - line);
			found(&copy, context);
		}
		line = *end ? end + 1 : end;
	}
}

/* The thread that recorded a line and when: "  vcpu3-184  [000] d..1.
 * 17.962171: kvm_exit: ..." gives 184 and 17.962171. false if the line
 * does not read so. */
static bool line_origin(const struct trace_line *line, unsigned long *thread,
			double *seconds)
{
	const char *cpu = strstr(line->text, " [");
	if (!cpu || cpu > line->event)
		return false;
	const char *dash = cpu;
	while (dash > line->text && dash[-1] == ' ')
		dash--;
	const char *name_end = dash;
	while (dash > line->text && dash[-1] != '-')
		dash--;
	if (dash == line->text || dash == name_end)
		return false;
	*thread = strtoul(dash, NULL, 10);
	/* "17.962171: " ends right before the event. */
	const char *stamp = line->event - 2;
	if (stamp <= line->text || *stamp != ':')
		return false;
	while (stamp > line->text && stamp[-1] != ' ')
		stamp--;
	*seconds = strtod(stamp, NULL);
	return true;
}

struct last_shutdown {
	struct trace_line line;
	unsigned int count;
};

static void note_exit(const struct trace_line *line, void *context)
{
	struct last_shutdown *last = context;

	if (strstr(line->event, SHUTDOWN_REASON)) {
		last->line = *line;
		last->line.event = last->line.text + (line->event - line->text);
		last->count++;
	}
}

unsigned int shutdown_exit_parse_last(const char *trace,
				      struct shutdown_exit *exit)
{
	struct last_shutdown last = { .count = 0 };

	each_line_with(trace, EXIT_EVENT, note_exit, &last);
	exit->at_entry_rip = false;
	exit->in_inner_vmrun = false;
	/* kvm_exit: vcpu 1 reason shutdown rip 0x... info1 0x... info2 0x...
	 * intr_info 0x... error_code 0x... */
	if (!last.count ||
	    !line_origin(&last.line, &exit->thread, &exit->seconds) ||
	    sscanf(last.line.event,
		   "kvm_exit: vcpu %u reason shutdown rip %llx info1 %*x "
		   "info2 %*x intr_info %x",
		   &exit->vcpu, &exit->rip, &exit->intr_info) != 3)
		return 0;
	return last.count;
}

struct last_entry {
	const struct shutdown_exit *exit;
	bool found;
	unsigned long long rip;
};

/* Only the shutdown's own thread, before the shutdown: once vessel has
 * reset the machine, a new vCPU of the same number enters elsewhere. */
static void note_entry(const struct trace_line *line, void *context)
{
	struct last_entry *last = context;
	unsigned long thread;
	double seconds;
	unsigned int vcpu;
	unsigned long long rip;

	/* kvm_entry: vcpu 1, rip 0x... */
	if (line_origin(line, &thread, &seconds) &&
	    thread == last->exit->thread && seconds <= last->exit->seconds &&
	    sscanf(line->event, "kvm_entry: vcpu %u, rip %llx", &vcpu, &rip) == 2 &&
	    vcpu == last->exit->vcpu) {
		last->found = true;
		last->rip = rip;
	}
}

void shutdown_exit_match_entry(const char *trace, struct shutdown_exit *exit)
{
	struct last_entry last = { .exit = exit };

	each_line_with(trace, ENTRY_EVENT, note_entry, &last);
	exit->at_entry_rip = last.found && last.rip == exit->rip;
}

struct function_range {
	const char *name;
	bool found;
	unsigned long long start, end; /* end: the next symbol's address */
};

static void note_symbol(const struct trace_line *line, void *context)
{
	struct function_range *range = context;
	unsigned long long address;
	char type, name[128];

	/* ffffffffc03a4aa0 T __svm_vcpu_run	[kvm_amd] */
	if (sscanf(line->text, "%llx %c %127s", &address, &type, name) != 3)
		return;
	if (!range->found && !strcmp(name, range->name)) {
		range->found = true;
		range->start = address;
		range->end = ~0ull;
	}
	if (range->found && address > range->start && address < range->end)
		range->end = address;
}

void shutdown_exit_match_vmrun(const char *kallsyms, struct shutdown_exit *exit)
{
	struct function_range range = { .name = INNER_VMRUN_FUNCTION };

	/* Every line (each holds the empty text), in two passes: symbols are
	 * not sorted, and the next one may come before the function's own
	 * line. */
	each_line_with(kallsyms, "", note_symbol, &range);
	if (range.found)
		each_line_with(kallsyms, "", note_symbol, &range);
	exit->in_inner_vmrun = range.found && exit->rip >= range.start &&
			       exit->rip < range.end;
}

/* A file's text, NUL-terminated, or NULL. */
static char *read_text(const char *path)
{
	FILE *file = fopen(path, "r");
	if (!file)
		return NULL;
	size_t length = 0, capacity = 1 << 16;
	char *text = malloc(capacity);
	size_t count;

	while (text && (count = fread(text + length, 1, capacity - 1 - length,
				      file)) > 0) {
		length += count;
		if (capacity - 1 - length == 0) {
			char *larger = realloc(text, capacity * 2);
			if (!larger) {
				free(text);
				text = NULL;
				break;
			}
			text = larger;
			capacity *= 2;
		}
	}
	fclose(file);
	if (text)
		text[length] = '\0';
	return text;
}

static char *read_trace(const char *instance)
{
	char path[256];

	snprintf(path, sizeof(path), INNER_TRACING "/instances/%s/trace",
		 instance);
	return read_text(path);
}

/* The shutdown instance's count of shutdown exits; the last into exit. */
static unsigned int read_shutdowns(struct shutdown_exit *exit)
{
	char *shutdowns = read_trace(SHUTDOWN_INSTANCE);
	unsigned int count = shutdowns ? shutdown_exit_parse_last(shutdowns, exit) : 0;

	free(shutdowns);
	return count;
}

unsigned int shutdown_exit_count(void)
{
	struct shutdown_exit exit;

	return read_shutdowns(&exit);
}

unsigned int shutdown_exit_read_last(struct shutdown_exit *exit)
{
	unsigned int count = read_shutdowns(exit);

	if (!count)
		return 0;
	char *entries = read_trace(ENTRY_INSTANCE);
	if (entries)
		shutdown_exit_match_entry(entries, exit);
	free(entries);
	char *kallsyms = read_text("/proc/kallsyms");
	if (kallsyms)
		shutdown_exit_match_vmrun(kallsyms, exit);
	free(kallsyms);
	return count;
}

const char *shutdown_exit_event_kind(const struct shutdown_exit *exit)
{
	static const char *const kinds[8] = { "interrupt", "event type 1",
					      "NMI", "exception",
					      "software interrupt",
					      "event type 5", "event type 6",
					      "event type 7" };

	if (!(exit->intr_info & EXITINTINFO_VALID))
		return "nothing";
	return kinds[(exit->intr_info >> 8) & 7];
}

bool shutdown_exit_is_known_fault(const struct shutdown_exit *exit)
{
	return (exit->intr_info & EXITINTINFO_VALID) &&
	       (exit->at_entry_rip || exit->in_inner_vmrun);
}
