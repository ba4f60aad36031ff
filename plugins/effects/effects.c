/*
 * effects: gain and a parametric biquad EQ for mfx (AudioProcessor, C ABI in mfx_plugin.h).
 *
 * Config (JSON, validated again here because the host may be fed anything):
 *   {"gainDb": -6.0,
 *    "eq": [{"type": "peaking" | "lowshelf" | "highshelf", "freq": 1000, "q": 0.707, "gainDb": 3}]}
 *
 * Filters are the RBJ Audio EQ Cookbook biquads, run in transposed direct form II with
 * double-precision state per band and channel. Gain changes are ramped linearly across the
 * next processed block so a change never clicks. Coefficients depend on the sample rate,
 * which only process() knows: they are computed on the first block at a new rate.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mfx_plugin.h"

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

#define MAX_BANDS 16
#define MAX_CHANNELS 8
#define MAX_RATE 768000

enum band_type { BAND_PEAKING, BAND_LOWSHELF, BAND_HIGHSHELF };

struct band {
    enum band_type type;
    double freq;
    double q;
    double gain_db;
};

struct coef {
    double b0, b1, b2, a1, a2;
    int active; /* 0: bypassed (frequency at or above Nyquist) */
};

struct config {
    double gain_db;
    int nbands;
    struct band bands[MAX_BANDS];
};

struct effects {
    struct config cfg;
    float gain_current; /* gain reached at the end of the last block */
    float gain_target;
    struct coef coef[MAX_BANDS];
    double z[MAX_BANDS][MAX_CHANNELS][2];
    int coef_rate; /* rate the coefficients were computed for; 0 when stale */
    int last_rate;
    int unhealthy;
};

/* ---- a small JSON reader for the config object ---------------------------------------- */

struct reader {
    const char *s;
    const char *start;
    char *err;
    size_t err_len;
    int failed;
};

static void fail(struct reader *r, const char *fmt, const char *what) {
    if (r->failed) return;
    r->failed = 1;
    if (r->err && r->err_len) {
        char msg[160];
        snprintf(msg, sizeof msg, fmt, what);
        snprintf(r->err, r->err_len, "config (offset %ld): %s", (long)(r->s - r->start), msg);
    }
}

static void skip_ws(struct reader *r) {
    while (*r->s == ' ' || *r->s == '\t' || *r->s == '\n' || *r->s == '\r') r->s++;
}

static int expect(struct reader *r, char c) {
    skip_ws(r);
    if (*r->s != c) {
        char what[2] = {c, 0};
        fail(r, "expected '%s'", what);
        return 0;
    }
    r->s++;
    return 1;
}

/* Reads a JSON string into out (escapes other than \" \\ \/ are rejected: keys and enum
 * values here are plain ASCII words). */
static int read_string(struct reader *r, char *out, size_t out_len) {
    size_t n = 0;
    if (!expect(r, '"')) return 0;
    while (*r->s && *r->s != '"') {
        char c = *r->s++;
        if (c == '\\') {
            c = *r->s++;
            if (c != '"' && c != '\\' && c != '/') {
                fail(r, "%s", "unsupported escape in string");
                return 0;
            }
        }
        if (n + 1 >= out_len) {
            fail(r, "%s", "string too long");
            return 0;
        }
        out[n++] = c;
    }
    if (*r->s != '"') {
        fail(r, "%s", "unterminated string");
        return 0;
    }
    r->s++;
    out[n] = 0;
    return 1;
}

static int read_number(struct reader *r, double *out, const char *field) {
    char *end;
    skip_ws(r);
    if (!(*r->s == '-' || (*r->s >= '0' && *r->s <= '9'))) {
        fail(r, "%s: expected a number", field);
        return 0;
    }
    *out = strtod(r->s, &end);
    if (end == r->s || !isfinite(*out)) {
        fail(r, "%s: expected a finite number", field);
        return 0;
    }
    r->s = end;
    return 1;
}

/* Calls item(r, key, ctx) for each member of an object. */
static int read_object(struct reader *r, int (*item)(struct reader *, const char *, void *), void *ctx) {
    char key[32];
    if (!expect(r, '{')) return 0;
    skip_ws(r);
    if (*r->s == '}') {
        r->s++;
        return 1;
    }
    for (;;) {
        if (!read_string(r, key, sizeof key) || !expect(r, ':') || !item(r, key, ctx)) return 0;
        skip_ws(r);
        if (*r->s == ',') {
            r->s++;
            continue;
        }
        return expect(r, '}');
    }
}

static int in_range(struct reader *r, double v, double lo, double hi, const char *field) {
    if (v < lo || v > hi) {
        fail(r, "%s: out of range", field);
        return 0;
    }
    return 1;
}

