/*
 * Tests for interruption: the program is run as a child, signalled in the
 * middle of its work, and the files it leaves are checked.  Training must
 * exit 128 + signal with the last complete epoch saved under --out; an
 * attack must leave only whole PNGs under their final names and no
 * temporary files.
 */
#define _GNU_SOURCE /* DT_REG and friends for readdir */
#include <dirent.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "sectorlab/checkpoint.h"
#include "sectorlab/image.h"
#include "testutil.h"

#define WAIT_SECONDS 120 /* sanitizer builds are slow; a hang still ends */

static pid_t spawn(const char *dir, const char *const *args)
{
	return tu_spawn(args, dir, -1, 0);
}

static void pause_briefly(void)
{
	struct timespec ts = {0, 20 * 1000 * 1000};
	nanosleep(&ts, NULL);
}

static int count_lines(const char *path)
{
	size_t n;
	char *text = tu_read_file(path, &n);
	int lines = 0;
	for (size_t i = 0; text && i < n; i++)
		lines += text[i] == '\n';
	free(text);
	return lines;
}

/* Regular files in dir whose name ends with suffix ("" for all). */
static int count_files(const char *dir, const char *suffix)
{
	DIR *d = opendir(dir);
	if (!d)
		return 0;
	int n = 0;
	size_t ls = strlen(suffix);
	for (struct dirent *e; (e = readdir(d));) {
		size_t l = strlen(e->d_name);
		if (e->d_name[0] != '.' && l >= ls && strcmp(e->d_name + l - ls, suffix) == 0)
			n++;
	}
	closedir(d);
	return n;
}

/* Wait until ready(path) >= want, then signal the child; returns its exit
 * status (-1 when it did not exit normally).  A child that never gets there
 * is killed and the test fails. */
static int signal_when(pid_t pid, int (*ready)(const char *), const char *path, int want,
		       int sig)
{
	time_t start = time(NULL);
	int got;
	while ((got = ready(path)) < want) {
		int st;
		if (waitpid(pid, &st, WNOHANG) == pid)
			fail_msg("the child ended (status %d) before %s reached %d", st, path, want);
		if (time(NULL) - start > WAIT_SECONDS) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			fail_msg("%s reached only %d of %d in %d s", path, got, want, WAIT_SECONDS);
		}
		pause_briefly();
	}
	kill(pid, sig);
	return tu_wait(pid, WAIT_SECONDS);
}

static int log_lines(const char *path)
{
	return count_lines(path);
}

static int png_files(const char *dir)
{
	return count_files(dir, ".png");
}

/* Train for (practically) ever, stop it with sig after two epochs, and
 * check that --out holds the last epoch the log recorded. */
static void check_train_stops(const char *dir, int sig)
{
	char *ckpt = tu_path(dir, "m.safetensors"), *log = tu_path(dir, "log.csv");
	const char *args[] = {"train",    "--data-dir", tu_sample_data(), "--epochs", "100000",
			      "--threads", "1",          "--eps",          "0",        "--out",
			      ckpt,       "--log",       log,              NULL};
	pid_t pid = spawn(dir, args);
	int rc = signal_when(pid, log_lines, log, 3, sig); /* header and two epochs */
	char *errpath = tu_path(dir, "stderr.txt");
	char *said = tu_read_file(errpath, NULL);
	assert_non_null(said);
	if (rc != 128 + sig)
		fail_msg("exit status %d, expected %d; stderr:\n%s", rc, 128 + sig, said);
	assert_non_null(strstr(said, sig == SIGINT ? "stopped by SIGINT" : "stopped by SIGTERM"));

	/* The log and the checkpoint agree on the last complete epoch. */
	int epochs = count_lines(log) - 1;
	assert_true(epochs >= 2);
	struct nn_net *net;
	struct checkpoint_info info;
	struct sl_error err;
	if (checkpoint_load(ckpt, 8, &net, &info, &err) != SL_OK)
		fail_msg("%s", err.msg);
	char want[32];
	snprintf(want, sizeof want, "%d", epochs);
	assert_string_equal(checkpoint_info_get(&info, "epochs"), want);
	assert_string_equal(checkpoint_info_get(&info, "epochs_planned"), "100000");
	char holds[64];
	snprintf(holds, sizeof holds, "holds epoch %d", epochs);
	if (!strstr(said, holds))
		fail_msg("stderr does not say '%s':\n%s", holds, said);
	checkpoint_info_free(&info);
	nn_free(net);
	tu_assert_no_temp_files(dir);
	free(said);
	free(errpath);
	free(ckpt);
	free(log);
}

