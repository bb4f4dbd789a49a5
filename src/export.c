/* export: adversarial examples as PNG files and back (see export.h). */
#include "sectorlab/export.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sectorlab/canvas.h"
#include "sectorlab/image.h"

int export_stem(char *buf, size_t cap, const struct export_example *e,
		const struct attack_recipe *r)
{
	char eps[32];
	attack_format_float(r->eps, eps, sizeof eps);
	return snprintf(buf, cap, "%05d_true%d_pred%d_adv%d_%s_l%s_eps%s", e->index, e->label,
			e->pred_clean, e->pred_adv, attack_kind_name(r->kind),
			attack_norm_name(r->norm), eps);
}

/* The text chunks every example PNG carries. */
static sl_status write_with_recipe(const char *path, const struct image *img,
				   const struct export_example *e, const struct attack_recipe *r,
				   const char *what, double amplification, struct sl_error *err)
{
	char describe[512], recipe[768], comment[1280], amp[64] = "";
	attack_recipe_describe(r, true, describe, sizeof describe);
	attack_recipe_json(r, true, recipe, sizeof recipe);
	if (amplification > 0)
		snprintf(amp, sizeof amp, ",\"amplification\":%.9g", amplification);
	snprintf(comment, sizeof comment,
		 "{\"image\":\"%s\",\"index\":%d,\"label\":%d,\"pred_clean\":%d,\"pred_adv\":%d%s,"
		 "\"pixel_scale\":\"x/255-0.5\",%s}",
		 what, e->index, e->label, e->pred_clean, e->pred_adv, amp, recipe);
	struct image_text text[] = {
		{"Software", "sectorlab"},
		{"Description", describe},
		{"Comment", comment},
	};
	return image_write_png(path, img, text, 3, err);
}

double export_perturbation(const float *x0, const float *adv, size_t dim, float *pert)
{
	/* -m..m onto the full byte range */
	double m = 0;
	for (size_t k = 0; k < dim; k++) {
		double d = fabs((double)adv[k] - x0[k]);
		m = d > m ? d : m;
	}
	for (size_t k = 0; k < dim; k++)
		pert[k] = m > 0 ? (float)(0.5 * ((double)adv[k] - x0[k]) / m) : 0.0f;
	return m;
}

sl_status export_example_pngs(const char *dir, const struct export_shape *shape,
			      const struct export_example *e, const struct attack_recipe *r,
			      char *adv_path, size_t cap, struct sl_error *err)
{
	int c = shape->c, h = shape->h, w = shape->w;
	size_t dim = (size_t)c * h * w;
	char stem[256], path[4096];
	export_stem(stem, sizeof stem, e, r);
	float *pert = malloc(sizeof(float) * dim);
	if (!pert)
		return status_set(err, SL_ERR_NOMEM, "export: %zu values", dim);
	double m = export_perturbation(e->x0, e->adv, dim, pert);
	const struct {
		const char *suffix, *what;
		const float *x;
	} files[] = {
		{"orig", "original", e->x0},
		{"adv", "adversarial", e->adv},
		{"pert", "perturbation", pert},
	};
	sl_status st = SL_OK;
	for (int i = 0; i < 3 && st == SL_OK; i++) {
		struct image img;
		if (snprintf(path, sizeof path, "%s/%s_%s.png", dir, stem, files[i].suffix) >=
		    (int)sizeof path) {
			st = status_set(err, SL_ERR_ARG, "%s: path too long", dir);
			break;
		}
		st = image_from_scaled(files[i].x, c, h, w, &img, err);
		if (st != SL_OK)
			break;
		st = write_with_recipe(path, &img, e, r, files[i].what, i == 2 && m > 0 ? 0.5 / m : 0,
				       err);
		image_free(&img);
		if (st == SL_OK && i == 1 && adv_path)
			snprintf(adv_path, cap, "%s", path);
	}
	free(pert);
	return st;
}

static const struct canvas_color white = {255, 255, 255}, black = {0, 0, 0},
				 red = {200, 30, 30}, green = {0, 120, 60}, gray = {90, 90, 90};

