/*
 * YAML text to a node tree with 1-based marks, built from libyaml events.
 *
 * The builder keeps an explicit stack of open collections (bounded by
 * SL_YAML_DEPTH_MAX). Every node created, including each node copied when an
 * alias is expanded, counts against SL_YAML_NODES_MAX; an anchored node
 * records its size and height so an alias is refused before it is copied.
 * That keeps a "billion laughs" file fast and small.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <yaml.h>

#include "util/index.h"
#include "yaml/yaml.h"

typedef struct frame {
    sl_node_t *node; /* the open sequence or map */
    size_t item_count;
    size_t item_cap;
    size_t nodes_at_open;
    size_t height; /* of the tallest child */
    char *anchor;  /* owned */
} frame_t;

typedef struct anchor {
    char *name;
    sl_node_t *node; /* borrowed from the tree */
    size_t size;     /* nodes in the subtree */
    size_t height;
} anchor_t;

typedef struct builder {
    const char *file;
    const char *text;
    size_t len;
    sl_diag_t *diag;
    frame_t *stack;
    size_t depth;
    sl_node_t *root;
    size_t nodes;
    size_t alias_nodes; /* of `nodes`, those copied for aliases and merges */
    anchor_t *anchors;
    size_t anchor_count, anchor_cap;
    sl_index_t anchor_index;
    sl_node_t **graveyard; /* detached nodes, freed at the end (anchors may point in) */
    size_t grave_count, grave_cap;
    int errors;
    size_t *duplicates; /* lenient: duplicate keys counted here, not in errors */
    int rc;             /* first hard failure: SL_ENOMEM, SL_ELIMIT */
    bool stop;          /* stop reading events */
    int documents;
} builder_t;

static void problem(builder_t *b, sl_mark_t mark, const char *fmt, ...) SL_PRINTF(3, 4);

static void problem(builder_t *b, sl_mark_t mark, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (sl__diag_vadd(b->diag, b->file, mark, fmt, ap) < 0)
        b->rc = SL_ENOMEM;
    va_end(ap);
    b->errors++;
}

static sl_mark_t mark_of(yaml_mark_t m)
{
    sl_mark_t out = {(uint32_t)m.line + 1, (uint32_t)m.column + 1};
    return out;
}

/* Line and column (in characters) of byte `offset` of the text. */
static sl_mark_t mark_at_offset(const char *text, size_t len, size_t offset)
{
    sl_mark_t m = {1, 1};
    if (offset > len)
        offset = len;
    for (size_t i = 0; i < offset; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '\n') {
            m.line++;
            m.col = 1;
        } else if ((c & 0xc0) != 0x80) {
            m.col++;
        }
    }
    return m;
}

void sl__yaml_free(sl_node_t *node)
{
    if (node == NULL)
        return;
    size_t n = node->kind == SL_NODE_MAP ? node->count * 2 : node->count;
    for (size_t i = 0; i < n; i++)
        sl__yaml_free(node->items[i]);
    sl__free(node->items);
    sl__free(node->str);
    sl__free(node);
}

static sl_node_t *new_node(builder_t *b, sl_node_kind_t kind, yaml_mark_t start)
{
    if (b->nodes >= SL_YAML_NODES_MAX) {
        problem(b, mark_of(start),
                "the document has too many nodes (more than %zu after "
                "expanding aliases)",
                SL_YAML_NODES_MAX);
        b->rc = SL_ELIMIT;
        b->stop = true;
        return NULL;
    }
    sl_node_t *node = sl__calloc(1, sizeof(*node));
    if (node == NULL) {
        b->rc = SL_ENOMEM;
        b->stop = true;
        return NULL;
    }
    b->nodes++;
    node->kind = kind;
    node->mark = mark_of(start);
    return node;
}