static void test_train_sigint_keeps_last_epoch(void **state)
{
	check_train_stops(*state, SIGINT);
}

static void test_train_sigterm_keeps_last_epoch(void **state)
{
	check_train_stops(*state, SIGTERM);
}

/* Signalled before its first epoch ends, training says nothing was saved
 * and leaves no file under --out. */
static void test_train_stopped_before_first_epoch(void **state)
{
	const char *dir = *state;
	char *ckpt = tu_path(dir, "m.safetensors"), *errpath = tu_path(dir, "stderr.txt");
	/* Batch 1 makes the first epoch thousands of steps long. */
	const char *args[] = {"train", "--data-dir", tu_sample_data(), "--batch", "1",
			      "--threads", "1", "--out", ckpt, NULL};
	pid_t pid = spawn(dir, args);
	int rc = signal_when(pid, count_lines, errpath, 1, SIGINT); /* "training mlp ..." */
	char *said = tu_read_file(errpath, NULL);
	assert_non_null(said);
	if (rc != 130)
		fail_msg("exit status %d, expected 130; stderr:\n%s", rc, said);
	if (strstr(said, "epoch 1/")) {
		/* The machine was fast enough to finish an epoch: then it is saved. */
		assert_int_equal(access(ckpt, R_OK), 0);
	} else {
		assert_non_null(strstr(said, "no epoch was complete"));
		assert_int_not_equal(access(ckpt, F_OK), 0);
	}
	tu_assert_no_temp_files(dir);
	free(said);
	free(errpath);
	free(ckpt);
}

/* An attack stopped while exporting leaves whole PNGs and nothing else. */
static void test_attack_stopped_during_export(void **state)
{
	const char *dir = *state;
	char *ckpt = tu_path(dir, "m.safetensors"), *pngs = tu_path(dir, "pngs");
	char *npz = tu_path(dir, "adv.npz"), *csv = tu_path(dir, "sweep.csv");
	const char *train[] = {"train", "--data-dir", tu_sample_data(), "--epochs", "1",
			       "--eps", "0", "--out", ckpt, NULL};
	assert_int_equal(tu_wait(spawn(dir, train), WAIT_SECONDS), 0);

	const char *attack[] = {"attack",      "--model", ckpt,  "--data-dir", tu_sample_data(),
				"--attack",    "pgd",     "--steps", "20",       "--eps",
				"0.1,0.2,0.3", "--png-dir", pngs,   "--png-count", "500",
				"--npy",       npz,       "--csv",   csv,        NULL};
	pid_t pid = spawn(dir, attack);
	int rc = signal_when(pid, png_files, pngs, 30, SIGTERM);
	char *errpath = tu_path(dir, "stderr.txt");
	char *said = tu_read_file(errpath, NULL);
	assert_non_null(said);
	if (rc != 143)
		fail_msg("exit status %d, expected 143; stderr:\n%s", rc, said);
	assert_non_null(strstr(said, "stopped by SIGTERM"));

	/* Every file is a whole 28x28 PNG; the archive and the CSV, written at
	 * the end, are absent. */
	int n = count_files(pngs, "");
	assert_int_equal(n, count_files(pngs, ".png"));
	assert_true(n >= 30);
	DIR *d = opendir(pngs);
	assert_non_null(d);
	for (struct dirent *e; (e = readdir(d));) {
		if (e->d_name[0] == '.')
			continue;
		char *p = tu_path(pngs, e->d_name);
		struct image img;
		struct sl_error err;
		if (image_read_png(p, &img, NULL, NULL, 0, &err) != SL_OK)
			fail_msg("%s", err.msg);
		if (!strstr(e->d_name, "grid")) {
			assert_int_equal(img.w, 28);
			assert_int_equal(img.h, 28);
		}
		image_free(&img);
		free(p);
	}
	closedir(d);
	tu_assert_no_temp_files(pngs);
	tu_assert_no_temp_files(dir);
	assert_int_not_equal(access(npz, F_OK), 0);
	assert_int_not_equal(access(csv, F_OK), 0);
	free(said);
	free(errpath);
	free(ckpt);
	free(pngs);
	free(npz);
	free(csv);
}

