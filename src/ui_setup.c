/*
 * ui_setup: what the lab trains, chosen inside it: the model and dataset of
 * every lane, and the kind of the focused lane (vanilla, l2, spnorm,
 * margin, authors).  A modal screen over the race: Up/Down pick a row,
 * Left/Right change it, Enter applies, Esc or q closes (it stays open after
 * a switch, saying what trains now).
 *
 * Another dataset is read by a task (task.h) off the thread that draws
 * (CIFAR-10 takes seconds); the lanes train on meanwhile, and the lab
 * switches (lab_switch) once the data is in.  A lane's kind alone restarts
 * that lane (lab_set_lane_kind).
 */
#include <curses.h>
#include <stdio.h>
#include <string.h>

#include "sectorlab/model.h"
#include "sectorlab/task.h"
#include "sectorlab/ui_draw.h"
#include "sectorlab/ui_screen.h"

enum { ACT_CLOSE, ACT_UP, ACT_DOWN, ACT_LEFT, ACT_RIGHT, ACT_APPLY };

static const struct ui_key setup_keys[] = {
	{27, "Esc", "close (nothing changes; not while data loads)", ACT_CLOSE, true},
	{'q', "q", "close", ACT_CLOSE, false},
	{'o', "o", "close", ACT_CLOSE, false},
	{KEY_UP, "Up", "the row above (model, dataset, lane)", ACT_UP, true},
	{KEY_DOWN, "Down", "the row below", ACT_DOWN, false},
	{KEY_LEFT, "Left", "the previous choice in the row", ACT_LEFT, true},
	{KEY_RIGHT, "Right", "the next choice in the row (also Space)", ACT_RIGHT, true},
	{' ', "Space", NULL, ACT_RIGHT, false},
	{'\n', "Enter", "train what is chosen: every lane from the start on another model or "
			"dataset, or the focused lane as another kind", ACT_APPLY, true},
	{'\r', "\\r", NULL, ACT_APPLY, false},
	{KEY_ENTER, "Enter", NULL, ACT_APPLY, false},
};

enum { ROW_MODEL, ROW_DATA, ROW_LANE, NROWS };

static const enum model_id models[] = {MODEL_MLP, MODEL_ALEXNET_LITE, MODEL_ALEXNET};
#define NMODELS ((int)(sizeof models / sizeof models[0]))
static const enum data_kind datasets[] = {DATA_MNIST, DATA_FASHION, DATA_CIFAR10};
#define NDATA ((int)(sizeof datasets / sizeof datasets[0]))
#define NKINDS 5 /* lab_lane_kind: vanilla .. margin */

/* The data being read, owned by the task until it is done. */
struct load {
	enum data_kind kind;
	const char *dir;
	struct sl_dataset train, test;
};

struct setup {
	struct ui_screen screen;
	struct ui_app *app;
	int row;
	int model, data, kind;     /* the choices: indices into the lists above */
	int spec;                  /* the lanes run a layer spec, not a built-in model */
	struct task *task;         /* reading data, or NULL */
	struct load load;
	char status[600];          /* why the last Enter did nothing, or what it did */
	bool done;                 /* status says what was done */
};

static struct setup setup;

static int model_index(const struct arch *a)
{
	int id = model_of_arch(a);
	for (int i = 0; i < NMODELS; i++)
		if ((int)models[i] == id)
			return i;
	return -1;
}

static int data_index(enum data_kind kind)
{
	for (int i = 0; i < NDATA; i++)
		if (datasets[i] == kind)
			return i;
	return 0;
}

static bool colour_model(int model)
{
	return model >= 0 && models[model] != MODEL_MLP;
}

/* The choices as the lab runs now. */
static void read_lab(struct setup *s)
{
	struct lab *lab = ui_app_lab(s->app);
	const struct lab_lane_config *lc = lab_lane(lab, ui_race_focus(s->app));
	s->model = model_index(&lc->train.arch);
	s->spec = s->model < 0;
	s->data = data_index(lab_data_kind(lab));
	s->kind = (int)lc->kind;
}

static sl_status load_data(void *ctx, struct task *t, struct sl_error *err)
{
	struct load *l = ctx;
	task_progress(t, 0, 2, "training images");
	sl_status st = data_load(l->kind, l->dir, true, &l->train, err);
	if (st != SL_OK)
		return st;
	if (task_progress(t, 1, 2, "test images"))
		return status_set(err, SL_ERR_CANCELLED, "cancelled");
	return data_load(l->kind, l->dir, false, &l->test, err);
}