sl_status export_grid_png(const char *path, const struct export_shape *shape,
			  const struct export_example *e, int n, int per_row, const char *title,
			  const struct attack_recipe *r, struct sl_error *err)
{
	if (n < 1)
		return status_set(err, SL_ERR_ARG, "%s: no examples for the grid", path);
	if (per_row < 1)
		per_row = 10;
	int cols = n < per_row ? n : per_row, pairs = (n + cols - 1) / cols;
	int zoom = shape->w * 3 <= 96 ? 3 : 2;
	int cw = shape->w * zoom, chh = shape->h * zoom;
	int cell_w = cw > 96 ? cw + 12 : 108;       /* room for "true 7 pred 7" */
	int label_h = 2 * 10 + 6;                   /* two lines of small text */
	int row_h = chh + label_h;
	int left = 28, W = left + cols * cell_w + 8;
	int title_w = title ? canvas_text_width(title, 2) + 16 : 0;
	W = W < title_w ? title_w : W;
	W = W < 360 ? 360 : W;
	/* The recipe in up to three lines of small text under the title. */
	char describe[512], lines[3][512];
	attack_recipe_describe(r, true, describe, sizeof describe);
	int per_line = (W - 16) / CANVAS_GLYPH_W, nlines = 0;
	for (const char *p = describe; *p && nlines < 3; nlines++) {
		size_t len = strlen(p), take = len <= (size_t)per_line ? len : (size_t)per_line;
		if (take < len) {
			/* break after a comma if one is near, else at a space */
			size_t brk = take;
			while (brk > take / 2 && !(p[brk] == ' ' && p[brk - 1] == ','))
				brk--;
			if (brk == take / 2)
				for (brk = take; brk > 0 && p[brk] != ' ';)
					brk--;
			take = brk ? brk : take;
		}
		memcpy(lines[nlines], p, take);
		lines[nlines][take] = '\0';
		p += take;
		while (*p == ' ')
			p++;
	}
	int top = 12 + 20 + nlines * 11 + 10;
	int H = top + pairs * (2 * row_h + 16) + 4;
	struct image img;
	sl_status st = image_new(&img, W, H, 3, err);
	if (st != SL_OK)
		return st;
	canvas_fill(&img, white);
	if (title)
		canvas_text(&img, 8, 12, 2, black, title);
	for (int line = 0; line < nlines; line++)
		canvas_text(&img, 8, 12 + 20 + line * 11, 1, gray, lines[line]);
	for (int i = 0; i < n && st == SL_OK; i++) {
		int col = i % cols, pair = i / cols;
		int x = left + col * cell_w + (cell_w - cw) / 2;
		int y = top + pair * (2 * row_h + 16);
		if (col == 0) {
			canvas_text_up(&img, 6, y + chh, 1, gray, "original");
			canvas_text_up(&img, 6, y + row_h + chh, 1, gray, "adversarial");
		}
		struct image a, b;
		st = image_from_scaled(e[i].x0, shape->c, shape->h, shape->w, &a, err);
		if (st != SL_OK)
			break;
		st = image_from_scaled(e[i].adv, shape->c, shape->h, shape->w, &b, err);
		if (st != SL_OK) {
			image_free(&a);
			break;
		}
		canvas_blit(&img, &a, x, y, zoom);
		canvas_blit(&img, &b, x, y + row_h, zoom);
		image_free(&a);
		image_free(&b);
		char text[64];
		snprintf(text, sizeof text, "#%d true %d", e[i].index, e[i].label);
		canvas_text(&img, x, y + chh + 4, 1, black, text);
		snprintf(text, sizeof text, "pred %d", e[i].pred_clean);
		canvas_text(&img, x, y + chh + 4 + 10, 1,
			    e[i].pred_clean == e[i].label ? green : red, text);
		/* "fooled" only where the attack changed a right answer */
		bool right = e[i].pred_clean == e[i].label, fooled = right && e[i].pred_adv != e[i].label;
		snprintf(text, sizeof text, "adv %d%s", e[i].pred_adv,
			 fooled ? " fooled" : (right ? "" : " (was wrong)"));
		canvas_text(&img, x, y + row_h + chh + 4, 1,
			    fooled ? red : (e[i].pred_adv == e[i].label ? green : gray), text);
	}
	if (st == SL_OK) {
		char recipe[768], comment[896];
		attack_recipe_json(r, true, recipe, sizeof recipe);
		snprintf(comment, sizeof comment, "{\"image\":\"grid\",\"examples\":%d,%s}", n, recipe);
		struct image_text text[] = {
			{"Software", "sectorlab"},
			{"Description", describe},
			{"Comment", comment},
		};
		st = image_write_png(path, &img, text, 3, err);
	}
	image_free(&img);
	return st;
}

