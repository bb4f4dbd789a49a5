/* job: the training worker thread and its snapshots (see job.h). */
#include "sectorlab/job.h"
#include "sectorlab/task.h"

#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#ifdef __linux__
#include <unistd.h>
#endif

#include "sectorlab/arch.h"
#include "sectorlab/attack.h"
#include "sectorlab/certify.h"
#include "sectorlab/driver.h"

/* The attack figures in progress, computed a chunk at a time. */
struct attacks {
	bool active;
	bool cert;                 /* the certified accuracy first (after an epoch) */
	bool curve;                /* with robust accuracy against eps */
	bool epoch;                /* an epoch's figures: pushed to the per-epoch curves */
	float eps;
	int n, pos;                /* images for FGSM and PGD, done */
	int clean, fgsm, pgd;      /* correct: clean, under FGSM, under PGD */
	int curve_n, curve_pos;
	int curve_correct[JOB_EPS_POINTS];
};

struct job {
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct job_config cfg;
	struct trainer *trainer;   /* owned by the worker once started */
	struct driver driver;      /* its epochs, step by step */
	float work_eps;            /* the worker's eps for this step (the epoch hook's) */
	struct attacks attacks;    /* the attack figures being computed */
	const struct sl_dataset *train, *test;
	float *x, *xa;             /* (dim) the example and its adversarial */
	/* Controls, written by other threads under lock. */
	bool paused;
	int pace;
	float eps;
	uint32_t example;
	int steps_left;            /* batches to train while paused */
	bool to_epoch_end;         /* train to the epoch's end while paused */
	double lr;
	int epochs;
	/* A restart asked for (job_restart): the run's new configuration and
	 * datasets. */
	bool restart;
	struct job_config next;
	const struct sl_dataset *next_train, *next_test;
	long caps_asked;           /* job_set_caps calls; caps holds the latest */
	struct caps_spec caps;
	long caps_at_restart;      /* caps_asked when the last restart was asked */
	long caps_applied;         /* the worker's: caps_asked as of its last change */
	atomic_bool cancel;
	/* Copies of the network for other threads: asked for up to net_asked,
	 * published up to net_served into pub (built on the first request),
	 * all under lock; exited once the worker has returned. */
	long net_asked, net_served;
	struct nn_net *pub;
	long pub_step;             /* the training step pub was copied at */
	bool exited;
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

float job_series_last(const struct job_series *s, float fallback)
{
	if (s->pending > 0)
		return (float)(s->sum / s->pending);
	return s->n > 0 ? s->v[s->n - 1] : fallback;
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

/* Images attacked: the evaluation subset, at most `most` (the attacks run
 * after every epoch and at every eps key, so they stay short). */
static int attack_n(const struct job *job, int most)
{
	int n = job->cfg.eval_n > 0 ? job->cfg.eval_n : (int)job->test->n;
	return n < most ? n : most;
}

/* Start the attack figures at eps; with the curve after an epoch. */
static void attacks_begin(struct job *job, float eps, bool after_epoch)
{
	struct attacks *a = &job->attacks;
	bool cert = after_epoch || (a->active && a->cert);
	bool curve = after_epoch || (a->active && a->curve);
	bool epoch = after_epoch || (a->active && a->epoch);
	memset(a, 0, sizeof *a);
	a->active = true;
	a->eps = eps;
	a->cert = cert && job->cfg.cert_radius > 0;
	a->curve = curve;
	a->epoch = epoch;
	a->n = attack_n(job, JOB_ATTACK_N);
	a->curve_n = curve ? attack_n(job, JOB_CURVE_N) : 0;
}

/* One bounded piece of the attack figures: a chunk of images under FGSM
 * and PGD, then chunks of the robust-accuracy curve; the figures are
 * published whole when the last piece is done.  Controls are served
 * between pieces, so a key never waits for a whole sweep. */
static sl_status attacks_step(struct job *job, struct sl_error *err)
{
	struct attacks *a = &job->attacks;
	struct nn_net *net = job->trainer->net;
	struct sl_dataset part;
	struct attack_result r[JOB_EPS_POINTS];
	sl_status st;
	if (a->cert) { /* one piece: the certificate, then its accuracy */
		struct certify_accuracy ca;
		if ((st = trainer_certified_accuracy(job->trainer, job->test, job->cfg.eval_n,
						     &job->cfg.cert_radius, 1, &ca, err)) != SL_OK)
			return st;
		struct job_snapshot *w = &job->work;
		w->have_cert = true;
		w->cert_radius = job->cfg.cert_radius;
		w->cert_acc = ca.certified[0];
		w->cert_gamma = ca.gamma;
		w->cert_sector = ca.sector;
		w->cert_n = ca.n;
		job_series_push(&w->certified, (float)ca.certified[0]);
		a->cert = false;
		return SL_OK;
	}
	if (a->pos < a->n) {
		uint32_t count = (uint32_t)(a->n - a->pos < JOB_ATTACK_CHUNK ? a->n - a->pos
									 : JOB_ATTACK_CHUNK);
		if ((st = data_view(job->test, (uint32_t)a->pos, count, &part, err)) != SL_OK)
			return st;
		struct attack_recipe fgsm = attack_recipe_fgsm(a->eps);
		struct attack_recipe pgd = attack_recipe_pgd(ATTACK_NORM_INF, a->eps, JOB_PGD_STEPS);
		if ((st = attack_sweep(net, &part, 0, &fgsm, &a->eps, 1, NULL, NULL, r, err)) != SL_OK)
			return st;
		a->clean += r[0].clean_correct;
		a->fgsm += r[0].robust_correct;
		if ((st = attack_sweep(net, &part, 0, &pgd, &a->eps, 1, NULL, NULL, r, err)) != SL_OK)
			return st;
		a->pgd += r[0].robust_correct;
		a->pos += (int)count;
		return SL_OK;
	}
	if (a->curve_pos < a->curve_n) {
		uint32_t count = (uint32_t)(a->curve_n - a->curve_pos < JOB_ATTACK_CHUNK
						    ? a->curve_n - a->curve_pos
						    : JOB_ATTACK_CHUNK);
		if ((st = data_view(job->test, (uint32_t)a->curve_pos, count, &part, err)) != SL_OK)
			return st;
		float eps[JOB_EPS_POINTS];
		for (int k = 0; k < JOB_EPS_POINTS; k++)
			eps[k] = 0.05f * (float)k;
		struct attack_recipe fgsm = attack_recipe_fgsm(0);
		if ((st = attack_sweep(net, &part, 0, &fgsm, eps, JOB_EPS_POINTS, NULL, NULL, r,
				       err)) != SL_OK)
			return st;
		for (int k = 0; k < JOB_EPS_POINTS; k++)
			a->curve_correct[k] += r[k].robust_correct;
		a->curve_pos += (int)count;
		return SL_OK;
	}
	/* Done: publish the figures. */
	struct job_snapshot *w = &job->work;
	w->clean_acc = (double)a->clean / a->n;
	w->robust_acc = (double)a->fgsm / a->n;
	w->pgd_robust_acc = (double)a->pgd / a->n;
	w->success_rate = a->clean ? (double)(a->clean - a->fgsm) / a->clean : 0;
	w->attack_n = a->n;
	w->attack_eps = a->eps;
	w->have_attack = true;
	if (a->curve_n > 0) {
		for (int k = 0; k < JOB_EPS_POINTS; k++) {
			w->curve_eps[k] = 0.05f * (float)k;
			w->curve_acc[k] = (float)a->curve_correct[k] / (float)a->curve_n;
		}
		w->have_curve = true;
	}
	if (a->epoch) {
		job_series_push(&w->fgsm_acc, (float)w->robust_acc);
		job_series_push(&w->pgd_acc, (float)w->pgd_robust_acc);
	}
	a->active = false;
	return SL_OK;
}

/* After an epoch (the driver's hook, the trainer settled and evaluated):
 * exact norms, test accuracy and loss, the job's own hook; the attacks
 * follow in pieces (attacks_step) before the next batch. */
static sl_status epoch_report(void *ctx, struct trainer *t, const struct epoch_report *rep,
			      struct sl_error *err)
{
	struct job *job = ctx;
	memcpy(job->work.sigma_exact, rep->sigma, sizeof(double) * (size_t)t->nweighted);
	for (int j = 0; j < t->nweighted; j++)
		job->work.over[j] = t->caps.nrho > j &&
				    certify_over_cap(rep->sigma[j], t->caps.bound[j]);
	if (job->test) {
		job_series_push(&job->work.test_acc, (float)rep->test_accuracy);
		job_series_push(&job->work.test_loss, (float)rep->test_loss);
		job->work.nevals++;
		attacks_begin(job, job->work_eps, true);
	}
	if (job->cfg.on_epoch) {
		sl_status st = job->cfg.on_epoch(job->cfg.on_epoch_ctx, t, rep->test_accuracy, err);
		if (st != SL_OK)
			return st;
	}
	return SL_OK;
}

/* Test image index and its FGSM adversarial at eps. */
static void make_example(struct job *job, uint32_t index, float eps)
{
	const struct sl_dataset *ds = job->test;
	struct nn_net *net = job->trainer->net;
	if (data_dim(ds) > JOB_MAX_PIXELS)
		return;
	size_t dim = data_dim(ds);
	uint32_t k = index % ds->n;
	int y, pc, pa;
	data_batch(ds, &k, 1, job->x, &y);
	nn_argmax(nn_forward(net, job->x, 1), 1, net->out_dim, &pc);
	attack_fgsm(net, job->x, &y, 1, eps, job->xa);
	nn_argmax(nn_forward(net, job->xa, 1), 1, net->out_dim, &pa);
	for (size_t i = 0; i < dim; i++) {
		job->work.orig[i] = data_to_byte(job->x[i]);
		job->work.adv[i] = data_to_byte(job->xa[i]);
	}
	job->work.have_example = true;
	job->work.example_index = index;
	job->work.example_eps = eps;
	job->work.img_c = (int)ds->c, job->work.img_h = (int)ds->h, job->work.img_w = (int)ds->w;
	job->work.label = y, job->work.pred_clean = pc, job->work.pred_adv = pa;
}

/* The controls as the worker reads them, once per pass. */
struct controls {
	bool paused, to_epoch_end;
	int pace, steps_left, epochs;
	long net_asked;
	float eps;
	uint32_t example;
	double lr;
	long caps_asked;
	struct caps_spec caps;
};

static struct controls read_controls(struct job *job)
{
	pthread_mutex_lock(&job->lock);
	struct controls c = {
		.paused = job->paused, .to_epoch_end = job->to_epoch_end, .pace = job->pace,
		.steps_left = job->steps_left, .epochs = job->epochs, .eps = job->eps,
		.example = job->example, .lr = job->lr, .net_asked = job->net_asked,
		.caps_asked = job->caps_asked, .caps = job->caps,
	};
	pthread_mutex_unlock(&job->lock);
	return c;
}

/* Apply what changed and needs no training step; returns whether the
 * published state should change. */
static bool apply_controls(struct job *job, const struct controls *c, struct sl_error *err,
			   sl_status *st)
{
	struct trainer *t = job->trainer;
	bool changed = false;
	if (c->lr != t->opt->cfg.lr) {
		t->cfg.optim.lr = c->lr;
		t->opt->cfg.lr = c->lr;
		optim_set_epoch(t->opt, t->epoch);
		job->work.lr = t->opt->lr;
		changed = true;
	}
	if (c->epochs != t->cfg.epochs) {
		t->cfg.epochs = c->epochs;
		job->work.epochs = c->epochs;
		changed = true;
	}
	/* New caps, between steps but not while an epoch's end measures the
	 * layers against the caps they had. */
	if (c->caps_asked != job->caps_applied && !trainer_ending(t)) {
		job->caps_applied = c->caps_asked;
		if ((*st = trainer_set_caps(t, &c->caps, err)) != SL_OK)
			return true;
		job->work.rho_certified = t->caps.certified;
		snprintf(job->work.caps_note, sizeof job->work.caps_note, "%s", t->caps.note);
		record_layers(job);
		changed = true;
	}
	job->work.eps = c->eps;
	if (job->test && (!job->work.have_example || c->example != job->work.example_index ||
			  c->eps != job->work.example_eps)) {
		make_example(job, c->example, c->eps);
		changed = true;
	}
	/* The figures follow eps at once, also when paused or done. */
	if ((job->work.have_attack || job->attacks.active) &&
	    c->eps != (job->attacks.active ? job->attacks.eps : job->work.attack_eps))
		attacks_begin(job, c->eps, false);
	return changed;
}

/* Publish a copy of the network when one was asked for since the last.
 * A failure (no memory for the copy) fails the job: the caller waiting
 * for it learns why from the snapshot. */
static sl_status serve_net(struct job *job, long asked, struct sl_error *err)
{
	if (asked <= job->net_served) /* read by the worker alone, written under lock */
		return SL_OK;
	sl_status st = SL_OK;
	struct nn_net *net = job->trainer->net;
	/* pub has the network's layers: built on the first request, and again
	 * after a restart on another network (job_restart). */
	struct arch a;
	char want[ARCH_TEXT], have[ARCH_TEXT] = "";
	arch_of_net(net, &a);
	arch_format(&a, want, sizeof want);
	if (job->pub) {
		struct arch b;
		arch_of_net(job->pub, &b);
		arch_format(&b, have, sizeof have);
	}
	if (strcmp(want, have) != 0) {
		struct nn_net *pub, *old;
		if ((st = arch_build_threads(&a, 1, 1, &pub, err)) != SL_OK)
			return st;
		pthread_mutex_lock(&job->lock);
		old = job->pub;
		job->pub = pub;
		pthread_mutex_unlock(&job->lock);
		nn_free(old);
	}
	pthread_mutex_lock(&job->lock);
	st = nn_copy_weights(job->pub, net, err);
	if (st == SL_OK) {
		job->net_served = asked;
		job->pub_step = job->trainer->step;
	}
	pthread_mutex_unlock(&job->lock);
	return st;
}

static void sleep_until(struct job *job, double slot)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	double when = (double)ts.tv_sec + ts.tv_nsec * 1e-9 + slot;
	ts.tv_sec = (time_t)when;
	ts.tv_nsec = (long)((when - floor(when)) * 1e9);
	pthread_mutex_lock(&job->lock);
	if (!atomic_load(&job->cancel))
		pthread_cond_timedwait(&job->wake, &job->lock, &ts);
	pthread_mutex_unlock(&job->lock);
}

static void fail(struct job *job, const struct sl_error *err)
{
	job->work.state = JOB_FAILED;
	snprintf(job->work.message, sizeof job->work.message, "%s", err->msg);
	publish(job);
}


/* The published state of a new run of trainer t under cfg: every figure
 * from nothing (the ghost and the run count are the caller's). */
static void begin_run(struct job *job, const struct job_config *cfg, float eps, uint32_t example)
{
	struct trainer *t = job->trainer;
	struct job_snapshot *w = &job->work;
	struct job_ghost ghost = w->ghost;
	int run = w->run;
	memset(w, 0, sizeof *w);
	w->ghost = ghost;
	w->run = run;
	memset(&job->attacks, 0, sizeof job->attacks);
	const struct driver_config dc = {.test = job->test, .test_n = cfg->eval_n,
					 .on_epoch = epoch_report, .ctx = job};
	driver_init(&job->driver, t, &dc);
	w->state = JOB_STARTING;
	w->epochs = cfg->train.epochs;
	w->steps_per_epoch = trainer_steps_per_epoch(t);
	w->seed = cfg->train.seed;
	w->mode = cfg->train.mode;
	w->lr = t->opt->lr;
	w->rho_certified = cfg->train.mode == TRAIN_SPNORM && t->caps.certified;
	if (cfg->train.mode == TRAIN_SPNORM)
		snprintf(w->caps_note, sizeof w->caps_note, "%s", t->caps.note);
	else
		snprintf(w->caps_note, sizeof w->caps_note, "no caps (%s)",
			 train_mode_name(cfg->train.mode));
	w->nlayers = t->nweighted;
	for (int j = 0; j < t->nweighted; j++)
		snprintf(w->layer_name[j], sizeof w->layer_name[j], "%s",
			 t->net->layers[t->weighted[j]].name);
	w->eps = eps;
	w->cert_radius = cfg->cert_radius;
	record_layers(job);
	if (job->test)
		make_example(job, example, eps);
}

/* The curves of the run that ends, kept beside the next one. */
static void keep_ghost(struct job *job)
{
	const struct job_snapshot *w = &job->work;
	struct job_ghost *g = &job->work.ghost;
	g->have = true;
	g->run = w->run;
	g->steps_per_epoch = w->steps_per_epoch;
	g->step = w->step;
	g->loss_plain = loss_is_plain(&job->cfg.train.loss);
	snprintf(g->caps_note, sizeof g->caps_note, "%s", w->caps_note);
	g->loss = w->loss;
	g->train_acc = w->train_acc;
	g->test_acc = w->test_acc;
	g->test_loss = w->test_loss;
	g->certified = w->certified;
}

/* The restart asked for, on the worker: the new run's trainer is built
 * here, off the thread that draws; if it cannot be, the run goes on and
 * the snapshot says why. */
static void restart_run(struct job *job)
{
	pthread_mutex_lock(&job->lock);
	struct job_config cfg = job->next;
	const struct sl_dataset *train = job->next_train;
	const struct sl_dataset *test = job->next_test && job->next_test->n > 0 ? job->next_test : NULL;
	float eps = job->eps;
	uint32_t example = job->example;
	job->restart = false;
	job->caps_applied = job->caps_at_restart; /* the old run's caps: dropped */
	pthread_mutex_unlock(&job->lock);
	struct sl_error err;
	status_clear(&err);
	struct trainer *t;
	if (trainer_new(&cfg.train, train, test, &t, &err) != SL_OK) {
		snprintf(job->work.restart_error, sizeof job->work.restart_error, "%s", err.msg);
		publish(job);
		return;
	}
	keep_ghost(job);
	trainer_free(job->trainer);
	job->trainer = t;
	job->cfg = cfg;
	job->train = train;
	job->test = test;
	job->work.run++;
	begin_run(job, &cfg, eps, example);
	publish(job);
}

static void *worker(void *arg)
{
	struct job *job = arg;
	/* Training yields to the thread that draws, so keys are answered at
	 * once even while every core trains. */
	task_lower_priority();
	struct trainer *t = job->trainer;
	struct sl_error err;
	status_clear(&err);
	double train_time = 0, last_publish = 0, window_start = now_seconds();
	long window_images = 0;

	job->work.state = JOB_RUNNING;
	publish(job);
	while (!atomic_load(&job->cancel)) {
		pthread_mutex_lock(&job->lock);
		bool restart = job->restart;
		pthread_mutex_unlock(&job->lock);
		if (restart) {
			restart_run(job);
			t = job->trainer;
			train_time = 0;
			last_publish = 0;
			window_start = now_seconds();
			window_images = 0;
			continue;
		}
		struct controls c = read_controls(job);
		sl_status st = SL_OK;
		if ((st = serve_net(job, c.net_asked, &err)) != SL_OK) {
			fail(job, &err);
			break;
		}
		if (apply_controls(job, &c, &err, &st)) {
			if (st != SL_OK) {
				fail(job, &err);
				break;
			}
			publish(job);
		}
		if (job->attacks.active) { /* the figures first, a piece at a time */
			if ((st = attacks_step(job, &err)) != SL_OK) {
				fail(job, &err);
				break;
			}
			if (!job->attacks.active)
				publish(job);
			continue;
		}
		bool done = driver_finished(&job->driver);
		bool stepping = c.steps_left > 0 || c.to_epoch_end;
		if (done || (c.paused && !stepping)) {
			enum job_state s = done ? JOB_DONE : JOB_PAUSED;
			if (job->work.state != s) {
				job->work.state = s;
				job->work.images_per_sec = 0;
				publish(job);
			}
			pthread_mutex_lock(&job->lock);
			if (done && job->to_epoch_end)
				job->to_epoch_end = false, job->steps_left = 0;
			/* Sleep until a control changes. */
			if (!atomic_load(&job->cancel) && !job->restart && job->paused == c.paused &&
			    job->eps == c.eps && job->example == c.example && job->lr == c.lr &&
			    job->epochs == c.epochs && job->steps_left == c.steps_left &&
			    job->to_epoch_end == c.to_epoch_end && job->net_asked == c.net_asked &&
			    job->caps_asked == c.caps_asked)
				pthread_cond_wait(&job->wake, &job->lock);
			pthread_mutex_unlock(&job->lock);
			window_start = now_seconds();
			window_images = 0;
			continue;
		}
		job->work.state = c.paused ? JOB_PAUSED : JOB_RUNNING;

		double t0 = now_seconds();
		struct driver_step_info info;
		job->work_eps = c.eps;
		st = driver_step(&job->driver, &info, &err);
		double t1 = now_seconds();
		train_time += t1 - t0;
		if (st != SL_OK) {
			fail(job, &err);
			break;
		}
		if (c.paused) { /* a step asked for while paused (of this run) */
			pthread_mutex_lock(&job->lock);
			/* Once a restart is asked for, the steps asked for since
			 * belong to the next run. */
			if (!job->restart && job->steps_left > 0 && info.batch)
				job->steps_left--;
			if (!job->restart && info.epoch_done)
				job->to_epoch_end = false;
			pthread_mutex_unlock(&job->lock);
		}
		if (info.batch) {
			window_images += t->cfg.batch;
			job_series_push(&job->work.loss, (float)info.loss);
			job_series_push(&job->work.train_acc, (float)info.accuracy);
			record_layers(job);
			for (int j = 0; j < t->nweighted; j++)
				job_series_push(&job->work.sigma_hist[j], job->work.sigma_used[j]);
		}
		job->work.epoch = t->epoch;
		job->work.step = t->step;
		job->work.seconds = train_time;
		job->work.lr = t->opt->lr;
		if (t1 - window_start >= 1.0) {
			job->work.images_per_sec = window_images / (t1 - window_start);
			window_start = t1;
			window_images = 0;
		}
		bool due = info.epoch_done || c.paused || t1 - last_publish > 0.04;
		if (info.epoch_done)
			record_layers(job);
		if (info.epoch_done && job->test)
			make_example(job, c.example, c.eps);
		if (due) {
			publish(job);
			last_publish = t1;
		}
		if (c.pace > 0 && !c.paused && info.batch) {
			/* Sleep the rest of this batch's time slot, waking on a control
			 * (the epoch's end is not paced). */
			double slot = 1.0 / c.pace - (now_seconds() - t0);
			if (slot > 0)
				sleep_until(job, slot);
		}
	}
	pthread_mutex_lock(&job->lock);
	job->exited = true;
	pthread_mutex_unlock(&job->lock);
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
	job->train = train;
	job->test = test && test->n > 0 ? test : NULL;
	job->pace = cfg->steps_per_sec;
	job->eps = cfg->eps;
	job->paused = cfg->paused;
	job->example = cfg->example;
	job->lr = cfg->train.optim.lr;
	job->epochs = cfg->train.epochs;
	atomic_init(&job->cancel, false);
	/* Room for the largest image shown, whatever data a restart brings. */
	job->x = malloc(sizeof(float) * JOB_MAX_PIXELS);
	job->xa = malloc(sizeof(float) * JOB_MAX_PIXELS);
	if (!job->x || !job->xa) {
		free(job->x);
		free(job->xa);
		free(job);
		return status_set(err, SL_ERR_NOMEM, "job");
	}
	sl_status st = trainer_new(&cfg->train, train, test, &job->trainer, err);
	if (st != SL_OK) {
		free(job->x);
		free(job->xa);
		free(job);
		return st;
	}
	begin_run(job, cfg, cfg->eps, cfg->example);
	job->snap = job->work;
	pthread_mutex_init(&job->lock, NULL);
	pthread_cond_init(&job->wake, NULL);
	if (pthread_create(&job->thread, NULL, worker, job) != 0) {
		pthread_mutex_destroy(&job->lock);
		pthread_cond_destroy(&job->wake);
		trainer_free(job->trainer);
		free(job->x);
		free(job->xa);
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
	JOB_CONTROL(job, job->paused = paused; job->steps_left = 0; job->to_epoch_end = false);
}

void job_set_pace(struct job *job, int steps_per_sec)
{
	JOB_CONTROL(job, job->pace = steps_per_sec);
}

void job_set_eps(struct job *job, float eps)
{
	JOB_CONTROL(job, job->eps = eps);
}

void job_set_example(struct job *job, uint32_t index)
{
	JOB_CONTROL(job, job->example = index);
}

void job_step(struct job *job, int batches)
{
	JOB_CONTROL(job, job->steps_left += batches);
}

void job_step_epoch(struct job *job)
{
	JOB_CONTROL(job, job->to_epoch_end = true);
}

void job_set_lr(struct job *job, double lr)
{
	JOB_CONTROL(job, job->lr = lr);
}

void job_set_epochs(struct job *job, int epochs)
{
	JOB_CONTROL(job, job->epochs = epochs);
}

void job_restart(struct job *job, const struct job_config *cfg, const struct sl_dataset *train,
		 const struct sl_dataset *test)
{
	JOB_CONTROL(job, job->next = *cfg; job->next_train = train; job->next_test = test;
		    job->restart = true; job->lr = cfg->train.optim.lr;
		    job->epochs = cfg->train.epochs; job->steps_left = 0;
		    job->to_epoch_end = false; job->caps_at_restart = job->caps_asked);
}

void job_set_caps(struct job *job, const struct caps_spec *spec)
{
	JOB_CONTROL(job, job->caps = *spec; job->caps_asked++);
}

long job_request_net(struct job *job)
{
	long ticket;
	JOB_CONTROL(job, ticket = ++job->net_asked);
	return ticket;
}

sl_status job_copy_net(struct job *job, long ticket, struct nn_net *dst, bool *ready,
		       long *step, struct sl_error *err)
{
	sl_status st = SL_OK;
	*ready = false;
	pthread_mutex_lock(&job->lock);
	if (job->exited) {
		/* Nobody writes the network any more. */
		st = nn_copy_weights(dst, job->trainer->net, err);
		*ready = st == SL_OK;
		if (step)
			*step = job->trainer->step;
	} else if (job->pub && job->net_served >= ticket) {
		st = nn_copy_weights(dst, job->pub, err);
		*ready = st == SL_OK;
		if (step)
			*step = job->pub_step;
	} else if (ticket > job->net_asked) {
		/* a ticket of the run this one replaced: ask this one */
		job->net_asked = ticket;
		pthread_cond_signal(&job->wake);
	}
	pthread_mutex_unlock(&job->lock);
	return st;
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
	nn_free(job->pub);
	free(job->x);
	free(job->xa);
	free(job);
}
