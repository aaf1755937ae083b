/* value/wire.c: the binary encoding values cross the worker pipes in. */
#include <math.h>

#include "test.h"
#include "value/value.h"

/* Encodes `v` into a new buffer (*size bytes). */
static uint8_t *encode(const sl_value_t *v, size_t *size)
{
    CHECK_INT(sl__value_wire_size(v, size), 0);
    uint8_t *out = sl__malloc(*size);
    CHECK(out != NULL);
    CHECK_INT(sl__value_wire_encode(v, out), *size);
    return out;
}

static sl_value_t *round_trip(const sl_value_t *v)
{
    size_t size = 0, used = 0;
    uint8_t *bytes = encode(v, &size);
    sl_value_t *back = NULL;
    CHECK_INT(sl__value_wire_decode(bytes, size, &used, &back), 0);
    CHECK_INT(used, size);
    sl__free(bytes);
    return back;
}

static sl_value_t *json(const char *text)
{
    sl_value_t *v = NULL;
    char err[128];
    CHECK_INT(sl_value_from_json(text, strlen(text), &v, err, sizeof(err)), 0);
    return v;
}

static void test_scalars(void)
{
    sl_value_t *values[] = {
        sl_value_nil(),          sl_value_bool(1),           sl_value_bool(0),
        sl_value_int(0),         sl_value_int(-1),           sl_value_int(INT64_MAX),
        sl_value_int(INT64_MIN), sl_value_int(300),          sl_value_number(0.1),
        sl_value_number(-1e300), sl_value_number(INFINITY),  sl_value_cstring(""),
        sl_value_cstring("héllo"),
    };
    for (size_t i = 0; i < SL_COUNTOF(values); i++) {
        sl_value_t *back = round_trip(values[i]);
        CHECK_INT(sl_value_type(back), sl_value_type(values[i]));
        CHECK(sl_value_equal(back, values[i]));
        sl_value_free(back);
        sl_value_free(values[i]);
    }
    sl_value_t *nan = sl_value_number(NAN);
    sl_value_t *back = round_trip(nan);
    CHECK(isnan(sl_value_number_of(back)));
    sl_value_free(back);
    sl_value_free(nan);
    /* NULL encodes as nil */
    size_t size = 0;
    CHECK_INT(sl__value_wire_size(NULL, &size), 0);
    CHECK_INT(size, 1);
}

static void test_nul_bytes(void)
{
    static const char text[] = "a\0b\0\0c";
    sl_value_t *map = sl_value_map();
    CHECK_INT(sl__value_map_append(map, "k\0ey", 4, sl_value_string(text, sizeof(text))), 0);
    sl_value_t *back = round_trip(map);
    const char *key = NULL;
    const sl_value_t *v = sl_value_entry(back, 0, &key);
    size_t len = 0;
    const char *bytes = sl_value_str(v, &len);
    CHECK_INT(len, sizeof(text));
    CHECK(bytes && memcmp(bytes, text, sizeof(text)) == 0);
    CHECK(memcmp(key, "k\0ey", 5) == 0);
    sl_value_free(back);
    sl_value_free(map);
}

static void test_nested(void)
{
    sl_value_t *v = json("{\"a\":[1,2.5,\"x\",[true,null,{}],[]],\"b\":{\"c\":{\"d\":\"e\"}},"
                         "\"z\":-42}");
    sl_value_t *back = round_trip(v);
    CHECK(sl_value_equal(v, back));
    /* map order is kept */
    const char *key = NULL;
    sl_value_entry(back, 2, &key);
    CHECK_STR(key, "z");
    sl_value_free(back);
    /* deep nesting: at the limit it works, past it it is refused */
    sl_value_t *deep = sl_value_nil();
    for (int i = 0; i < SL_WIRE_DEPTH_MAX; i++) {
        sl_value_t *list = sl_value_list();
        CHECK_INT(sl_value_push(list, deep), 0);
        deep = list;
    }
    back = round_trip(deep);
    CHECK(sl_value_equal(deep, back));
    sl_value_free(back);
    sl_value_t *deeper = sl_value_list();
    CHECK_INT(sl_value_push(deeper, deep), 0);
    size_t size = 0;
    CHECK_INT(sl__value_wire_size(deeper, &size), SL_ELIMIT);
    sl_value_free(deeper);
    sl_value_free(v);
}

/* Every proper prefix of an encoding is an error, never a crash or a read past it. */
static void test_truncated(void)
{
    sl_value_t *v = json("{\"a\":[1,2.5,\"xyz\",[true,null,{}]],\"bb\":{\"c\":-300}}");
    size_t size = 0;
    uint8_t *bytes = encode(v, &size);
    for (size_t n = 0; n < size; n++) {
        uint8_t *prefix = sl__malloc(n ? n : 1); /* exact size: ASan sees an overread */
        memcpy(prefix, bytes, n);
        sl_value_t *out = NULL;
        CHECK_INT(sl__value_wire_decode(prefix, n, NULL, &out), SL_EPARSE);
        CHECK(out == NULL);
        sl__free(prefix);
    }
    sl__free(bytes);
    sl_value_free(v);
}