/* The lab with --out, run in a tmux terminal and stopped with Ctrl-C:
 * the terminal is given back (exit 130) and the file holds the last epoch.
 * Skipped without tmux (`make deps` installs it). */
static void test_lab_ctrl_c_keeps_last_epoch(void **state)
{
	const char *dir = *state;
	char *ckpt = tu_path(dir, "lab.safetensors"), *errp = tu_path(dir, "stderr.txt");
	char *rcp = tu_path(dir, "rc.txt");
	char sock[64], cmd[8192];
	snprintf(sock, sizeof sock, "sectorlab-test-%ld", (long)getpid());
	snprintf(cmd, sizeof cmd,
		 "'%s' --pace 0 --epochs 100000 --data-dir '%s' --out '%s' 2>'%s'; "
		 "echo $? >'%s.part' && mv '%s.part' '%s'",
		 tu_program(), tu_sample_data(), ckpt, errp, rcp, rcp, rcp);
	if (tu_tmux_start(sock, 100, 30, cmd) != 0) {
		print_message("tmux not installed: skipping\n");
		skip();
	}
	tu_wait_file(ckpt, WAIT_SECONDS);
	tu_tmux_keys(sock, "C-c");
	tu_wait_file(rcp, WAIT_SECONDS);
	tu_tmux_kill(sock);
	char *rc = tu_read_file(rcp, NULL), *said = tu_read_file(errp, NULL);
	if (!rc || atoi(rc) != 130 || !said || !strstr(said, "holds epoch"))
		fail_msg("exit status %s; stderr:\n%s", rc ? rc : "(none)", said ? said : "");
	struct nn_net *net;
	struct checkpoint_info info;
	struct sl_error err;
	if (checkpoint_load(ckpt, 8, &net, &info, &err) != SL_OK)
		fail_msg("%s", err.msg);
	char holds[64];
	snprintf(holds, sizeof holds, "holds epoch %s", checkpoint_info_get(&info, "epochs"));
	assert_non_null(strstr(said, holds));
	assert_string_equal(checkpoint_info_get(&info, "rho_certified"), "true");
	checkpoint_info_free(&info);
	nn_free(net);
	tu_assert_no_temp_files(dir);
	free(rc);
	free(said);
	free(ckpt);
	free(errp);
	free(rcp);
}

/* reproduce stopped by Ctrl-C after its first two stages: exit 130, no
 * temporary file left, and the same command again keeps those stages (the
 * two models are not trained again) and finishes the rest. */
static void test_reproduce_resumes_after_ctrl_c(void **state)
{
	const char *dir = *state;
	char *runs = tu_path(dir, "r"), *errpath = tu_path(dir, "stderr.txt");
	const char *args[] = {"reproduce", "--figure", "1", "--budget", "test", "--out", runs,
			      "--data-dir", tu_sample_data(), "--threads", "1", NULL};
	pid_t pid = spawn(dir, args);
	/* The run's first line, then one line per finished stage. */
	int rc = signal_when(pid, count_lines, errpath, 3, SIGINT);
	char *said = tu_read_file(errpath, NULL);
	assert_non_null(said);
	if (rc != 130)
		fail_msg("exit status %d, expected 130; stderr:\n%s", rc, said);
	assert_non_null(strstr(said, "[1/30] trained vanilla"));
	assert_non_null(strstr(said, "[2/30] trained l2"));
	char *models = tu_path(runs, "models");
	tu_assert_no_temp_files(runs);
	tu_assert_no_temp_files(models);

	static char out[1 << 16];
	char cmd[4096];
	snprintf(cmd, sizeof cmd,
		 "reproduce --figure 1 --budget test --out %s --data-dir %s --threads 1", runs,
		 tu_sample_data());
	assert_int_equal(tu_run(cmd, true, out, sizeof out), 0);
	assert_null(strstr(out, "trained vanilla"));
	assert_null(strstr(out, "trained l2"));
	/* The last model is trained by one run or the other (a loaded machine
	 * may let the first run finish more stages before the signal lands). */
	assert_true((strstr(said, "trained spnorm-lmt") != NULL) !=
		    (strstr(out, "trained spnorm-lmt") != NULL));
	assert_non_null(strstr(out, "[30/30]"));
	char *csv_path = tu_path(runs, "figure1.csv");
	assert_int_equal(count_lines(csv_path), 1 + 5 * 4 * 4); /* models x attacks x eps */
	free(csv_path);
	free(models);
	free(said);
	free(errpath);
	free(runs);
}

