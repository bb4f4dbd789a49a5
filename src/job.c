/* job: the training worker thread and its snapshots (see job.h). */
#include "sectorlab/job.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sectorlab/attack.h"
#include "sectorlab/certify.h"
#include "sectorlab/driver.h"

struct job {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct job_config cfg;
	struct trainer *trainer;   /* owned by the worker once started */
	struct driver driver;      /* its epochs, step by step */
	const struct sl_dataset *test;
	float *example_x;          /* (test image) the example's input, the worker's own */
	/* Controls, written by the UI thread under lock. */
	bool paused;
	int pace;
	float eps;
	bool want_example;
	atomic_bool cancel;
	float work_eps;            /* the worker's eps for this step */
	/* The epoch's FGSM figures, JOB_ATTACK_SLICE test images a pass of
	 * the worker (training waits for them), so that pause and quit are
	 * answered between slices. */
	bool attack_pending;
	int attack_pos, attack_total, attack_clean, attack_robust;
	float attack_eps;
	/* Published state, guarded by lock. */
	struct job_snapshot snap;
	/* The worker's private copy, published with one memcpy. */
	struct job_snapshot work;
};

void job_series_push(struct job_series *s, float value)
{
	if (s->stride < 1)
		s->stride = 1;
	s->sum += value;
	s->pending++;
	if (s->pending < s->stride)
		return;
	if (s->n == JOB_HIST) {
		/* Full: merge neighbours, doubling the values per point. */
		for (int i = 0; i < JOB_HIST / 2; i++)
			s->v[i] = 0.5f * (s->v[2 * i] + s->v[2 * i + 1]);
		s->n = JOB_HIST / 2;
		s->stride *= 2;
		if (s->pending < s->stride)
			return;
	}
	s->v[s->n++] = (float)(s->sum / s->pending);
	s->sum = 0;
	s->pending = 0;
}