static int band_item(struct reader *r, const char *key, void *ctx) {
    struct band *b = ctx;
    if (strcmp(key, "type") == 0) {
        char v[16];
        if (!read_string(r, v, sizeof v)) return 0;
        if (strcmp(v, "peaking") == 0) b->type = BAND_PEAKING;
        else if (strcmp(v, "lowshelf") == 0) b->type = BAND_LOWSHELF;
        else if (strcmp(v, "highshelf") == 0) b->type = BAND_HIGHSHELF;
        else {
            fail(r, "eq[].type: expected peaking, lowshelf or highshelf, got '%s'", v);
            return 0;
        }
        return 1;
    }
    if (strcmp(key, "freq") == 0)
        return read_number(r, &b->freq, "eq[].freq") && in_range(r, b->freq, 1.0, 100000.0, "eq[].freq (1..100000 Hz)");
    if (strcmp(key, "q") == 0)
        return read_number(r, &b->q, "eq[].q") && in_range(r, b->q, 0.01, 100.0, "eq[].q (0.01..100)");
    if (strcmp(key, "gainDb") == 0)
        return read_number(r, &b->gain_db, "eq[].gainDb") && in_range(r, b->gain_db, -48.0, 48.0, "eq[].gainDb (-48..48)");
    fail(r, "eq[]: unknown field '%s' (expected type, freq, q, gainDb)", key);
    return 0;
}

static int read_bands(struct reader *r, struct config *c) {
    if (!expect(r, '[')) return 0;
    skip_ws(r);
    if (*r->s == ']') {
        r->s++;
        return 1;
    }
    for (;;) {
        struct band *b;
        if (c->nbands >= MAX_BANDS) {
            fail(r, "%s", "eq: at most 16 bands");
            return 0;
        }
        b = &c->bands[c->nbands];
        b->type = (enum band_type)-1;
        b->freq = -1.0;
        b->q = 0.7071067811865476;
        b->gain_db = 0.0;
        if (!read_object(r, band_item, b)) return 0;
        if ((int)b->type == -1 || b->freq < 0) {
            fail(r, "%s", "eq[]: every band needs 'type' and 'freq'");
            return 0;
        }
        c->nbands++;
        skip_ws(r);
        if (*r->s == ',') {
            r->s++;
            continue;
        }
        return expect(r, ']');
    }
}

static int config_item(struct reader *r, const char *key, void *ctx) {
    struct config *c = ctx;
    if (strcmp(key, "gainDb") == 0)
        return read_number(r, &c->gain_db, "gainDb") && in_range(r, c->gain_db, -96.0, 24.0, "gainDb (-96..24)");
    if (strcmp(key, "eq") == 0) return read_bands(r, c);
    fail(r, "unknown field '%s' (expected gainDb, eq)", key);
    return 0;
}

static int parse_config(const char *json, struct config *c, char *err, size_t err_len) {
    struct reader r = {json ? json : "{}", json ? json : "{}", err, err_len, 0};
    memset(c, 0, sizeof *c);
    if (!read_object(&r, config_item, c)) return 0;
    skip_ws(&r);
    if (*r.s) {
        fail(&r, "%s", "trailing characters after the config object");
        return 0;
    }
    return 1;
}

/* ---- DSP ------------------------------------------------------------------------------ */

static float db_to_gain(double db) { return (float)pow(10.0, db / 20.0); }

static struct coef rbj(const struct band *b, int rate) {
    struct coef k = {1, 0, 0, 0, 0, 0};
    double A, w0, cw, alpha, sa, a0, b0, b1, b2, a1, a2;
    if (b->freq >= 0.5 * rate) return k; /* above Nyquist at this rate: bypass */
    A = pow(10.0, b->gain_db / 40.0);
    w0 = 2.0 * M_PI * b->freq / rate;
    cw = cos(w0);
    alpha = sin(w0) / (2.0 * b->q);
    sa = 2.0 * sqrt(A) * alpha;
    switch (b->type) {
    case BAND_PEAKING:
        b0 = 1 + alpha * A; b1 = -2 * cw; b2 = 1 - alpha * A;
        a0 = 1 + alpha / A; a1 = -2 * cw; a2 = 1 - alpha / A;
        break;
    case BAND_LOWSHELF:
        b0 = A * ((A + 1) - (A - 1) * cw + sa);
        b1 = 2 * A * ((A - 1) - (A + 1) * cw);
        b2 = A * ((A + 1) - (A - 1) * cw - sa);
        a0 = (A + 1) + (A - 1) * cw + sa;
        a1 = -2 * ((A - 1) + (A + 1) * cw);
        a2 = (A + 1) + (A - 1) * cw - sa;
        break;
    default: /* BAND_HIGHSHELF */
        b0 = A * ((A + 1) + (A - 1) * cw + sa);
        b1 = -2 * A * ((A - 1) + (A + 1) * cw);
        b2 = A * ((A + 1) + (A - 1) * cw - sa);
        a0 = (A + 1) - (A - 1) * cw + sa;
        a1 = 2 * ((A - 1) - (A + 1) * cw);
        a2 = (A + 1) - (A - 1) * cw - sa;
        break;
    }
    k.b0 = b0 / a0; k.b1 = b1 / a0; k.b2 = b2 / a0; k.a1 = a1 / a0; k.a2 = a2 / a0;
    k.active = 1;
    return k;
}