/* Deep copy; the source's height is at most SL_YAML_DEPTH_MAX, so recursion is bounded. */
static sl_node_t *copy_node(const sl_node_t *src)
{
    sl_node_t *dst = sl__calloc(1, sizeof(*dst));
    if (dst == NULL)
        return NULL;
    *dst = *src;
    dst->str = NULL;
    dst->items = NULL;
    dst->count = 0;
    if (src->str && (dst->str = sl__strndup(src->str, src->len)) == NULL)
        goto fail;
    size_t n = src->kind == SL_NODE_MAP ? src->count * 2 : src->count;
    if (n > 0) {
        dst->items = sl__calloc(n, sizeof(*dst->items));
        if (dst->items == NULL)
            goto fail;
        for (size_t i = 0; i < n; i++) {
            if ((dst->items[i] = copy_node(src->items[i])) == NULL)
                goto fail_items;
        }
    }
    dst->count = src->count;
    return dst;
fail_items:
    for (size_t i = 0; i < n; i++)
        sl__yaml_free(dst->items[i]);
fail:
    sl__free(dst->items);
    sl__free(dst->str);
    sl__free(dst);
    return NULL;
}

static int bury(builder_t *b, sl_node_t *node)
{
    if (sl__array_grow(&b->graveyard, &b->grave_cap, b->grave_count, sizeof(*b->graveyard), 8) <
        0) {
        sl__yaml_free(node);
        b->rc = SL_ENOMEM;
        return SL_ENOMEM;
    }
    b->graveyard[b->grave_count++] = node;
    return 0;
}

static void register_anchor(builder_t *b, char *name, sl_node_t *node, size_t size, size_t height)
{
    if (sl__array_grow(&b->anchors, &b->anchor_cap, b->anchor_count, sizeof(*b->anchors), 8) < 0)
        goto oom;
    anchor_t *a = &b->anchors[b->anchor_count];
    a->name = name;
    a->node = node;
    a->size = size;
    a->height = height;
    if (sl__index_put(&b->anchor_index, name, b->anchor_count, 1, NULL) < 0)
        goto oom;
    b->anchor_count++;
    return;
oom:
    sl__free(name);
    b->rc = SL_ENOMEM;
    b->stop = true;
}

static const char *kind_name(const sl_node_t *node)
{
    return node->kind == SL_NODE_MAP ? "a map" : node->kind == SL_NODE_SEQ ? "a list" : "a scalar";
}

/* Attaches a finished node to the open collection (or makes it the root). */
static void attach(builder_t *b, sl_node_t *node, size_t height)
{
    if (b->depth == 0) {
        if (b->root == NULL)
            b->root = node;
        else
            sl__yaml_free(node);
        return;
    }
    frame_t *f = &b->stack[b->depth - 1];
    if (f->node->kind == SL_NODE_MAP && f->item_count % 2 == 0 && node->kind != SL_NODE_SCALAR) {
        problem(b, node->mark, "a map key must be a scalar, found %s", kind_name(node));
    }
    if (sl__array_grow(&f->node->items, &f->item_cap, f->item_count, sizeof(sl_node_t *), 4) < 0) {
        sl__yaml_free(node);
        b->rc = SL_ENOMEM;
        b->stop = true;
        return;
    }
    f->node->items[f->item_count++] = node;
    f->node->count = f->node->kind == SL_NODE_MAP ? f->item_count / 2 : f->item_count;
    if (height > f->height)
        f->height = height;
}

static char *take_anchor(builder_t *b, const yaml_char_t *anchor)
{
    if (anchor == NULL)
        return NULL;
    char *name = sl__strdup((const char *)anchor);
    if (name == NULL) {
        b->rc = SL_ENOMEM;
        b->stop = true;
    }
    return name;
}

