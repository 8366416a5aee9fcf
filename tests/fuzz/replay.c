/* SPDX-License-Identifier: Apache-2.0 */
/*
 * replay.c - runs a fuzz target's LLVMFuzzerTestOneInput on every file of
 * its seed corpus, without libFuzzer, so that `make check` (gcc or clang,
 * with or without sanitizers) replays the corpora.  Linked with one
 * tests/fuzz/fuzz_*.c; the harness's checks abort on a violation, which
 * fails the test.  LLVMFuzzerInitialize runs first when the harness has
 * one.
 *
 *   replay_TARGET [DIR|FILE...]   (default: the corpus compiled in as
 *                                  FUZZ_CORPUS)
 *
 * Exit 0 when every input ran, 1 when a directory was unreadable or held
 * no input.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "util/tb_buf.h"
#include "util/tb_file.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

#define INPUT_MAX (4 << 20)

/* Runs the target on one file; 0, or -1 when it cannot be read. */
static int
replay_file(const char *path)
{
	struct tb_buf b;
	int rc = -1;

	tb_buf_init(&b);
	if (tb_file_read(path, INPUT_MAX, &b, NULL) == 0) {
		/* an exact-size copy, so that a read past the end is seen
		 * by the sanitizers (the buffer has spare room) */
		uint8_t *copy = malloc(b.len > 0 ? b.len : 1);
		if (copy != NULL) {
			if (b.len > 0)
				memcpy(copy, b.data, b.len);
			(void)LLVMFuzzerTestOneInput(copy, b.len);
			free(copy);
			rc = 0;
		}
	}
	tb_buf_free(&b);
	if (rc != 0)
		fprintf(stderr, "replay: cannot read %s\n", path);
	return rc;
}

/* Runs the target on every regular file in dir (in name order); the
 * number run, or -1. */
static int
replay_dir(const char *dir)
{
	struct dirent **names;
	int n = scandir(dir, &names, NULL, alphasort), ran = 0;

	if (n < 0) {
		fprintf(stderr, "replay: cannot read the directory %s\n", dir);
		return -1;
	}
	for (int i = 0; i < n; i++) {
		char path[4096];
		struct stat st;
		snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
		if (names[i]->d_name[0] != '.' && stat(path, &st) == 0 && S_ISREG(st.st_mode)) {
			if (replay_file(path) != 0)
				ran = -1;
			else if (ran >= 0)
				ran++;
		}
		free(names[i]);
	}
	free(names);
	return ran;
}

int
main(int argc, char **argv)
{
	static char *deflt[] = {NULL, FUZZ_CORPUS};
	char **args = argc > 1 ? argv : deflt;
	int nargs = argc > 1 ? argc : 2, total = 0;

	if (LLVMFuzzerInitialize != NULL)
		(void)LLVMFuzzerInitialize(&argc, &argv);
	for (int i = 1; i < nargs; i++) {
		struct stat st;
		int n;
		if (stat(args[i], &st) == 0 && S_ISDIR(st.st_mode))
			n = replay_dir(args[i]);
		else
			n = replay_file(args[i]) == 0 ? 1 : -1;
		if (n <= 0) {
			fprintf(stderr, "replay: %s: %s\n", args[i], n == 0 ? "no inputs" : "failed");
			return 1;
		}
		printf("%d input(s) from %s: no failure\n", n, args[i]);
		total += n;
	}
	printf("PASS: %d input(s)\n", total);
	return 0;
}
