/* testutil: shared test helpers (see testutil.h). */
#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700
#endif
#include "testutil.h"

#include <dirent.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "sectorlab/blascore.h"
#include "sectorlab/data.h"
#include "sectorlab/rng.h"

/* Every test and benchmark runs on the OpenBLAS kernels the program itself
 * would use (blascore.h), before its main: glibc passes a program's own
 * constructors main's arguments. */
__attribute__((constructor)) static void tu_blas_kernels(int argc, char **argv, char **envp)
{
	(void)argc;
	(void)envp;
	blascore_choose(argv);
}

static int is_dir(const char *p)
{
	struct stat st;
	return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

const char *tu_shared_data(void)
{
	const char *env = getenv("SECTORLAB_SHARED_DATA");
	if (env && *env)
		return is_dir(env) ? env : NULL;
	return is_dir("../shared/data/mnist") ? "../shared/data" : NULL;
}

const char *tu_sample_data(void)
{
	return "data";
}

char *tu_tmpdir(void)
{
	char tmpl[] = "/tmp/sectorlab-test-XXXXXX";
	char *d = mkdtemp(tmpl);
	return d ? strdup(d) : NULL;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void tu_rmrf(const char *path)
{
	if (path)
		nftw(path, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int tu_write_file(const char *path, const void *data, size_t n)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		return -1;
	size_t w = fwrite(data, 1, n, f);
	return (fclose(f) == 0 && w == n) ? 0 : -1;
}

int tu_write_gz(const char *path, const void *data, size_t n)
{
	gzFile g = gzopen(path, "wb");
	if (!g)
		return -1;
	int w = n ? gzwrite(g, data, (unsigned)n) : 0;
	return (gzclose(g) == Z_OK && (size_t)w == n) ? 0 : -1;
}

char *tu_path(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);
	if (p)
		snprintf(p, n, "%s/%s", dir, name);
	return p;
}

int tu_setup_tmpdir(void **state)
{
	*state = tu_tmpdir();
	return *state ? 0 : -1;
}

int tu_teardown_tmpdir(void **state)
{
	tu_rmrf(*state);
	free(*state);
	return 0;
}

char *tu_read_file(const char *path, size_t *n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = NULL;
	long len = -1;
	if (fseek(f, 0, SEEK_END) == 0 && (len = ftell(f)) >= 0 && fseek(f, 0, SEEK_SET) == 0)
		buf = malloc((size_t)len + 1);
	if (buf) {
		size_t got = fread(buf, 1, (size_t)len, f);
		buf[got] = '\0';
		if (n)
			*n = got;
	}
	fclose(f);
	return buf;
}

/* ---- running the program ---- */

static char program[1024];

void tu_find_program(const char *argv0)
{
	char self[1024];
	snprintf(self, sizeof self, "%s", argv0);
	snprintf(program, sizeof program, "%s/../sectorlab", dirname(self));
}

const char *tu_program(void)
{
	return program;
}

int tu_run(const char *args, bool with_stderr, char *out, size_t cap)
{
	size_t len = strlen(program) + strlen(args) + 32;
	char *cmd = malloc(len);
	assert_non_null(cmd);
	snprintf(cmd, len, "%s %s %s", program, args, with_stderr ? "2>&1" : "2>/dev/null");
	FILE *p = popen(cmd, "r");
	free(cmd);
	assert_non_null(p);
	size_t n = fread(out, 1, cap - 1, p);
	out[n] = '\0';
	int st = pclose(p);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* In the child: point fd at outdir/name, or leave it. */
static void redirect(int fd, const char *outdir, const char *name)
{
	char path[4096];
	snprintf(path, sizeof path, "%s/%s", outdir, name);
	int f = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
	if (f >= 0) {
		dup2(f, fd);
		close(f);
	}
}

pid_t tu_spawn(const char *const *args, const char *outdir, int limit_resource,
	       unsigned long limit_bytes)
{
	const char *argv[64] = {program};
	int n = 1;
	for (; args[n - 1] && n < 63; n++)
		argv[n] = args[n - 1];
	argv[n] = NULL;
	fflush(NULL);
	pid_t pid = fork();
	if (pid < 0)
		fail_msg("cannot fork");
	if (pid == 0) {
		redirect(1, outdir, "stdout.txt");
		redirect(2, outdir, "stderr.txt");
		/* The signal as a user's shell leaves it: the program must cope
		 * with a file size limit itself. */
		signal(SIGXFSZ, SIG_DFL);
		if (limit_resource >= 0) {
			struct rlimit rl = {limit_bytes, limit_bytes};
			if (setrlimit(limit_resource, &rl) != 0)
				_exit(126);
		}
		execv(program, (char *const *)argv);
		_exit(127);
	}
	return pid;
}

int tu_wait(pid_t pid, int seconds)
{
	time_t start = time(NULL);
	int st;
	while (waitpid(pid, &st, WNOHANG) != pid) {
		if (time(NULL) - start > seconds) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			fail_msg("%s did not end within %d s", program, seconds);
		}
		struct timespec ts = {0, 10 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void tu_assert_no_temp_files(const char *dir)
{
	DIR *d = opendir(dir);
	assert_non_null(d);
	for (struct dirent *e; (e = readdir(d));)
		if (strstr(e->d_name, ".tmp."))
			fail_msg("temporary file left behind: %s/%s", dir, e->d_name);
	closedir(d);
}

/* ---- tmux ---- */

int tu_tmux_start(const char *sock, int cols, int rows, const char *shell_cmd)
{
	if (system("command -v tmux >/dev/null 2>&1") != 0)
		return -1;
	size_t len = strlen(shell_cmd) * 2 + 256;
	char *cmd = malloc(len), *q = malloc(strlen(shell_cmd) * 4 + 1);
	assert_non_null(cmd);
	assert_non_null(q);
	/* shell_cmd inside single quotes: ' becomes '\'' */
	char *o = q;
	for (const char *p = shell_cmd; *p; p++) {
		if (*p == '\'') {
			memcpy(o, "'\\''", 4);
			o += 4;
		} else {
			*o++ = *p;
		}
	}
	*o = '\0';
	snprintf(cmd, len, "tmux -L %s new-session -d -x %d -y %d '%s'", sock, cols, rows, q);
	int rc = system(cmd);
	free(cmd);
	free(q);
	assert_int_equal(rc, 0);
	return 0;
}

void tu_tmux_keys(const char *sock, const char *keys)
{
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "tmux -L %s send-keys %s", sock, keys);
	assert_int_equal(system(cmd), 0);
}

static void tmux_capture(const char *sock, const char *flags, char *out, size_t cap)
{
	char cmd[256];
	snprintf(cmd, sizeof cmd, "tmux -L %s capture-pane -p %s", sock, flags);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	size_t n = fread(out, 1, cap - 1, p);
	out[n] = '\0';
	pclose(p);
}

void tu_tmux_capture(const char *sock, char *out, size_t cap)
{
	tmux_capture(sock, "", out, cap);
}

void tu_tmux_capture_escapes(const char *sock, char *out, size_t cap)
{
	tmux_capture(sock, "-e", out, cap);
}

void tu_tmux_kill(const char *sock)
{
	char cmd[256];
	snprintf(cmd, sizeof cmd, "tmux -L %s kill-server >/dev/null 2>&1", sock);
	if (system(cmd) != 0) {
		/* already gone with its last window */
	}
}

bool tu_wait_file(const char *path, int seconds)
{
	time_t start = time(NULL);
	while (access(path, F_OK) != 0) {
		if (time(NULL) - start > seconds)
			return false;
		struct timespec ts = {0, 20 * 1000 * 1000};
		nanosleep(&ts, NULL);
	}
	return true;
}

/* A synthetic colour dataset: n random 3x32x32 images whose label is the
 * brightest of ten fixed pixel groups, so there is something to learn. */
void tu_synthetic_cifar(struct sl_dataset *d, uint32_t n, uint64_t seed)
{
	struct sl_rng rng;
	rng_seed(&rng, seed);
	memset(d, 0, sizeof *d);
	d->n = n, d->c = 3, d->h = 32, d->w = 32, d->classes = 10, d->owned = true;
	d->pixels = malloc((size_t)n * 3072);
	d->labels = malloc(n);
	snprintf(d->source, sizeof d->source, "synthetic");
	for (uint32_t i = 0; i < n; i++) {
		uint8_t *p = d->pixels + (size_t)i * 3072;
		for (int k = 0; k < 3072; k++)
			p[k] = (uint8_t)rng_below(&rng, 128);
		int label = (int)rng_below(&rng, 10);
		for (int k = 0; k < 64; k++)
			p[label * 300 + k] = 255;
		d->labels[i] = (uint8_t)label;
	}
}

void tu_synthetic_dataset(struct sl_dataset *d, uint32_t n, int c, int h, int w)
{
	struct sl_rng rng;
	rng_seed(&rng, 5);
	memset(d, 0, sizeof *d);
	d->n = n, d->c = (uint32_t)c, d->h = (uint32_t)h, d->w = (uint32_t)w, d->classes = 10;
	d->owned = true;
	size_t dim = (size_t)c * h * w;
	d->pixels = malloc(dim * n);
	d->labels = malloc(n);
	for (size_t i = 0; i < dim * n; i++)
		d->pixels[i] = (uint8_t)rng_below(&rng, 256);
	for (uint32_t i = 0; i < n; i++)
		d->labels[i] = (uint8_t)rng_below(&rng, 10);
	snprintf(d->source, sizeof d->source, "synthetic");
}

double tu_median(double *t, int n)
{
	for (int i = 0; i < n; i++)
		for (int j = i + 1; j < n; j++)
			if (t[j] < t[i]) {
				double x = t[i];
				t[i] = t[j];
				t[j] = x;
			}
	return t[n / 2];
}