static void on_scalar(builder_t *b, const yaml_event_t *ev)
{
    sl_node_t *node = new_node(b, SL_NODE_SCALAR, ev->start_mark);
    if (node == NULL)
        return;
    node->end = mark_of(ev->end_mark);
    node->str = sl__strndup((const char *)ev->data.scalar.value, ev->data.scalar.length);
    if (node->str == NULL) {
        sl__free(node);
        b->rc = SL_ENOMEM;
        b->stop = true;
        return;
    }
    node->len = ev->data.scalar.length;
    static const char styles[] = {0, 0, '\'', '"', '|', '>'};
    int style = ev->data.scalar.style;
    node->style = style >= 0 && style < (int)sizeof(styles) ? styles[style] : 0;
    const char *tag = (const char *)ev->data.scalar.tag;
    bool string_tag = tag && (strcmp(tag, YAML_STR_TAG) == 0 || strcmp(tag, "!") == 0);
    node->plain = style == YAML_PLAIN_SCALAR_STYLE && !string_tag;
    char *anchor = take_anchor(b, ev->data.scalar.anchor);
    if (anchor)
        register_anchor(b, anchor, node, 1, 1);
    attach(b, node, 1);
}

static void on_alias(builder_t *b, const yaml_event_t *ev)
{
    const char *name = (const char *)ev->data.alias.anchor;
    size_t at = sl__index_get(&b->anchor_index, name);
    if (at == SL_INDEX_NONE) {
        problem(b, mark_of(ev->start_mark), "unknown anchor '%s'", name);
        /* A null in its place keeps the map's keys and values paired. */
        sl_node_t *null_node = new_node(b, SL_NODE_SCALAR, ev->start_mark);
        if (null_node && (null_node->str = sl__strdup("")) == NULL) {
            sl__free(null_node);
            null_node = NULL;
            b->rc = SL_ENOMEM;
            b->stop = true;
        }
        if (null_node)
            attach(b, null_node, 1);
        return;
    }
    const anchor_t *a = &b->anchors[at];
    if (b->alias_nodes + a->size > SL_YAML_ALIAS_NODES_MAX) {
        problem(b, mark_of(ev->start_mark),
                "aliases expand to too many nodes (more than %zu copied)", SL_YAML_ALIAS_NODES_MAX);
        b->rc = SL_ELIMIT;
        b->stop = true;
        return;
    }
    if (b->nodes + a->size > SL_YAML_NODES_MAX) {
        problem(b, mark_of(ev->start_mark),
                "the document has too many nodes (more than %zu after expanding aliases)",
                SL_YAML_NODES_MAX);
        b->rc = SL_ELIMIT;
        b->stop = true;
        return;
    }
    if (b->depth + a->height > SL_YAML_DEPTH_MAX) {
        problem(b, mark_of(ev->start_mark), "the document nests deeper than %d levels",
                SL_YAML_DEPTH_MAX);
        b->rc = SL_ELIMIT;
        b->stop = true;
        return;
    }
    sl_node_t *copy = copy_node(a->node);
    if (copy == NULL) {
        b->rc = SL_ENOMEM;
        b->stop = true;
        return;
    }
    b->nodes += a->size;
    b->alias_nodes += a->size;
    attach(b, copy, a->height);
}

static void on_start(builder_t *b, const yaml_event_t *ev, sl_node_kind_t kind)
{
    if (b->depth >= SL_YAML_DEPTH_MAX) {
        problem(b, mark_of(ev->start_mark), "the document nests deeper than %d levels",
                SL_YAML_DEPTH_MAX);
        b->rc = SL_ELIMIT;
        b->stop = true;
        return;
    }
    size_t nodes_at_open = b->nodes;
    sl_node_t *node = new_node(b, kind, ev->start_mark);
    if (node == NULL)
        return;
    const yaml_char_t *anchor =
        kind == SL_NODE_MAP ? ev->data.mapping_start.anchor : ev->data.sequence_start.anchor;
    frame_t *f = &b->stack[b->depth++];
    memset(f, 0, sizeof(*f));
    f->node = node;
    f->nodes_at_open = nodes_at_open;
    f->anchor = take_anchor(b, anchor);
}

/*
 * Reports later keys equal to an earlier key of the same map. When parsing leniently the
 * later entries are dropped (buried: an anchor may point into them) and counted apart, so
 * the caller can go on checking the rest of the file with the first definitions.
 */