/* The text with the third comma-separated column of every line taken out
 * (train's log: the seconds an epoch took). */
static char *without_seconds(const char *text)
{
	char *out = malloc(strlen(text) + 1);
	assert_non_null(out);
	size_t o = 0;
	int col = 0;
	for (const char *p = text; *p; p++) {
		if (*p == '\n')
			col = 0;
		else if (*p == ',')
			col++;
		if (col != 2)
			out[o++] = *p;
	}
	out[o] = '\0';
	return out;
}

/* train --resume stopped after two epochs and run again finishes with the
 * very checkpoint (byte for byte) and log (but for the seconds each epoch
 * took) of a run never stopped. */
static void test_train_resume_is_the_run_never_stopped(void **state)
{
	const char *dir = *state;
	char *ckpt = tu_path(dir, "m.safetensors"), *log = tu_path(dir, "log.csv");
	char *resume = tu_path(dir, "state.safetensors"), *errpath = tu_path(dir, "stderr.txt");
	char *ckpt2 = tu_path(dir, "m2.safetensors"), *log2 = tu_path(dir, "log2.csv");
	const char *args[] = {"train", "--data-dir", tu_sample_data(), "--epochs", "5",
			      "--mode", "spnorm", "--threads", "1", "--eps", "0", "--out", ckpt,
			      "--log", log, "--resume", resume, NULL};
	int rc = signal_when(spawn(dir, args), log_lines, log, 3, SIGINT); /* two epochs */
	char *said = tu_read_file(errpath, NULL);
	assert_non_null(said);
	if (rc != 130 || !strstr(said, "state.safetensors holds epoch"))
		fail_msg("exit status %d (expected 130), stderr:\n%s", rc, said);
	int k = count_lines(log) - 1;
	free(said);

	rc = tu_wait(spawn(dir, args), WAIT_SECONDS);
	said = tu_read_file(errpath, NULL);
	assert_non_null(said);
	char want[64];
	snprintf(want, sizeof want, "resuming from epoch %d of 5", k);
	if (rc != 0 || !strstr(said, want))
		fail_msg("exit status %d; stderr does not say '%s':\n%s", rc, want, said);
	free(said);

	const char *args2[] = {"train", "--data-dir", tu_sample_data(), "--epochs", "5",
			       "--mode", "spnorm", "--threads", "1", "--eps", "0", "--out", ckpt2,
			       "--log", log2, NULL};
	assert_int_equal(tu_wait(spawn(dir, args2), WAIT_SECONDS), 0);
	size_t n1, n2;
	char *a = tu_read_file(ckpt, &n1), *b = tu_read_file(ckpt2, &n2);
	assert_non_null(a);
	assert_non_null(b);
	assert_int_equal(n1, n2);
	assert_memory_equal(a, b, n1);
	free(a);
	free(b);
	char *la = tu_read_file(log, NULL), *lb = tu_read_file(log2, NULL);
	assert_non_null(la);
	assert_non_null(lb);
	char *ca = without_seconds(la), *cb = without_seconds(lb);
	assert_string_equal(ca, cb);
	assert_int_equal(count_lines(log), 1 + 5);
	free(ca);
	free(cb);
	free(la);
	free(lb);
	tu_assert_no_temp_files(dir);
	free(ckpt);
	free(log);
	free(resume);
	free(errpath);
	free(ckpt2);
	free(log2);
}

