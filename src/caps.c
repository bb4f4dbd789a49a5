/* caps: a run's caps, described once, previewed and resolved (see caps.h). */
#include "sectorlab/caps.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sectorlab/certify.h"

struct caps_spec caps_spec_certified(double nu, double delta, enum sector_objective objective)
{
	struct caps_spec s = {.source = CAPS_CERTIFIED, .nu = nu, .delta = delta,
			      .objective = objective};
	return s;
}

struct caps_spec caps_spec_paper(void)
{
	return caps_spec_certified(CAPS_PAPER_NU, CAPS_PAPER_DELTA, SECTOR_OBJ_PRODUCT);
}

struct caps_spec caps_spec_manual(const double *rho, int n)
{
	struct caps_spec s = caps_spec_paper();
	s.source = CAPS_MANUAL;
	s.nrho = n < 0 ? 0 : n > NN_MAX_LAYERS ? NN_MAX_LAYERS : n;
	for (int i = 0; i < s.nrho; i++)
		s.rho[i] = rho[i];
	return s;
}

static const char *const source_names[] = {
	[CAPS_CERTIFIED] = "certified",
	[CAPS_AUTHORS] = "authors",
	[CAPS_MANUAL] = "manual",
};

const char *caps_source_name(enum caps_source source)
{
	return (unsigned)source < sizeof source_names / sizeof source_names[0]
		       ? source_names[source]
		       : "?";
}

sl_status caps_source_parse(const char *name, enum caps_source *out, struct sl_error *err)
{
	for (unsigned i = 0; name && i < sizeof source_names / sizeof source_names[0]; i++)
		if (strcmp(name, source_names[i]) == 0) {
			*out = (enum caps_source)i;
			return SL_OK;
		}
	return status_set(err, SL_ERR_ARG, "unknown caps source '%s' (known: certified, "
					   "authors, manual)", name ? name : "(null)");
}

sl_status caps_objective_parse(const char *name, enum sector_objective *out,
			       struct sl_error *err)
{
	if (name && strcmp(name, "product") == 0)
		*out = SECTOR_OBJ_PRODUCT;
	else if (name && strcmp(name, "min") == 0)
		*out = SECTOR_OBJ_MIN;
	else
		return status_set(err, SL_ERR_ARG, "objective takes product or min, got '%s'",
				  name ? name : "(null)");
	return SL_OK;
}

/* out is infeasible for status with a message. */
__attribute__((format(printf, 3, 4))) static void refuse(struct caps_plan *out, sl_status st,
							 const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(out->why, sizeof out->why, fmt, ap);
	va_end(ap);
	out->feasible = false;
	out->status = st;
	out->nrho = 0;
}

/* Theorem 3's allocation at the spec's indices, each weighted layer's
 * Theorem 4 bound, and the caps CERTIFY_CAP_MARGIN below them. */
static sl_status preview_certified(const struct arch *arch, struct caps_plan *out,
				   struct sl_error *err)
{
	const struct caps_spec *s = &out->spec;
	struct sector_layer layers[SECTOR_MAX_LAYERS];
	struct sl_error lerr;
	status_clear(&lerr);
	int n = certify_arch_layers(arch, layers, SECTOR_MAX_LAYERS, &lerr);
	if (n < 0)
		return status_set(err, lerr.code, "%s", lerr.msg);
	struct sl_error aerr;
	status_clear(&aerr);
	sl_status st = sector_allocate(s->nu, s->delta, layers, n, s->objective, &out->alloc,
				       &aerr);
	if (st != SL_OK) {
		refuse(out, st, "no certified caps for (nu, delta) = (%g, %g): %s", s->nu,
		       s->delta, aerr.msg);
		return SL_OK;
	}
	out->nrho = 0;
	for (int i = 0; i < n; i++) {
		if (!out->alloc.layer[i].has_rho)
			continue;
		out->bound[out->nrho] = out->alloc.layer[i].rho;
		out->rho[out->nrho++] = out->alloc.layer[i].rho * (1 - CERTIFY_CAP_MARGIN);
	}
	out->certified = true;
	snprintf(out->what, sizeof out->what,
		 "allocated for (nu, delta) = (%g, %g) (%s objective) by Theorems 3 and 4: "
		 "certified",
		 s->nu, s->delta, sector_objective_name(s->objective));
	snprintf(out->note, sizeof out->note, "certified: nu %g, delta %g%s", s->nu, s->delta,
		 s->objective == SECTOR_OBJ_MIN ? ", min" : "");
	return SL_OK;
}