static void check_duplicates(builder_t *b, sl_node_t *map)
{
    sl_index_t seen;
    sl__index_init(&seen);
    size_t kept = 0;
    for (size_t i = 0; i < map->count; i++) {
        sl_node_t *key = map->items[2 * i], *value = map->items[2 * i + 1];
        size_t first = 0;
        int rc = 0;
        if (key->kind == SL_NODE_SCALAR && !(key->plain && strcmp(key->str, "<<") == 0))
            rc = sl__index_put(&seen, key->str, kept, 0, &first);
        if (rc < 0)
            b->rc = SL_ENOMEM;
        if (rc == 1) {
            int errors = b->errors;
            problem(b, key->mark, "duplicate key '%s' (first defined at line %u)", key->str,
                    map->items[2 * first]->mark.line);
            if (b->duplicates) {
                b->errors = errors;
                (*b->duplicates)++;
                bury(b, key);
                bury(b, value);
                continue;
            }
        }
        map->items[2 * kept] = key;
        map->items[2 * kept + 1] = value;
        kept++;
    }
    map->count = kept;
    sl__index_close(&seen);
}

static bool is_merge_key(const sl_node_t *key)
{
    return key->kind == SL_NODE_SCALAR && key->plain && strcmp(key->str, "<<") == 0;
}

static size_t count_nodes(const sl_node_t *node)
{
    size_t n = node->kind == SL_NODE_MAP ? node->count * 2 : node->count;
    size_t total = 1;
    for (size_t i = 0; i < n; i++)
        total += count_nodes(node->items[i]);
    return total;
}

static int push_item(sl_node_t ***items, size_t *count, size_t *cap, sl_node_t *node)
{
    if (sl__array_grow(items, cap, *count, sizeof(**items), 8) < 0)
        return SL_ENOMEM;
    (*items)[(*count)++] = node;
    return 0;
}

/* Copies the entries of `src` whose keys `present` lacks onto `items`. */
static void merge_one(builder_t *b, const sl_node_t *src, sl_index_t *present, sl_node_t ***items,
                      size_t *count, size_t *cap)
{
    for (size_t j = 0; j < src->count && !b->stop; j++) {
        const sl_node_t *key = src->items[2 * j], *value = src->items[2 * j + 1];
        if (key->kind != SL_NODE_SCALAR)
            continue;
        int rc = sl__index_put(present, key->str, 0, 0, NULL);
        if (rc == 1)
            continue;
        size_t size = 1 + count_nodes(value);
        if (rc < 0 || b->nodes + size > SL_YAML_NODES_MAX ||
            b->alias_nodes + size > SL_YAML_ALIAS_NODES_MAX) {
            if (rc == 0)
                problem(b, key->mark, "aliases expand to too many nodes (more than %zu copied)",
                        SL_YAML_ALIAS_NODES_MAX);
            b->rc = rc < 0 ? SL_ENOMEM : SL_ELIMIT;
            b->stop = true;
            return;
        }
        sl_node_t *kc = copy_node(key), *vc = copy_node(value);
        if (kc == NULL || vc == NULL || push_item(items, count, cap, kc) < 0) {
            sl__yaml_free(kc);
            kc = NULL;
        }
        if (kc == NULL || push_item(items, count, cap, vc) < 0) {
            sl__yaml_free(vc);
            b->rc = SL_ENOMEM;
            b->stop = true;
            return;
        }
        b->nodes += size;
        b->alias_nodes += size;
    }
}

static void merge_sources(builder_t *b, const sl_node_t *value, sl_index_t *present,
                          sl_node_t ***items, size_t *count, size_t *cap)
{
    if (value->kind == SL_NODE_MAP) {
        merge_one(b, value, present, items, count, cap);
        return;
    }
    bool maps = value->kind == SL_NODE_SEQ;
    for (size_t i = 0; maps && i < value->count; i++)
        maps = value->items[i]->kind == SL_NODE_MAP;
    if (!maps) {
        problem(b, value->mark, "a merge key '<<' expects a map or a list of maps");
        return;
    }
    for (size_t i = 0; i < value->count; i++)
        merge_one(b, value->items[i], present, items, count, cap);
}