static void apply_config(struct effects *fx, const struct config *c) {
    int i;
    for (i = fx->cfg.nbands; i < c->nbands; i++) memset(fx->z[i], 0, sizeof fx->z[i]);
    fx->cfg = *c;
    fx->gain_target = db_to_gain(c->gain_db);
    fx->coef_rate = 0;
    fx->unhealthy = 0;
}

/* ---- the ABI -------------------------------------------------------------------------- */

MFX_EXPORT const char *mfx_plugin_info(void) {
    return "{\"name\": \"effects\", \"version\": \"1.0.0\", \"abi\": 1}";
}

MFX_EXPORT int mfx_plugin_abi_version(void) { return MFX_PLUGIN_ABI_VERSION; }

MFX_EXPORT void *mfx_plugin_init(const char *config_json, char *err, size_t err_len) {
    struct config c;
    struct effects *fx;
    if (!parse_config(config_json, &c, err, err_len)) return NULL;
    fx = calloc(1, sizeof *fx);
    if (!fx) {
        if (err && err_len) snprintf(err, err_len, "out of memory");
        return NULL;
    }
    apply_config(fx, &c);
    fx->gain_current = fx->gain_target; /* the first block starts at the configured gain */
    return fx;
}

MFX_EXPORT int mfx_plugin_configure(void *handle, const char *config_json, char *err, size_t err_len) {
    struct config c;
    if (!handle) return MFX_ERR_INVALID_ARGUMENT;
    if (!parse_config(config_json, &c, err, err_len)) return MFX_ERR_CONFIG;
    apply_config(handle, &c);
    return MFX_OK;
}

MFX_EXPORT int mfx_plugin_process(void *handle, float *frames, size_t frame_count, int channels,
                                  int sample_rate) {
    struct effects *fx = handle;
    size_t i, samples;
    int b, ch;
    if (!fx || (!frames && frame_count) || channels < 1 || sample_rate < 1 || sample_rate > MAX_RATE)
        return MFX_ERR_INVALID_ARGUMENT;
    if (channels > MAX_CHANNELS) return MFX_ERR_UNSUPPORTED;
    if (frame_count == 0) return MFX_OK;
    if (fx->coef_rate != sample_rate) {
        if (fx->last_rate && fx->last_rate != sample_rate) memset(fx->z, 0, sizeof fx->z);
        for (b = 0; b < fx->cfg.nbands; b++) fx->coef[b] = rbj(&fx->cfg.bands[b], sample_rate);
        fx->coef_rate = sample_rate;
    }
    fx->last_rate = sample_rate;

    for (b = 0; b < fx->cfg.nbands; b++) {
        const struct coef k = fx->coef[b];
        if (!k.active) continue;
        for (ch = 0; ch < channels; ch++) {
            double z1 = fx->z[b][ch][0], z2 = fx->z[b][ch][1];
            float *p = frames + ch;
            for (i = 0; i < frame_count; i++, p += channels) {
                double x = *p, y = k.b0 * x + z1;
                z1 = k.b1 * x - k.a1 * y + z2;
                z2 = k.b2 * x - k.a2 * y;
                *p = (float)y;
            }
            if (!isfinite(z1) || !isfinite(z2)) { /* blown up (or NaN input): recover */
                z1 = z2 = 0.0;
                fx->unhealthy = 1;
            }
            fx->z[b][ch][0] = z1;
            fx->z[b][ch][1] = z2;
        }
    }

    samples = frame_count * (size_t)channels;
    if (fx->gain_current == fx->gain_target) {
        const float g = fx->gain_target;
        if (g != 1.0f)
            for (i = 0; i < samples; i++) frames[i] *= g;
    } else {
        const float g0 = fx->gain_current, step = (fx->gain_target - g0) / (float)frame_count;
        for (i = 0; i < frame_count; i++) {
            const float g = (i + 1 == frame_count) ? fx->gain_target : g0 + step * (float)(i + 1);
            for (ch = 0; ch < channels; ch++) frames[i * (size_t)channels + (size_t)ch] *= g;
        }
        fx->gain_current = fx->gain_target;
    }
    return MFX_OK;
}

MFX_EXPORT int mfx_plugin_health(void *handle) {
    const struct effects *fx = handle;
    if (!fx) return MFX_ERR_INVALID_ARGUMENT;
    return fx->unhealthy ? MFX_ERR_UNHEALTHY : MFX_OK;
}

MFX_EXPORT void mfx_plugin_shutdown(void *handle) { free(handle); }
