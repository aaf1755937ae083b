/*
 * dash/pages.h: what the dashboard's pages part (pages.c) shares with its graph layout
 * (layout.c) and with the assets compiled into the binary (cmake/embed.cmake writes their
 * table into the build folder from engine/dash/assets/).
 */
#ifndef SL_DASH_PAGES_H
#define SL_DASH_PAGES_H

#include <stddef.h>
#include <stdint.h>

#include "dash/internal.h"

/* ---- assets (generated: dash_assets.c in the build folder) ---------------------------- */

typedef struct sl_dash_asset {
    const char *name; /* "app.css": served at /static/NAME */
    const char *content_type;
    const unsigned char *data; /* NUL after the last byte */
    size_t len;
    const char *hash; /* the first 12 hex digits of its SHA-256 */
} sl_dash_asset_t;

extern const sl_dash_asset_t sl__dash_assets[];
extern const size_t sl__dash_asset_count;

/* ---- a run's graph, laid out (layout.c) ----------------------------------------------- */

#define SL_DASH_GRAPH_NODES_MAX 500 /* steps drawn in a run's graph; beyond, a message */
#define SL_DASH_GANTT_MAX 300       /* steps on a run's timeline */
#define SL_DASH_STEPS_PAGE 250      /* rows of a run's steps table (?steps=OFFSET pages) */

#define SL_DASH_NODE_W 168 /* a node's box, in SVG units */
#define SL_DASH_NODE_H 34
#define SL_DASH_STR_(x) #x
#define SL_DASH_STR(x) SL_DASH_STR_(x)

typedef struct sl_dash_layout {
    size_t count;      /* the steps drawn (at most SL_DASH_GRAPH_NODES_MAX) */
    size_t *drawn;     /* count step indices, by layer then row */
    int32_t *x, *y;    /* per step of the run (unset for one not drawn): its box's corner */
    size_t *layer;     /* per step: its depth (0: needs nothing) */
    bool *shown;       /* per step: drawn */
    size_t *dep_first; /* per step + 1: its needs, resolved, are deps[dep_first[v] ..
                          dep_first[v + 1]) (step indices) */
    size_t *deps;
    size_t layers; /* layers drawn */
    int32_t width, height;
} sl_dash_layout_t;

/**
 * Lays out the steps of `run`: a step's layer is its dependency depth (one more than the
 * deepest of its `needs`, taken in the graph module's topological order; a need that names
 * no step of the run is ignored), rows inside a layer by the mean row of their needs. When
 * the run has more steps than SL_DASH_GRAPH_NODES_MAX, the first ones in layer order are
 * drawn. Any thread. Returns 0; SL_ENOMEM.
 */
int sl__dash_layout(const sl_dash_run_t *run, sl_dash_layout_t *out);
void sl__dash_layout_close(sl_dash_layout_t *l);

/* ---- writing a page (pages.c) ----------------------------------------------------------
 * A page is written into `buf` and handed to the exchange in pieces of about
 * SL_DASH_OUT_PIECE bytes; text from the database goes through sl__dash_out_h (escaped for
 * HTML text and attribute values; bytes that are not UTF-8 become U+FFFD). Loop thread. */

#define SL_DASH_OUT_PIECE (16u * 1024)

typedef struct sl_dash_out {
    sl_http_exchange_t *ex;
    sl_buf_t buf;
    bool gone; /* a write failed: the client went away (stop producing) */
} sl_dash_out_t;

void sl__dash_out_init(sl_dash_out_t *o, sl_http_exchange_t *ex);
void sl__dash_out_close(sl_dash_out_t *o);
/** Hands what is buffered to the exchange. */
void sl__dash_out_flush(sl_dash_out_t *o);
/** Bytes buffered here and queued on the socket. */
size_t sl__dash_out_pending(const sl_dash_out_t *o);
void sl__dash_out_s(sl_dash_out_t *o, const char *raw);
void sl__dash_out_f(sl_dash_out_t *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** `text` escaped (&, <, >, ", '); NULL writes nothing. */
void sl__dash_out_h(sl_dash_out_t *o, const char *text);
/** At most `max` characters of `text`, escaped, with "…" when cut. */
void sl__dash_out_h_cut(sl_dash_out_t *o, const char *text, size_t max);
/** `text` percent-encoded for a URL's path segment or query value. */
void sl__dash_out_url(sl_dash_out_t *o, const char *text);
/** <a href="PATH`name`">`name`</a>: a link to the page of a run ("/runs/") or a workflow
 *  ("/workflows/"), `name` encoded in the URL and escaped in the text. `attrs` (raw, may be
 *  NULL) go in the tag before href. */
void sl__dash_out_link(sl_dash_out_t *o, const char *attrs, const char *path, const char *name);
/** A time (Unix ms) as <time> in UTC; "–" for 0. */
void sl__dash_out_time(sl_dash_out_t *o, int64_t ms);
/** A duration in ms as "1.2 s", "3 min 4 s", "2 h 5 min". */
void sl__dash_out_duration(sl_dash_out_t *o, int64_t ms);
/** The CSS class suffix of a status (st-NAME): a known status's name, else "other". */
const char *sl__dash_status_class(const char *status);
/** A run's or step's status as a coloured badge. */
void sl__dash_out_badge(sl_dash_out_t *o, const char *status);

/** Begins an HTML page: the headers (no-store, the CSP) and the document's head up to the
 *  opening of <main>. `page` names it for app.js (body's data-page). */
void sl__dash_page_begin(sl_dash_out_t *o, int status, const char *title, const char *page);
/** Closes <main> and the document. */
void sl__dash_page_end(sl_dash_out_t *o);
/** A whole error page (404, 400, 500, 503) with `message`, ended. */
void sl__dash_page_error(sl_http_exchange_t *ex, int status, const char *message);

/** The run page at /runs/RUN (runpage.c), its steps table from step `steps_from`: takes
 *  the exchange. `ref` is copied. */
void sl__dash_run_page(sl_dash_t *dash, sl_http_exchange_t *ex, const char *ref, size_t steps_from);

#endif