/* Builds the map's new item array: its own entries, merged ones in place of `<<`. */
static sl_node_t **merged_items(sl_node_t *map, sl_node_t **extra, const size_t *ends, size_t total)
{
    sl_node_t **items = sl__malloc((total ? total : 1) * sizeof(*items));
    if (items == NULL)
        return NULL;
    size_t n = 0, from = 0;
    for (size_t i = 0; i < map->count; i++) {
        sl_node_t *key = map->items[2 * i], *value = map->items[2 * i + 1];
        if (!is_merge_key(key)) {
            items[n++] = key;
            items[n++] = value;
            continue;
        }
        while (from < ends[i])
            items[n++] = extra[from++];
    }
    return items;
}

/*
 * Expands merge keys: `<<: map` or `<<: [map, ...]` adds copies of the entries
 * of those maps that this map does not set itself, in place of the `<<` entry.
 * The map is left as it was when anything fails.
 */
static void apply_merges(builder_t *b, sl_node_t *map)
{
    size_t merges = 0;
    for (size_t i = 0; i < map->count; i++)
        merges += is_merge_key(map->items[2 * i]);
    if (merges == 0)
        return;
    sl_index_t present;
    sl__index_init(&present);
    sl_node_t **extra = NULL, **items = NULL;
    size_t extra_count = 0, extra_cap = 0;
    size_t *ends = sl__calloc(map->count, sizeof(*ends));
    if (ends == NULL)
        b->rc = SL_ENOMEM;
    for (size_t i = 0; i < map->count && b->rc == 0; i++) {
        const sl_node_t *key = map->items[2 * i];
        if (!is_merge_key(key) && key->kind == SL_NODE_SCALAR &&
            sl__index_put(&present, key->str, i, 0, NULL) < 0)
            b->rc = SL_ENOMEM;
    }
    for (size_t i = 0; i < map->count && b->rc == 0 && !b->stop; i++) {
        if (is_merge_key(map->items[2 * i]))
            merge_sources(b, map->items[2 * i + 1], &present, &extra, &extra_count, &extra_cap);
        ends[i] = extra_count;
    }
    size_t total = (map->count - merges) * 2 + extra_count;
    if (b->rc == 0 && !b->stop && (items = merged_items(map, extra, ends, total)) == NULL)
        b->rc = SL_ENOMEM;
    if (items == NULL) {
        for (size_t i = 0; i < extra_count; i++)
            sl__yaml_free(extra[i]);
        goto out;
    }
    for (size_t i = 0; i < map->count; i++) {
        if (is_merge_key(map->items[2 * i])) {
            bury(b, map->items[2 * i]);
            bury(b, map->items[2 * i + 1]);
        }
    }
    sl__free(map->items);
    map->items = items;
    map->count = total / 2;
out:
    sl__free(extra);
    sl__free(ends);
    sl__index_close(&present);
}

static void on_end(builder_t *b, const yaml_event_t *ev)
{
    if (b->depth == 0)
        return;
    frame_t *f = &b->stack[--b->depth];
    sl_node_t *node = f->node;
    node->end = mark_of(ev->end_mark);
    if (node->kind == SL_NODE_MAP) {
        check_duplicates(b, node);
        apply_merges(b, node);
    }
    size_t height = f->height + 1;
    if (f->anchor)
        register_anchor(b, f->anchor, node, b->nodes - f->nodes_at_open, height);
    attach(b, node, height);
}

static void on_document_start(builder_t *b, const yaml_event_t *ev)
{
    if (b->documents++ > 0) {
        problem(b, mark_of(ev->start_mark),
                "a workflow file holds one YAML document; found a second one here");
        b->stop = true;
    }
}