static void test_malformed(void)
{
    struct { const char *bytes; size_t len; int rc; } cases[] = {
        {"\x09", 1, SL_EPARSE},                               /* unknown tag */
        {"\x05\x05" "abc", 5, SL_EPARSE},                     /* string longer than input */
        {"\x06\xff\xff\xff\xff\x0f", 6, SL_ELIMIT},           /* count past the maximum */
        {"\x06\x03\x00\x00", 4, SL_EPARSE},                   /* count past the input */
        {"\x03\xff\xff\xff\xff\xff\xff\xff\xff\xff\x7f", 11, SL_EPARSE}, /* 70-bit varint */
        {"\x07\x01\x01" "k", 4, SL_EPARSE},                   /* map entry without value */
    };
    for (size_t i = 0; i < SL_COUNTOF(cases); i++) {
        sl_value_t *out = NULL;
        CHECK_INT(sl__value_wire_decode((const uint8_t *)cases[i].bytes, cases[i].len, NULL,
                                        &out), cases[i].rc);
        CHECK(out == NULL);
    }
    /* a varint may be padded: the decoder takes what the encoder would not write */
    sl_value_t *out = NULL;
    CHECK_INT(sl__value_wire_decode((const uint8_t *)"\x03\x82\x00", 3, NULL, &out), 0);
    CHECK_INT(sl_value_int_of(out), 1);
    sl_value_free(out);
    /* nesting past the limit in the input */
    size_t n = SL_WIRE_DEPTH_MAX + 2;
    uint8_t *deep = sl__malloc(n * 2);
    for (size_t i = 0; i < n; i++) {
        deep[2 * i] = 6;
        deep[2 * i + 1] = 1;
    }
    CHECK_INT(sl__value_wire_decode(deep, n * 2, NULL, &out), SL_ELIMIT);
    sl__free(deep);
}

/* Allocation n fails, for every n: SL_ENOMEM and nothing leaked (under ASan). */
static void test_alloc_failure(void)
{
    sl_value_t *v = json("{\"k\":[1,{\"x\":\"yy\"},[3,4]],\"s\":\"text\",\"m\":{}}");
    size_t size = 0;
    uint8_t *bytes = encode(v, &size);
    int successes = 0;
    for (uint64_t n = 1; n < 60; n++) {
        sl_value_t *out = NULL;
        sl__alloc_fail_at(n);
        int rc = sl__value_wire_decode(bytes, size, NULL, &out);
        sl__alloc_fail_at(0);
        if (rc == 0) {
            successes++;
            CHECK(sl_value_equal(out, v));
        } else {
            CHECK_INT(rc, SL_ENOMEM);
            CHECK(out == NULL);
        }
        sl_value_free(out);
    }
    CHECK(successes > 0);
    sl__free(bytes);
    sl_value_free(v);
}

/* Two values back to back: `used` says where the first one ends. */
static void test_concatenated(void)
{
    sl_value_t *a = sl_value_cstring("first"), *b = sl_value_int(7);
    size_t sa = 0, sb = 0;
    sl__value_wire_size(a, &sa);
    sl__value_wire_size(b, &sb);
    uint8_t *buf = sl__malloc(sa + sb);
    sl__value_wire_encode(a, buf);
    sl__value_wire_encode(b, buf + sa);
    sl_value_t first, *second = NULL;
    size_t used = 0;
    CHECK_INT(sl__value_wire_decode_into(&first, buf, sa + sb, &used), 0);
    CHECK_INT(used, sa);
    CHECK_INT(sl__value_wire_decode(buf + used, sa + sb - used, &used, &second), 0);
    CHECK_INT(sl_value_int_of(second), 7);
    CHECK(sl_value_equal(&first, a));
    sl_value_clear(&first);
    sl_value_free(second);
    sl__free(buf);
    sl_value_free(a);
    sl_value_free(b);
}

/* Decodes through a key cache share the keys they met before, and stay equal to the input. */
static void test_shared_keys(void)
{
    sl_value_t *a = json("{\"limit\": 1, \"count\": 0, \"nested\": {\"limit\": 2}}");
    sl_value_t *b = json("{\"count\": 5, \"limit\": 7, \"other\": \"x\"}");
    size_t sa, sb;
    uint8_t *ea = encode(a, &sa), *eb = encode(b, &sb);
    sl_wire_keys_t keys = {0};
    sl_value_t da, db;
    CHECK_INT(sl__value_wire_decode_keys(&da, ea, sa, NULL, &keys), 0);
    CHECK_INT(sl__value_wire_decode_keys(&db, eb, sb, NULL, &keys), 0);
    CHECK(sl_value_equal(&da, a) && sl_value_equal(&db, b));
    const sl_vmap_t *ma = da.as.map, *mb = db.as.map, *inner = ma->entries[2].value.as.map;
    CHECK(inner->entries[0].key == ma->entries[0].key); /* "limit", met again inside */
    CHECK(mb->entries[0].key == ma->entries[1].key);    /* "count" */
    CHECK(mb->entries[1].key == ma->entries[0].key);    /* "limit" */
    CHECK_INT(ma->entries[0].key->refs, 4);             /* three maps and the cache */
    sl_value_clear(&da);
    CHECK_INT(mb->entries[1].key->refs, 2);
    sl__wire_keys_clear(&keys);
    CHECK_INT(mb->entries[1].key->refs, 1);
    sl_value_clear(&db);
    /* Every allocation failing in turn: no leak, no crash (under ASan). */
    for (uint64_t n = 1; n < 40; n++) {
        sl_value_t v;
        sl__alloc_fail_at(n);
        int rc = sl__value_wire_decode_keys(&v, ea, sa, NULL, &keys);
        sl__alloc_fail_at(0);
        if (rc == 0)
            sl_value_clear(&v);
        else
            CHECK_INT(rc, SL_ENOMEM);
    }
    sl__wire_keys_clear(&keys);
    sl__free(ea);
    sl__free(eb);
    sl_value_free(a);
    sl_value_free(b);
}

TEST_MAIN(30, T(test_scalars), T(test_nul_bytes), T(test_nested), T(test_truncated),
          T(test_malformed), T(test_alloc_failure), T(test_concatenated), T(test_shared_keys))