sl_status caps_preview(const struct caps_spec *spec, const struct arch *arch, struct caps_plan *out,
		       struct sl_error *err)
{
	memset(out, 0, sizeof *out);
	out->spec = *spec;
	out->feasible = true;
	out->status = SL_OK;
	int nw = arch_weighted_count(arch);
	switch (spec->source) {
	case CAPS_CERTIFIED:
		return preview_certified(arch, out, err);
	case CAPS_AUTHORS:
		out->nrho = model_authors_caps(arch, out->rho);
		if (out->nrho == 0) {
			refuse(out, SL_ERR_ARG,
			       "the authors' code hard-codes no caps for %s; give them by hand "
			       "or by (nu, delta)",
			       arch_label(arch));
			return SL_OK;
		}
		snprintf(out->what, sizeof out->what, "the authors' hard-coded caps: not certified");
		snprintf(out->note, sizeof out->note, "NOT certified (authors' caps)");
		break;
	case CAPS_MANUAL:
		if (spec->nrho != nw) {
			refuse(out, SL_ERR_ARG,
			       "spnorm needs %d caps (one per weighted layer of %s), got %d", nw,
			       arch_label(arch), spec->nrho);
			return SL_OK;
		}
		for (int i = 0; i < nw; i++) {
			if (!(spec->rho[i] > 0) || !isfinite(spec->rho[i])) {
				refuse(out, SL_ERR_ARG, "cap %d is %g: caps must be positive", i + 1,
				       spec->rho[i]);
				return SL_OK;
			}
			out->rho[i] = spec->rho[i];
		}
		out->nrho = nw;
		snprintf(out->what, sizeof out->what, "given by hand: not certified");
		snprintf(out->note, sizeof out->note, "NOT certified (caps by hand)");
		break;
	default:
		return status_set(err, SL_ERR_ARG, "caps source %d", (int)spec->source);
	}
	/* Every cap is enforced in float: train just under it (certify.h). */
	for (int i = 0; i < out->nrho; i++) {
		out->bound[i] = out->rho[i];
		out->rho[i] = out->bound[i] * (1 - CERTIFY_CAP_MARGIN);
	}
	return SL_OK;
}

sl_status caps_resolve(const struct caps_spec *spec, const struct arch *arch, struct caps_plan *out,
		       struct sl_error *err)
{
	sl_status st = caps_preview(spec, arch, out, err);
	if (st != SL_OK)
		return st;
	if (!out->feasible)
		return status_set(err, out->status, "%s", out->why);
	return SL_OK;
}

int caps_map_row(const struct arch *arch, enum sector_objective objective, double delta,
		 const double *nu, int n, struct caps_cell *out, bool (*stop)(void *stop_ctx),
		 void *stop_ctx, struct sl_error *err)
{
	int k = 0;
	for (; k < n; k++) {
		double lo, hi;
		struct sl_error serr;
		out[k] = (struct caps_cell){.kind = CAPS_CELL_NO_SECTOR};
		if (sector_slopes(nu[k], delta, &lo, &hi, &serr) == SL_OK) {
			struct caps_spec spec = caps_spec_certified(nu[k], delta, objective);
			struct caps_plan plan;
			if (caps_preview(&spec, arch, &plan, err) != SL_OK)
				return -1;
			out[k].kind = plan.feasible ? CAPS_CELL_CAPS : CAPS_CELL_NONE;
			out[k].product = plan.feasible ? plan.alloc.rho_product : 0;
		}
		if (stop && stop(stop_ctx))
			return k + 1;
	}
	return k;
}