static void syntax_problem(builder_t *b, const yaml_parser_t *p)
{
    if (p->error == YAML_MEMORY_ERROR) {
        b->rc = SL_ENOMEM;
        problem(b, (sl_mark_t){0, 0}, "out of memory while parsing YAML");
        return;
    }
    const char *what = p->problem ? p->problem : "invalid YAML";
    if (p->error == YAML_READER_ERROR) {
        sl_mark_t m = mark_at_offset(b->text, b->len, p->problem_offset);
        if (p->problem_value >= 0)
            problem(b, m, "%s (byte 0x%02x)", what, (unsigned)p->problem_value);
        else
            problem(b, m, "%s", what);
        return;
    }
    if (p->context)
        problem(b, mark_of(p->problem_mark), "%s (%s at line %zu, column %zu)", what, p->context,
                p->context_mark.line + 1, p->context_mark.column + 1);
    else
        problem(b, mark_of(p->problem_mark), "%s", what);
}

static void run_events(builder_t *b, yaml_parser_t *parser)
{
    while (!b->stop) {
        yaml_event_t ev;
        if (!yaml_parser_parse(parser, &ev)) {
            syntax_problem(b, parser);
            return;
        }
        yaml_event_type_t type = ev.type;
        switch (type) {
        case YAML_DOCUMENT_START_EVENT:
            on_document_start(b, &ev);
            break;
        case YAML_SCALAR_EVENT:
            on_scalar(b, &ev);
            break;
        case YAML_ALIAS_EVENT:
            on_alias(b, &ev);
            break;
        case YAML_SEQUENCE_START_EVENT:
            on_start(b, &ev, SL_NODE_SEQ);
            break;
        case YAML_MAPPING_START_EVENT:
            on_start(b, &ev, SL_NODE_MAP);
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            on_end(b, &ev);
            break;
        default:
            break;
        }
        yaml_event_delete(&ev);
        if (type == YAML_STREAM_END_EVENT)
            return;
    }
}

static void builder_close(builder_t *b)
{
    while (b->depth > 0) {
        frame_t *f = &b->stack[--b->depth];
        if (f->node->kind == SL_NODE_MAP && f->item_count % 2 == 1)
            sl__yaml_free(f->node->items[f->item_count - 1]); /* a key without its value */
        sl__yaml_free(f->node);
        sl__free(f->anchor);
    }
    sl__free(b->stack);
    for (size_t i = 0; i < b->anchor_count; i++)
        sl__free(b->anchors[i].name);
    sl__free(b->anchors);
    sl__index_close(&b->anchor_index);
    for (size_t i = 0; i < b->grave_count; i++)
        sl__yaml_free(b->graveyard[i]);
    sl__free(b->graveyard);
}

static bool check_input(builder_t *b)
{
    if (b->len > SL_YAML_BYTES_MAX) {
        problem(b, (sl_mark_t){1, 1}, "the file is too large (%zu bytes; at most %zu)", b->len,
                SL_YAML_BYTES_MAX);
        b->rc = SL_ELIMIT;
        return false;
    }
    size_t bad = sl__utf8_check(b->text, b->len);
    if (bad < b->len) {
        problem(b, mark_at_offset(b->text, b->len, bad), "invalid UTF-8 (byte 0x%02x)",
                (unsigned char)b->text[bad]);
        return false;
    }
    return true;
}

int sl__yaml_parse(const char *file, const char *text, size_t len, sl_node_t **out, sl_diag_t *diag)
{
    return sl__yaml_parse_lenient(file, text, len, out, diag, NULL);
}