static double now_seconds(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void publish(struct job *job)
{
	pthread_mutex_lock(&job->lock);
	job->snap = job->work;
	pthread_mutex_unlock(&job->lock);
}

/* Copy the weighted layers' norms and caps, as they are: the screen never
 * advances the model's power iteration (an uncapped layer's estimate is
 * its measured norm as of the last epoch's end). */
static void record_layers(struct job *job)
{
	struct trainer *t = job->trainer;
	for (int j = 0; j < t->nweighted; j++) {
		const struct nn_layer *l = &t->net->layers[t->weighted[j]];
		job->work.sigma_hat[j] = l->sigma_hat;
		job->work.sigma_used[j] = l->sigma_hat * l->scale;
		job->work.rho[j] = l->rho;
	}
}

/* After an epoch (the driver's hook): exact norms, test accuracy, FGSM
 * metrics, then the job's own hook. */
static sl_status epoch_report(void *ctx, struct trainer *t, const struct epoch_report *rep,
			      struct sl_error *err)
{
	struct job *job = ctx;
	float eps = job->work_eps;
	memcpy(job->work.sigma_exact, rep->sigma, sizeof(double) * (size_t)t->nweighted);
	for (int j = 0; j < t->nweighted; j++)
		job->work.over[j] = t->caps.nrho > j &&
				    certify_over_cap(rep->sigma[j], t->caps.bound[j]);
	double acc = rep->test_accuracy;
	if (job->test && job->test->n > 0) {
		job_series_push(&job->work.test_acc, (float)acc);
		job->work.nevals++;
		int n = job->cfg.eval_n;
		job->attack_total = n <= 0 || (uint32_t)n > job->test->n ? (int)job->test->n : n;
		job->attack_pos = job->attack_clean = job->attack_robust = 0;
		job->attack_eps = eps;
		job->attack_pending = true;
	}
	if (job->cfg.on_epoch) {
		sl_status st = job->cfg.on_epoch(job->cfg.on_epoch_ctx, t, acc, err);
		if (st != SL_OK)
			return st;
	}
	return SL_OK;
}

#define JOB_ATTACK_SLICE 64

/* The next slice of the epoch's FGSM evaluation; the figures are published
 * with the last. */
static sl_status attack_slice(struct job *job, struct sl_error *err)
{
	struct sl_dataset view;
	int count = job->attack_total - job->attack_pos;
	count = count < JOB_ATTACK_SLICE ? count : JOB_ATTACK_SLICE;
	sl_status st = data_view(job->test, (uint32_t)job->attack_pos, (uint32_t)count, &view, err);
	struct attack_result r;
	if (st == SL_OK)
		st = attack_eval_fgsm(job->trainer->net, &view, 0, job->attack_eps, &r, err);
	if (st != SL_OK)
		return st;
	job->attack_pos += count;
	job->attack_clean += r.clean_correct;
	job->attack_robust += r.robust_correct;
	if (job->attack_pos < job->attack_total)
		return SL_OK;
	int n = job->attack_total, clean = job->attack_clean, robust = job->attack_robust;
	job->work.eps = job->attack_eps;
	job->work.have_attack = true;
	job->work.clean_acc = (double)clean / n;
	job->work.robust_acc = (double)robust / n;
	job->work.success_rate = clean > 0 ? (double)(clean - robust) / clean : 0;
	job->work.attack_n = n;
	job->attack_pending = false;
	return SL_OK;
}

static void make_example(struct job *job, float eps)
{
	const struct sl_dataset *ds = job->test;
	struct nn_net *net = job->trainer->net;
	if (!ds || ds->n == 0 || !job->example_x)
		return;
	size_t dim = data_dim(ds);
	uint32_t k = job->work.have_example ? (job->work.example_index + 1) % ds->n : 0;
	float *x = job->example_x;
	float *xa = malloc(sizeof(float) * dim);
	if (!xa)
		return;
	int y, pc, pa;
	data_batch(ds, &k, 1, x, &y);
	nn_argmax(nn_forward(net, x, 1), 1, net->out_dim, &pc);
	attack_fgsm(net, x, &y, 1, eps, xa);
	nn_argmax(nn_forward(net, xa, 1), 1, net->out_dim, &pa);
	for (size_t i = 0; i < dim; i++) {
		job->work.orig[i] = data_to_byte(x[i]);
		job->work.adv[i] = data_to_byte(xa[i]);
	}
	free(xa);
	job->work.have_example = true;
	job->work.example_index = k;
	job->work.img_c = (int)ds->c, job->work.img_h = (int)ds->h, job->work.img_w = (int)ds->w;
	job->work.label = y, job->work.pred_clean = pc, job->work.pred_adv = pa;
	job->work.eps = eps;
}

static void *worker(void *arg)
{
	struct job *job = arg;
	struct trainer *t = job->trainer;
	struct sl_error err;
	status_clear(&err);
	double train_time = 0, last_publish = 0;
	long images = 0;
	float loss_acc = 0, acc_acc = 0;
	int chunk = 0;
	const int chunk_steps = 5;

	job->work.state = JOB_RUNNING;
	make_example(job, job->cfg.eps);
	publish(job);
	while (!atomic_load(&job->cancel)) {
		pthread_mutex_lock(&job->lock);
		bool paused = job->paused;
		int pace = job->pace;
		float eps = job->eps;
		bool want_example = job->want_example;
		job->want_example = false;
		pthread_mutex_unlock(&job->lock);

		if (want_example || eps != job->work.eps) {
			make_example(job, eps);
			publish(job);
		}
		bool done = driver_finished(&job->driver) && !job->attack_pending;
		if (paused || done) {
			enum job_state s = done ? JOB_DONE : JOB_PAUSED;
			if (job->work.state != s) {
				job->work.state = s;
				publish(job);
			}
			pthread_mutex_lock(&job->lock);
			if (!atomic_load(&job->cancel) && !job->want_example)
				pthread_cond_wait(&job->wake, &job->lock);
			pthread_mutex_unlock(&job->lock);
			continue;
		}
		job->work.state = JOB_RUNNING;

		double t0 = now_seconds();
		struct driver_step_info info = {0};
		job->work_eps = eps;
		sl_status st = job->attack_pending ? attack_slice(job, &err)
						   : driver_step(&job->driver, &info, &err);
		double t1 = now_seconds();
		train_time += t1 - t0;
		if (st != SL_OK) {
			job->work.state = JOB_FAILED;
			snprintf(job->work.message, sizeof job->work.message, "%s", err.msg);
			publish(job);
			break;
		}
		if (info.batch) {
			images += t->cfg.batch;
			loss_acc += (float)info.loss;
			acc_acc += (float)info.accuracy;
			chunk++;
		}
		/* A point every few batches, and one for the epoch's last ones. */
		bool last = info.batch && driver_in_epoch_end(&job->driver);
		if (chunk > 0 && (chunk == chunk_steps || last)) {
			job_series_push(&job->work.loss, loss_acc / chunk);
			job_series_push(&job->work.train_acc, acc_acc / chunk);
			loss_acc = acc_acc = 0;
			chunk = 0;
		}
		job->work.epoch = t->epoch;
		job->work.step = t->step;
		job->work.seconds = train_time;
		job->work.images_per_sec = train_time > 0 ? images / train_time : 0;
		bool due = info.epoch_done || t1 - last_publish > 0.05;
		record_layers(job);
		if (info.epoch_done)
			make_example(job, eps);
		if (due) {
			publish(job);
			last_publish = t1;
		}
		if (pace > 0 && info.batch) {
			/* Sleep the rest of this batch's time slot, waking on cancel
			 * (the epoch's end is not paced). */
			double slot = 1.0 / pace - (now_seconds() - t0);
			if (slot > 0) {
				struct timespec ts;
				clock_gettime(CLOCK_REALTIME, &ts);
				double when = ts.tv_sec + ts.tv_nsec * 1e-9 + slot;
				ts.tv_sec = (time_t)when;
				ts.tv_nsec = (long)((when - floor(when)) * 1e9);
				pthread_mutex_lock(&job->lock);
				if (!atomic_load(&job->cancel))
					pthread_cond_timedwait(&job->wake, &job->lock, &ts);
				pthread_mutex_unlock(&job->lock);
			}
		}
	}
	return NULL;
}

sl_status job_start(const struct job_config *cfg, const struct sl_dataset *train,
		    const struct sl_dataset *test, struct job **out, struct sl_error *err)
{
	*out = NULL;
	struct job *job = calloc(1, sizeof *job);
	if (!job)
		return status_set(err, SL_ERR_NOMEM, "job");
	job->cfg = *cfg;
	job->test = test;
	job->pace = cfg->steps_per_sec;
	job->eps = cfg->eps;
	atomic_init(&job->cancel, false);
	sl_status st = trainer_new(&cfg->train, train, test, &job->trainer, err);
	if (st != SL_OK) {
		free(job);
		return st;
	}
	struct trainer *t = job->trainer;
	const struct driver_config dc = {.test = test, .test_n = cfg->eval_n,
					 .on_epoch = epoch_report, .ctx = job};
	driver_init(&job->driver, t, &dc);
	if (test && data_dim(test) <= JOB_MAX_PIXELS) {
		job->example_x = malloc(sizeof(float) * data_dim(test));
		if (!job->example_x) {
			trainer_free(t);
			free(job);
			return status_set(err, SL_ERR_NOMEM, "the example's image");
		}
	}
	job->work.state = JOB_STARTING;
	job->work.epochs = cfg->train.epochs;
	job->work.steps_per_epoch = trainer_steps_per_epoch(t);
	job->work.seed = cfg->train.seed;
	job->work.mode = cfg->train.mode;
	job->work.rho_certified = cfg->train.mode == TRAIN_SPNORM && t->caps.certified;
	job->work.nlayers = t->nweighted;
	for (int j = 0; j < t->nweighted; j++)
		snprintf(job->work.layer_name[j], sizeof job->work.layer_name[j], "%s",
			 t->net->layers[t->weighted[j]].name);
	job->work.eps = cfg->eps;
	record_layers(job);
	job->snap = job->work;
	pthread_mutex_init(&job->lock, NULL);
	pthread_cond_init(&job->wake, NULL);
	if (pthread_create(&job->thread, NULL, worker, job) != 0) {
		pthread_mutex_destroy(&job->lock);
		pthread_cond_destroy(&job->wake);
		trainer_free(job->trainer);
		free(job->example_x);
		free(job);
		return status_set(err, SL_ERR_NOMEM, "cannot start the training thread");
	}
	*out = job;
	return SL_OK;
}

void job_snapshot(struct job *job, struct job_snapshot *out)
{
	pthread_mutex_lock(&job->lock);
	*out = job->snap;
	pthread_mutex_unlock(&job->lock);
}

/* Change a control under the lock and wake the worker. */
#define JOB_CONTROL(job, stmt)                        \
	do {                                          \
		pthread_mutex_lock(&(job)->lock);     \
		stmt;                                 \
		pthread_cond_signal(&(job)->wake);    \
		pthread_mutex_unlock(&(job)->lock);   \
	} while (0)

void job_set_paused(struct job *job, bool paused)
{
	JOB_CONTROL(job, job->paused = paused);
}

void job_set_pace(struct job *job, int steps_per_sec)
{
	JOB_CONTROL(job, job->pace = steps_per_sec);
}

void job_set_eps(struct job *job, float eps)
{
	JOB_CONTROL(job, job->eps = eps);
}

void job_next_example(struct job *job)
{
	JOB_CONTROL(job, job->want_example = true);
}

void job_stop(struct job *job)
{
	if (!job)
		return;
	JOB_CONTROL(job, atomic_store(&job->cancel, true));
	pthread_join(job->thread, NULL);
	pthread_mutex_destroy(&job->lock);
	pthread_cond_destroy(&job->wake);
	trainer_free(job->trainer);
	free(job->example_x);
	free(job);
}