static int file_exists(const char *path)
{
	return access(path, F_OK) == 0;
}

/* The epoch a training state holds (its metadata). */
static int state_epoch(const char *path)
{
	struct checkpoint_info info;
	assert_int_equal(checkpoint_read_info(path, &info, NULL), SL_OK);
	const char *epoch = checkpoint_info_get(&info, "epoch");
	assert_non_null(epoch);
	int k = atoi(epoch);
	checkpoint_info_free(&info);
	return k;
}

/* reproduce stopped by Ctrl-C in the middle of training a model keeps the
 * model's state after its last finished epoch; the same command again says
 * it resumes from that epoch, saves the model and removes the state, and the
 * model is the very file (byte for byte) a run never stopped saves. */
static void test_reproduce_resumes_mid_training(void **state)
{
	const char *dir = *state;
	char *runs = tu_path(dir, "r"), *straight = tu_path(dir, "s");
	char *errpath = tu_path(dir, "stderr.txt");
	char *models = tu_path(runs, "models");
	char *partial = tu_path(models, "vanilla-seed1.partial.safetensors");
	char *model = tu_path(models, "vanilla-seed1.safetensors");
	const char *args[] = {"reproduce", "--figure", "1", "--budget", "quick", "--out", runs,
			      "--data-dir", tu_sample_data(), "--threads", "1", "--quiet", NULL};
	/* Stopped once the first model (10 epochs) has kept an epoch's state. */
	int rc = signal_when(spawn(dir, args), file_exists, partial, 1, SIGINT);
	char *said = tu_read_file(errpath, NULL);
	assert_non_null(said);
	if (rc != 130)
		fail_msg("exit status %d, expected 130; stderr:\n%s", rc, said);
	assert_false(file_exists(model));
	int k = state_epoch(partial);
	assert_true(k >= 1 && k < 10);
	char want[256];
	snprintf(want, sizeof want, "vanilla, seed 1 keeps its epoch %d in", k);
	if (!strstr(said, want))
		fail_msg("stderr does not say '%s':\n%s", want, said);
	tu_assert_no_temp_files(models);
	free(said);

	/* Again: it resumes from that epoch; stopped once the model is saved. */
	rc = signal_when(spawn(dir, args), file_exists, model, 1, SIGINT);
	said = tu_read_file(errpath, NULL);
	assert_non_null(said);
	snprintf(want, sizeof want, "resuming vanilla, seed 1 from epoch %d (of 10)", k);
	if (!strstr(said, want) || !strstr(said, "trained vanilla, seed 1, 10 epochs"))
		fail_msg("stderr does not say '%s' and then 'trained vanilla':\n%s", want, said);
	assert_false(file_exists(partial));
	free(said);

	/* A run never stopped saves the same bytes. */
	args[6] = straight;
	char *path2 = tu_path(straight, "models/vanilla-seed1.safetensors");
	signal_when(spawn(dir, args), file_exists, path2, 1, SIGINT);
	size_t n1, n2;
	char *resumed = tu_read_file(model, &n1);
	char *whole = tu_read_file(path2, &n2);
	assert_non_null(resumed);
	assert_non_null(whole);
	assert_int_equal(n1, n2);
	assert_memory_equal(resumed, whole, n1);
	free(resumed);
	free(whole);
	free(path2);
	free(model);
	free(partial);
	free(models);
	free(errpath);
	free(straight);
	free(runs);
}

int main(int argc, char **argv)
{
	(void)argc;
	tu_find_program(argv[0]);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_train_sigint_keeps_last_epoch,
						tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_train_sigterm_keeps_last_epoch,
						tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_train_stopped_before_first_epoch,
						tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_attack_stopped_during_export,
						tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_lab_ctrl_c_keeps_last_epoch,
						tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_reproduce_resumes_after_ctrl_c,
						tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_train_resume_is_the_run_never_stopped,
						tu_setup_tmpdir, tu_teardown_tmpdir),
		cmocka_unit_test_setup_teardown(test_reproduce_resumes_mid_training,
						tu_setup_tmpdir, tu_teardown_tmpdir),
	};
	return cmocka_run_group_tests_name("interrupt", tests, NULL, NULL);
}