int sl__yaml_parse_lenient(const char *file, const char *text, size_t len, sl_node_t **out,
                           sl_diag_t *diag, size_t *duplicates)
{
    builder_t b;
    memset(&b, 0, sizeof(b));
    b.duplicates = duplicates;
    b.file = file;
    b.text = text;
    b.len = len;
    b.diag = diag;
    sl__index_init(&b.anchor_index);
    *out = NULL;
    if (!check_input(&b))
        goto out;
    b.stack = sl__calloc(SL_YAML_DEPTH_MAX, sizeof(*b.stack));
    yaml_parser_t parser;
    if (b.stack == NULL || !yaml_parser_initialize(&parser)) {
        b.rc = SL_ENOMEM;
        goto out;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    run_events(&b, &parser);
    yaml_parser_delete(&parser);
out:
    builder_close(&b);
    if (b.errors == 0 && b.rc == 0) {
        *out = b.root;
        return 0;
    }
    sl__yaml_free(b.root);
    return b.rc ? b.rc : SL_EPARSE;
}

/* What a file that is not a regular one is, for its error. */
static const char *file_type_name(mode_t mode)
{
    return S_ISFIFO(mode)  ? "a FIFO"
           : S_ISDIR(mode) ? "a folder"
           : S_ISCHR(mode) ? "a character device"
           : S_ISBLK(mode) ? "a block device"
           : S_ISSOCK(mode) ? "a socket"
                            : "not a regular file";
}

/* Opens `file` for reading when it is a regular file. The open itself does not wait: a
 * FIFO with no writer would park open(2) (and `sluice validate`) forever, so it is opened
 * with O_NONBLOCK, checked with fstat, and refused. Returns NULL with errno set (nothing
 * reported), or NULL with *rc set and the problem reported. */
static FILE *open_regular(const char *file, sl_diag_t *diag, int *rc)
{
    int fd = open(file, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        return NULL;
    struct stat st;
    if (fstat(fd, &st) < 0) {
        int saved = errno;
        close(fd);
        errno = saved;
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        *rc = SL_EIO;
        if (sl__diag_add(diag, file, (sl_mark_t){0, 0}, "cannot read: it is %s, not a regular file",
                         file_type_name(st.st_mode)) < 0)
            *rc = SL_ENOMEM;
        return NULL;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags >= 0)
        fcntl(fd, F_SETFL, flags & ~O_NONBLOCK);
    FILE *f = fdopen(fd, "rb");
    if (f == NULL) {
        int saved = errno;
        close(fd);
        errno = saved;
    }
    return f;
}

int sl__yaml_read_file(const char *file, sl_buf_t *buf, sl_diag_t *diag)
{
    sl__buf_init(buf, SL_YAML_BYTES_MAX);
    int rc = 0;
    /* "-" is standard input, bounded as a file is (read before any loop runs). */
    bool is_stdin = strcmp(file, "-") == 0;
    FILE *f = is_stdin ? stdin : open_regular(file, diag, &rc);
    if (f == NULL && rc < 0)
        goto out;
    if (f == NULL) {
        rc = errno == ENOENT ? SL_ENOENT : SL_EIO;
        if (sl__diag_add(diag, file, (sl_mark_t){0, 0}, "cannot read: %s", strerror(errno)) < 0)
            rc = SL_ENOMEM;
        goto out;
    }
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if ((rc = sl__buf_add(buf, chunk, n)) < 0)
            break;
    }
    if (rc == 0 && ferror(f)) {
        rc = SL_EIO;
        sl__diag_add(diag, file, (sl_mark_t){0, 0}, "cannot read: %s", strerror(errno));
    } else if (rc == SL_ELIMIT) {
        sl__diag_add(diag, file, (sl_mark_t){1, 1}, "the file is too large (at most %zu bytes)",
                     SL_YAML_BYTES_MAX);
    }
    if (!is_stdin)
        fclose(f);
out:
    if (rc < 0)
        sl__buf_close(buf);
    return rc;
}

int sl__yaml_parse_file(const char *file, sl_node_t **out, sl_diag_t *diag)
{
    *out = NULL;
    sl_buf_t buf;
    int rc = sl__yaml_read_file(file, &buf, diag);
    if (rc == 0)
        rc = sl__yaml_parse(file, buf.data ? buf.data : "", buf.len, out, diag);
    sl__buf_close(&buf);
    return rc;
}

const sl_node_t *sl__yaml_get(const sl_node_t *map, const char *key)
{
    if (map == NULL || map->kind != SL_NODE_MAP)
        return NULL;
    for (size_t i = 0; i < map->count; i++) {
        const sl_node_t *k = map->items[2 * i];
        if (k->kind == SL_NODE_SCALAR && strcmp(k->str, key) == 0)
            return map->items[2 * i + 1];
    }
    return NULL;
}
