/* Corpus replay without libFuzzer: a main() that feeds every file named on
 * the command line (directories: every regular file in them, sorted) to the
 * target's LLVMFuzzerTestOneInput once. Built with the ordinary compiler and
 * ASan/UBSan (`make fuzz-replay`, which `make check` runs), so the corpus
 * and the crash regressions in it are replayed on machines without clang.
 * Prints `replay TARGET: N inputs` and exits 0, or dies in the sanitizer or
 * abort() of the target on a bad input (its path is printed first). */
#define _GNU_SOURCE
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <signal.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Present under ASan/UBSan (gcc and clang): called before the report exits. */
void __sanitizer_set_death_callback(void (*cb)(void)) __attribute__((weak));

static const char *current; /* the input being replayed, for the crash report */

static void say_current(void)
{
	if (current) {
		static const char pre[] = "replay: the input that failed: ";
		ssize_t w = write(2, pre, sizeof(pre) - 1);
		w = write(2, current, strlen(current));
		w = write(2, "\n", 1);
		(void)w;
	}
}

static void on_abort(int sig)
{
	say_current();
	signal(sig, SIG_DFL);
	raise(sig);
}

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		perror(path);
		return -1;
	}
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		if (len == cap) {
			cap = cap ? cap * 2 : 4096;
			uint8_t *nb = realloc(buf, cap);
			if (!nb) {
				free(buf);
				fclose(f);
				return -1;
			}
			buf = nb;
		}
		size_t n = fread(buf + len, 1, cap - len, f);
		if (n == 0)
			break;
		len += n;
	}
	fclose(f);
	current = path;
	/* An exact-size copy, so ASan sees reads past the end of the input. */
	uint8_t *exact = malloc(len ? len : 1);
	memcpy(exact, buf, len);
	free(buf);
	LLVMFuzzerTestOneInput(exact, len);
	free(exact);
	current = NULL;
	return 0;
}

static int cmp(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
	long n = 0;
	int bad = 0;
	if (__sanitizer_set_death_callback)
		__sanitizer_set_death_callback(say_current);
	signal(SIGABRT, on_abort);
	signal(SIGSEGV, on_abort);
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) < 0) {
			perror(argv[i]);
			bad = 1;
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			bad |= run_file(argv[i]) < 0;
			n++;
			continue;
		}
		struct dirent **list;
		int k = scandir(argv[i], &list, NULL, cmp);
		if (k < 0) {
			perror(argv[i]);
			bad = 1;
			continue;
		}
		for (int j = 0; j < k; j++) {
			char p[4096];
			snprintf(p, sizeof(p), "%s/%s", argv[i], list[j]->d_name);
			if (list[j]->d_name[0] != '.' && stat(p, &st) == 0 && S_ISREG(st.st_mode)) {
				bad |= run_file(p) < 0;
				n++;
			}
			free(list[j]);
		}
		free(list);
	}
	printf("replay %s: %ld inputs%s\n", argv[0], n, bad ? ", some unreadable" : "");
	return bad;
}