/* Another model or dataset for every lane: read the data on a task. */
static void start_switch(struct setup *s)
{
	struct sl_error err;
	memset(&s->load, 0, sizeof s->load);
	s->load.kind = datasets[s->data];
	s->load.dir = ui_app_context(s->app)->data_dir;
	if (task_start(load_data, &s->load, &s->task, &err) != SL_OK) {
		s->task = NULL;
		snprintf(s->status, sizeof s->status, "%s", err.msg);
	}
}

/* The data is in: every lane on the chosen network. */
static void finish_switch(struct setup *s)
{
	struct load *l = &s->load;
	struct lab_data d = {.data = l->kind, .train = l->train, .test = l->test};
	memset(&l->train, 0, sizeof l->train);
	memset(&l->test, 0, sizeof l->test);
	struct sl_error err;
	status_clear(&err);
	model_get(models[s->model], &d.arch);
	struct nn_shape shape = {(int)d.test.c, (int)d.test.h, (int)d.test.w};
	if (arch_fit_input(&d.arch, shape, &err) != SL_OK) {
		snprintf(s->status, sizeof s->status, "%s", err.msg);
		data_free(&d.train);
		data_free(&d.test);
		return;
	}
	d.holdout = train_default_holdout(&d.train);
	d.eval_n = lab_default_eval_n(&d.test);
	lab_title_of(d.title, sizeof d.title, model_name(models[s->model]), l->kind, &d.train,
		     d.holdout, &d.test);
	char title[sizeof d.title];
	snprintf(title, sizeof title, "%s", d.title);
	if (lab_switch(ui_app_lab(s->app), &d, &err) != SL_OK) {
		snprintf(s->status, sizeof s->status, "%s", err.msg);
		return;
	}
	snprintf(s->status, sizeof s->status, "every lane trains anew: %s (Esc closes)", title);
	s->done = true;
}

static int setup_tick(struct ui_app *app, void *self)
{
	struct setup *s = self;
	(void)app;
	if (!s->task)
		return 0;
	struct task_status ts;
	task_status(s->task, &ts);
	if (ts.state == TASK_RUNNING)
		return UI_DIRTY; /* the seconds go by */
	task_free(s->task);
	s->task = NULL;
	if (ts.state == TASK_DONE) {
		finish_switch(s);
	} else {
		data_free(&s->load.train);
		data_free(&s->load.test);
		snprintf(s->status, sizeof s->status, "%s", ts.message);
	}
	return UI_DIRTY;
}

static void step(int *v, int n, int by)
{
	*v = ((*v < 0 ? 0 : *v) + by + n) % n;
}

static int setup_key(struct ui_app *app, void *self, int action, int ch)
{
	struct setup *s = self;
	(void)ch;
	if (s->task) /* reading data: the screen waits with the user */
		return 0;
	s->status[0] = '\0';
	s->done = false;
	int by = action == ACT_LEFT ? -1 : 1;
	switch (action) {
	case ACT_CLOSE: return UI_POP;
	case ACT_UP: s->row = (s->row + NROWS - 1) % NROWS; break;
	case ACT_DOWN: s->row = (s->row + 1) % NROWS; break;
	case ACT_LEFT:
	case ACT_RIGHT:
		/* A model comes with data of its shape, and data with a model. */
		if (s->row == ROW_MODEL) {
			step(&s->model, NMODELS, by);
			s->spec = 0;
			if (colour_model(s->model) != (datasets[s->data] == DATA_CIFAR10))
				s->data = data_index(colour_model(s->model) ? DATA_CIFAR10 : DATA_MNIST);
		} else if (s->row == ROW_DATA) {
			step(&s->data, NDATA, by);
			if (!s->spec &&
			    colour_model(s->model) != (datasets[s->data] == DATA_CIFAR10))
				s->model = datasets[s->data] == DATA_CIFAR10 ? 1 : 0;
		} else {
			step(&s->kind, NKINDS, by);
		}
		break;
	case ACT_APPLY: {
		struct lab *lab = ui_app_lab(app);
		int lane = ui_race_focus(app);
		const struct lab_lane_config *lc = lab_lane(lab, lane);
		bool new_data = datasets[s->data] != lab_data_kind(lab) ||
				(!s->spec && s->model != model_index(&lc->train.arch));
		if (new_data && ui_app_context(app)->data_fixed) {
			snprintf(s->status, sizeof s->status,
				 "--out saves this network: start the lab again for another");
			break;
		}
		if (new_data && s->spec) {
			snprintf(s->status, sizeof s->status,
				 "the lanes run a layer spec (--arch): choose a model for other data");
			break;
		}
		struct sl_error err;
		if ((int)lc->kind != s->kind &&
		    lab_set_lane_kind(lab, lane, (enum lab_lane_kind)s->kind, &err) != SL_OK) {
			snprintf(s->status, sizeof s->status, "%s", err.msg);
			break;
		}
		if (new_data) {
			start_switch(s);
			break;
		}
		ui_app_say(app, "lane %d trains anew as %s", lane + 1,
			   lab_lane_kind_name((enum lab_lane_kind)s->kind));
		return UI_POP;
	}
	}
	return 0;
}

