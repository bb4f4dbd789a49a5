/*
 * ui_help: every key of every screen, generated from their key tables, with
 * each screen's reading guide.  A tab (5, or ? from anywhere): Up/Down/PgUp/
 * PgDn scroll, Esc or ? goes back to the screen before.
 */
#include <curses.h>
#include <stdio.h>
#include <string.h>

#include "sectorlab/ui_draw.h"
#include "sectorlab/ui_screen.h"

enum { ACT_UP, ACT_DOWN, ACT_PAGE_UP, ACT_PAGE_DOWN, ACT_CLOSE };

static const struct ui_key help_keys[] = {
	{KEY_UP, "Up", "scroll help up", ACT_UP, true},
	{KEY_DOWN, "Down", "scroll help down", ACT_DOWN, true},
	{KEY_PPAGE, "PgUp", "a page up", ACT_PAGE_UP, false},
	{KEY_NPAGE, "PgDn", "a page down", ACT_PAGE_DOWN, false},
	{27, "Esc", "back to the screen before help (? too)", ACT_CLOSE, true},
};

#define HELP_MAX_LINES 400

struct help_line {
	enum ui_role role;
	bool bold;
	char text[256];
};

struct help {
	struct ui_screen screen;
	struct ui_app *app;
	int top;                 /* first line shown */
	int width;               /* the columns the lines were wrapped to */
	int n;
	struct help_line line[HELP_MAX_LINES];
};

static struct help help;

static void add_line(struct help *h, enum ui_role role, bool bold, const char *text, int len)
{
	if (h->n < HELP_MAX_LINES) {
		h->line[h->n] = (struct help_line){.role = role, .bold = bold};
		snprintf(h->line[h->n].text, sizeof h->line[h->n].text, "%.*s", len, text);
		h->n++;
	}
}

/* text wrapped at spaces to the help's width; continuation lines start
 * under the text after `hang` columns (a key's description under itself). */
static void add(struct help *h, enum ui_role role, bool bold, const char *text, int hang)
{
	char buf[256];
	int w = h->width, len = (int)strlen(text);
	const char *p = text;
	int indent = 0;
	while (len > 0) {
		int room = w - indent > 8 ? w - indent : 8;
		int cut = len;
		if (len > room) {
			cut = room;
			while (cut > 0 && p[cut] != ' ')
				cut--;
			if (cut == 0) /* one word longer than the line */
				cut = room;
		}
		snprintf(buf, sizeof buf, "%*s%.*s", indent, "", cut, p);
		add_line(h, role, bold, buf, (int)strlen(buf));
		p += cut;
		len -= cut;
		while (len > 0 && *p == ' ')
			p++, len--;
		indent = hang;
	}
	if (text[0] == '\0')
		add_line(h, role, bold, "", 0);
}

static void add_screen(struct help *h, const struct ui_screen *s)
{
	char buf[1024];
	add(h, UI_NORMAL, true, s->title, 0);
	if (s->guide) {
		snprintf(buf, sizeof buf, "  %s", s->guide);
		add(h, UI_DIM, false, buf, 2);
	}
	for (int i = 0; i < s->nkeys; i++) {
		if (!s->keys[i].what)
			continue; /* another name for a key listed already */
		snprintf(buf, sizeof buf, "  %-10s %s", s->keys[i].name, s->keys[i].what);
		add(h, UI_NORMAL, false, buf, 13);
	}
	add(h, UI_NORMAL, false, "", 0);
}

/* Every screen's table, then the app's own keys. */
static void build(struct help *h, struct ui_app *app)
{
	const struct ui_screen *screens[8];
	int n = ui_app_screens(app, screens, 8);
	h->n = 0;
	h->width = COLS - 4; /* inside the box, a column of margin each side */
	for (int i = 0; i < n; i++)
		add_screen(h, screens[i]);
	add_screen(h, ui_app_global());
}

static int page(void)
{
	return LINES - 4 > 1 ? LINES - 4 : 1;
}

static int help_key(struct ui_app *app, void *self, int action, int ch)
{
	struct help *h = self;
	(void)ch;
	switch (action) {
	case ACT_UP: h->top--; break;
	case ACT_DOWN: h->top++; break;
	case ACT_PAGE_UP: h->top -= page(); break;
	case ACT_PAGE_DOWN: h->top += page(); break;
	default: ui_app_back(app); return UI_DIRTY;
	}
	int max = h->n - page();
	h->top = h->top > max ? max : h->top;
	h->top = h->top < 0 ? 0 : h->top;
	return 0;
}

static void help_draw(struct ui_app *app, void *self)
{
	struct help *h = self;
	if (h->width != COLS - 4) /* resized: wrap again */
		build(h, app);
	int rows = LINES - 2;
	ui_clear(1, 0, rows, COLS);
	ui_box(1, 0, rows, COLS, "help: every key (Up/Down scroll, Esc or ? back)");
	for (int r = 0; r < page() && h->top + r < h->n; r++) {
		const struct help_line *l = &h->line[h->top + r];
		ui_text(2 + r, 2, COLS - 4, l->role, l->bold, l->text);
	}
	if (h->top + page() < h->n)
		ui_textf(rows, COLS - 22, 20, UI_DIM, false, " %d more lines ", h->n - h->top - page());
}

const struct ui_screen *ui_help_screen(struct ui_app *app)
{
	if (help.app != app) {
		memset(&help, 0, sizeof help);
		help.app = app;
		help.screen = (struct ui_screen){
			.title = "Help",
			.guide = "this list, made from every screen's key table",
			.keys = help_keys,
			.nkeys = (int)(sizeof help_keys / sizeof help_keys[0]),
			.key = help_key,
			.draw = help_draw,
			.self = &help,
		};
	}
	help.top = 0;
	build(&help, app);
	return &help.screen;
}