sl_status export_reclassify(struct nn_net *net, const struct export_shape *shape,
			    const char *const *paths, int n, int *pred, struct sl_error *err)
{
	size_t dim = (size_t)shape->c * shape->h * shape->w;
	if ((int)dim != net->in_dim)
		return status_set(err, SL_ERR_ARG, "reclassify: images of %zu values, network takes %d",
				  dim, net->in_dim);
	int cap = net->max_batch;
	float *x = malloc(sizeof(float) * (size_t)cap * dim);
	if (!x)
		return status_set(err, SL_ERR_NOMEM, "reclassify: batch");
	sl_status st = SL_OK;
	for (int start = 0; start < n && st == SL_OK; start += cap) {
		int b = n - start < cap ? n - start : cap;
		for (int i = 0; i < b; i++) {
			struct image img;
			st = image_read_png(paths[start + i], &img, NULL, NULL, 0, err);
			if (st != SL_OK)
				break;
			if (img.channels != shape->c || img.h != shape->h || img.w != shape->w) {
				st = status_set(err, SL_ERR_FORMAT,
						"%s: %d x %d with %d channels, expected %d x %d with %d",
						paths[start + i], img.w, img.h, img.channels, shape->w,
						shape->h, shape->c);
				image_free(&img);
				break;
			}
			image_to_scaled(&img, x + (size_t)i * dim);
			image_free(&img);
		}
		if (st == SL_OK)
			nn_argmax(nn_forward(net, x, b), b, net->out_dim, pred + start);
	}
	free(x);
	return st;
}

sl_status export_attack_set(const char *dir, struct nn_net *net, const struct export_shape *shape,
			    const struct export_example *e, int n, const struct attack_recipe *r,
			    export_check_fn check, void *check_ctx, struct export_summary *out,
			    struct sl_error *err)
{
	memset(out, 0, sizeof *out);
	if (n < 1)
		return status_set(err, SL_ERR_ARG, "%s: no examples to export", dir);
	char(*paths)[4096] = malloc(sizeof *paths * (size_t)n);
	const char **list = malloc(sizeof *list * (size_t)n);
	int *pred = malloc(sizeof(int) * (size_t)n);
	sl_status st = SL_OK;
	if (!paths || !list || !pred) {
		st = status_set(err, SL_ERR_NOMEM, "PNG export of %d examples", n);
		goto out;
	}
	for (int i = 0; i < n && st == SL_OK; i++) {
		if (check && (st = check(check_ctx, err)) != SL_OK) /* between files only */
			break;
		st = export_example_pngs(dir, shape, &e[i], r, paths[i], sizeof paths[i], err);
		list[i] = paths[i];
		out->files += st == SL_OK;
	}
	if (st != SL_OK)
		goto out;
	char eps[32], title[128];
	attack_format_float(r->eps, eps, sizeof eps);
	if (snprintf(out->grid, sizeof out->grid, "%s/grid_%s_l%s_eps%s.png", dir,
		     attack_kind_name(r->kind), attack_norm_name(r->norm), eps) >=
	    (int)sizeof out->grid) {
		st = status_set(err, SL_ERR_ARG, "%s: path too long", dir);
		goto out;
	}
	snprintf(title, sizeof title, "%s L%s, eps %s: originals above, adversarials below",
		 r->kind == ATTACK_FGSM ? "FGSM" : r->kind == ATTACK_FGM ? "FGM" : "PGD",
		 r->norm == ATTACK_NORM_INF ? "-inf" : "2", eps);
	if (check && (st = check(check_ctx, err)) != SL_OK)
		goto out;
	st = export_grid_png(out->grid, shape, e, n, 10, title, r, err);
	if (st != SL_OK)
		goto out;
	/* The files, not the floats: how many adversarials survive as bytes? */
	st = export_reclassify(net, shape, list, n, pred, err);
	if (st != SL_OK)
		goto out;
	for (int i = 0; i < n; i++) {
		bool fooled = e[i].pred_clean == e[i].label && e[i].pred_adv != e[i].label;
		out->fooled += fooled;
		out->still_fooled += fooled && pred[i] != e[i].label;
	}
out:
	free(paths);
	free(list);
	free(pred);
	return st;
}