static void setup_draw(struct ui_app *app, void *self)
{
	struct setup *s = self;
	int lane = ui_race_focus(app);
	int h = 13, w = COLS < 74 ? COLS : 74;
	int y = (LINES - h) / 2, x = (COLS - w) / 2;
	ui_clear(y, x, h, w);
	ui_box(y, x, h, w, "what the lab trains");
	char choice[NROWS][48], label[NROWS][24];
	snprintf(label[ROW_MODEL], sizeof label[0], "model");
	snprintf(label[ROW_DATA], sizeof label[0], "dataset");
	snprintf(label[ROW_LANE], sizeof label[0], "lane %d is", lane + 1);
	snprintf(choice[ROW_MODEL], sizeof choice[0], "%s",
		 s->spec ? "a layer spec (--arch)" : model_name(models[s->model]));
	snprintf(choice[ROW_DATA], sizeof choice[0], "%s", data_kind_name(datasets[s->data]));
	snprintf(choice[ROW_LANE], sizeof choice[0], "%s",
		 lab_lane_kind_name((enum lab_lane_kind)s->kind));
	static const char *const about[NROWS] = {
		"every lane, from the start",
		"read from the data directory",
		"the focused lane's kind",
	};
	for (int r = 0; r < NROWS; r++) {
		int row = y + 2 + r;
		ui_textf(row, x + 2, 12, UI_NORMAL, false, "%-11s", label[r]);
		ui_textf(row, x + 14, 28, UI_NORMAL, r == s->row, "%s %-22s %s",
			 r == s->row ? "<" : " ", choice[r], r == s->row ? ">" : " ");
		ui_text(row, x + 42, w - 44, UI_DIM, false, about[r]);
	}
	int row = y + 6;
	if (s->task) {
		struct task_status ts;
		task_status(s->task, &ts);
		ui_textf(row, x + 2, w - 4, UI_WARN, true, "reading %s: %s (%.0f s); the lanes train on",
			 data_kind_name(s->load.kind), ts.what, ts.seconds);
	} else if (s->status[0]) {
		/* What happened or why not, wrapped at spaces, three lines at most. */
		const char *m = s->status;
		for (int k = 0; k < 3 && *m; k++) {
			int n = (int)strlen(m), room = w - 4;
			if (n > room) {
				n = room;
				while (n > 0 && m[n] != ' ')
					n--;
				n = n > 0 ? n : room;
			}
			char part[160];
			snprintf(part, sizeof part, "%.*s", n, m);
			ui_text(row + k, x + 2, w - 4, s->done ? UI_OK : UI_BAD, false, part);
			m += n;
			while (*m == ' ')
				m++;
		}
	}
	ui_text(y + h - 3, x + 2, w - 4, UI_DIM, false,
		"new model or data: every lane anew (the runs before as ghosts)");
	ui_text(y + h - 2, x + 2, w - 4, UI_DIM, false,
		"Up/Down: row  Left/Right: choice  Enter: train it  Esc: close");
}

const struct ui_screen *ui_setup_screen(struct ui_app *app)
{
	if (setup.app != app) {
		memset(&setup, 0, sizeof setup);
		setup.app = app;
		setup.screen = (struct ui_screen){
			.title = "What the lab trains (o)",
			.guide = "the model and dataset every lane trains, and the focused lane's "
				 "kind; Enter trains the choice from the start",
			.keys = setup_keys,
			.nkeys = (int)(sizeof setup_keys / sizeof setup_keys[0]),
			.modal = true,
			.key = setup_key,
			.draw = setup_draw,
			.tick = setup_tick,
			.self = &setup,
		};
	}
	if (!setup.task) {
		setup.row = 0;
		setup.status[0] = '\0';
		setup.done = false;
		read_lab(&setup);
	}
	return &setup.screen;
}