struct certify_options caps_certify_options(const struct caps_spec *spec)
{
	struct certify_options co;
	memset(&co, 0, sizeof co);
	co.nu = spec->nu;
	co.delta = spec->delta;
	co.objective = spec->objective;
	return co;
}

const char *const CAPS_META_KEYS[CAPS_META_N] = {"caps_source", "nu", "delta", "objective",
						 "rho", "caps_bound"};

/* n values as "a,b,c" into buf (cap bytes), each %.9g of its float. */
static void float_list(const double *v, int n, char *buf, size_t cap)
{
	for (int i = 0, off = 0; i < n && (size_t)off < cap; i++)
		off += snprintf(buf + off, cap - (size_t)off, "%s%.9g", i ? "," : "",
				(double)(float)v[i]);
}

void caps_meta(const struct caps_plan *plan, struct caps_meta *out)
{
	memset(out, 0, sizeof *out);
	const struct caps_spec *s = &plan->spec;
	snprintf(out->value[0], sizeof out->value[0], "%s", caps_source_name(s->source));
	if (s->source == CAPS_CERTIFIED) {
		snprintf(out->value[1], sizeof out->value[1], "%.17g", s->nu);
		snprintf(out->value[2], sizeof out->value[2], "%.17g", s->delta);
		snprintf(out->value[3], sizeof out->value[3], "%s",
			 sector_objective_name(s->objective));
	}
	/* The float each layer is capped at (nn_set_cap), in 9 digits: read
	 * back, it is that float again.  Then the bounds the caps stand for. */
	float_list(plan->rho, plan->nrho, out->value[4], sizeof out->value[4]);
	float_list(plan->bound, plan->nrho, out->value[5], sizeof out->value[5]);
}

/* A finite number from the metadata key, or def when the key is absent or
 * empty. */
static sl_status meta_number(const struct checkpoint_info *info, const char *key, double def,
			     double *out, struct sl_error *err)
{
	const char *text = checkpoint_info_get(info, key);
	*out = def;
	if (!text || !*text)
		return SL_OK;
	char *end = NULL;
	double v = strtod(text, &end);
	if (end == text || *end || !isfinite(v))
		return status_set(err, SL_ERR_FORMAT, "checkpoint metadata %s is '%s', not a number",
				  key, text);
	*out = v;
	return SL_OK;
}

sl_status caps_spec_from_info(const struct checkpoint_info *info, struct caps_spec *out,
			      struct sl_error *err)
{
	*out = caps_spec_paper();
	const char *source = checkpoint_info_get(info, "caps_source");
	const char *objective = checkpoint_info_get(info, "objective");
	sl_status st = SL_OK;
	if (source && *source && (st = caps_source_parse(source, &out->source, err)) != SL_OK)
		return st;
	if (objective && *objective &&
	    (st = caps_objective_parse(objective, &out->objective, err)) != SL_OK)
		return st;
	if ((st = meta_number(info, "nu", CAPS_PAPER_NU, &out->nu, err)) != SL_OK ||
	    (st = meta_number(info, "delta", CAPS_PAPER_DELTA, &out->delta, err)) != SL_OK)
		return st;
	if (out->source == CAPS_MANUAL) {
		/* The caps asked for; files without caps_bound hold them in rho. */
		const char *p = checkpoint_info_get(info, "caps_bound");
		if (!p || !*p)
			p = checkpoint_info_get(info, "rho");
		out->nrho = 0;
		while (p && *p && out->nrho < NN_MAX_LAYERS) {
			char *end = NULL;
			double v = strtod(p, &end);
			if (end == p || !isfinite(v))
				return status_set(err, SL_ERR_FORMAT,
						  "checkpoint metadata rho is not a list of numbers");
			out->rho[out->nrho++] = v;
			p = *end == ',' ? end + 1 : end;
			if (*end && *end != ',')
				return status_set(err, SL_ERR_FORMAT,
						  "checkpoint metadata rho is not a list of numbers");
		}
	}
	return SL_OK;
}
