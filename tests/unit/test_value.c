/* value/: constructors, containers, copies, equality, JSON both ways, allocation failure. */
#include "test.h"
#include "value/value.h"

static void test_scalars(void)
{
    sl_value_t *i = sl_value_int(-42), *n = sl_value_number(2.5), *b = sl_value_bool(1);
    sl_value_t *s = sl_value_string("a\0b", 3), *nil = sl_value_nil();
    CHECK_INT(sl_value_type(i), SL_TYPE_INT);
    CHECK_INT(sl_value_int_of(i), -42);
    CHECK(sl_value_number_of(n) == 2.5);
    CHECK_INT(sl_value_int_of(n), 2);
    CHECK(sl_value_truthy(b));
    CHECK(!sl_value_truthy(nil));
    CHECK(!sl_value_truthy(NULL));
    CHECK(sl_value_truthy(sl_value_at(NULL, 0)) == 0);
    size_t len;
    const char *text = sl_value_str(s, &len);
    CHECK_INT(len, 3);
    CHECK(memcmp(text, "a\0b", 4) == 0); /* NUL-terminated too */
    CHECK(sl_value_str(i, &len) == NULL);
    CHECK_STR(sl_value_type_name(SL_TYPE_MAP), "map");
    sl_value_free(i);
    sl_value_free(n);
    sl_value_free(b);
    sl_value_free(s);
    sl_value_free(nil);
    sl_value_free(NULL);
}

static void test_containers(void)
{
    sl_value_t *list = sl_value_list();
    for (int k = 0; k < 1000; k++)
        CHECK_INT(sl_value_push(list, sl_value_int(k)), 0);
    CHECK_INT(sl_value_len(list), 1000);
    CHECK_INT(sl_value_int_of(sl_value_at(list, 999)), 999);
    CHECK(sl_value_at(list, 1000) == NULL);
    sl_value_t *map = sl_value_map();
    CHECK_INT(sl_value_set(map, "b", sl_value_int(1)), 0);
    CHECK_INT(sl_value_set(map, "a", sl_value_int(2)), 0);
    CHECK_INT(sl_value_set(map, "b", sl_value_int(3)), 0); /* replaces */
    CHECK_INT(sl_value_len(map), 2);
    const char *key;
    sl_value_entry(map, 0, &key);
    CHECK_STR(key, "b"); /* insertion order */
    CHECK_INT(sl_value_int_of(sl_value_get(map, "b")), 3);
    CHECK(sl_value_get(map, "zz") == NULL);
    CHECK_INT(sl_value_set(map, "list", list), 0);
    sl_value_t *not_a_map = sl_value_list();
    CHECK_INT(sl_value_set(not_a_map, "x", sl_value_int(1)), SL_ETYPE);
    sl_value_free(not_a_map);
    sl_value_t *copy = sl_value_copy(map);
    CHECK(sl_value_equal(copy, map));
    sl_value_set(copy, "a", sl_value_number(2.0));
    CHECK(sl_value_equal(copy, map)); /* 2 == 2.0 */
    sl_value_set(copy, "a", sl_value_string("2", 1));
    CHECK(!sl_value_equal(copy, map));
    sl_value_free(copy);
    sl_value_free(map);
}

static void test_json_round_trip(void)
{
    const char *text = "{\"a\":[1,2.5,\"x\\n\\\"y\\u0001\",true,null],\"b\":{},\"c\":-7}";
    sl_value_t *v = NULL;
    char err[256];
    CHECK_INT(sl_value_from_json(text, strlen(text), &v, err, sizeof(err)), 0);
    CHECK_INT(sl_value_type(sl_value_get(v, "c")), SL_TYPE_INT);
    CHECK_INT(sl_value_type(sl_value_at(sl_value_get(v, "a"), 4)), SL_TYPE_NIL);
    char *out = NULL;
    size_t len = 0;
    CHECK_INT(sl_value_to_json(v, &out, &len), 0);
    CHECK_STR(out, text);
    CHECK_INT(len, strlen(text));
    sl__free(out);
    sl_value_free(v);
    sl_value_t *whole = sl_value_number(3.0);
    sl_value_to_json(whole, &out, &len);
    CHECK_STR(out, "3.0"); /* numbers stay numbers */
    sl__free(out);
    sl_value_free(whole);
    static const struct {
        int64_t i;
        const char *text;
    } ints[] = {{0, "0"}, {-1, "-1"}, {10, "10"}, {INT64_MAX, "9223372036854775807"},
                {INT64_MIN, "-9223372036854775808"}};
    for (size_t i = 0; i < SL_COUNTOF(ints); i++) {
        sl_value_t *n = sl_value_int(ints[i].i);
        CHECK_INT(sl_value_to_json(n, &out, &len), 0);
        CHECK_STR(out, ints[i].text);
        sl__free(out);
        sl_value_free(n);
    }
}

static void test_json_invalid_utf8_replaced(void)
{
    sl_value_t *v = sl_value_string("a\xff\xc3\xa9\xe2\x82", 6); /* bad, é, truncated */
    char *out = NULL;
    CHECK_INT(sl_value_to_json(v, &out, NULL), 0);
    CHECK_STR(out, "\"a\\ufffd\xc3\xa9\\ufffd\\ufffd\"");
    sl_value_t *back = NULL;
    char err[128];
    CHECK_INT(sl_value_from_json(out, strlen(out), &back, err, sizeof(err)), 0);
    sl__free(out);
    sl_value_free(back);
    sl_value_free(v);
}

static void test_json_errors(void)
{
    sl_value_t *v = NULL;
    char err[256];
    CHECK_INT(sl_value_from_json("{\"a\": }", 7, &v, err, sizeof(err)), SL_EPARSE);
    CHECK(v == NULL);
    CHECK_CONTAINS(err, "line 1, column");
    CHECK_INT(sl_value_from_json("", 0, &v, err, sizeof(err)), SL_EPARSE);
}

/* Every allocation of a decode, in turn, fails: no crash, no leak (under ASan). */
static void test_json_alloc_failure(void)
{
    const char *text = "{\"k\":[1,{\"x\":\"yy\"},[3,4]],\"s\":\"text\"}";
    int successes = 0;
    for (uint64_t n = 1; n < 200; n++) {
        sl_value_t *v = NULL;
        char err[128];
        sl__alloc_fail_at(n);
        int rc = sl_value_from_json(text, strlen(text), &v, err, sizeof(err));
        sl__alloc_fail_at(0);
        if (rc == 0) {
            successes++;
            char *out = NULL;
            CHECK_INT(sl_value_to_json(v, &out, NULL), 0);
            CHECK_STR(out, text);
            sl__free(out);
        } else {
            CHECK_INT(rc, SL_ENOMEM);
            CHECK(v == NULL);
        }
        sl_value_free(v);
    }
    CHECK(successes > 0);
}

static void test_copy_alloc_failure(void)
{
    sl_value_t *v = NULL;
    const char *text = "[{\"a\":\"b\"},[1,2,\"three\"],\"four\"]";
    char err[64];
    CHECK_INT(sl_value_from_json(text, strlen(text), &v, err, sizeof(err)), 0);
    for (uint64_t n = 1; n < 50; n++) {
        sl__alloc_fail_at(n);
        sl_value_t *copy = sl_value_copy(v);
        sl__alloc_fail_at(0);
        CHECK(copy == NULL || sl_value_equal(copy, v));
        sl_value_free(copy);
    }
    sl_value_free(v);
}

/* A copy shares lists and maps, and strings and keys (they never change), and owns its
 * share. */
static void test_copy_shares(void)
{
    const char *text = "{\"body\": \"<html>...</html>\", \"list\": [\"a\", {\"body\": 1}]}";
    sl_value_t *v = NULL;
    char err[128];
    CHECK_INT(sl_value_from_json(text, strlen(text), &v, err, sizeof(err)), 0);
    sl_value_t *copy = sl_value_copy(v);
    CHECK(copy != NULL && sl_value_equal(copy, v));
    CHECK(copy->as.map == v->as.map);
    CHECK_INT(v->as.map->refs, 2);
    sl_value_free(v);
    CHECK_INT(copy->as.map->refs, 1);
    CHECK_STR(sl_value_str(sl_value_get(copy, "body"), NULL), "<html>...</html>");
    /* A writer's own map shares the elements it did not write. */
    sl_value_t *other = sl_value_copy(copy);
    CHECK_INT(sl_value_set(other, "extra", sl_value_int(1)), 0);
    CHECK(other->as.map != copy->as.map && copy->as.map->refs == 1 && other->as.map->refs == 1);
    const sl_ventry_t *e = &copy->as.map->entries[0], *oe = &other->as.map->entries[0];
    CHECK(oe->key == e->key && oe->value.as.s == e->value.as.s);
    CHECK_INT(e->value.as.s->refs, 2);
    CHECK(copy->as.map->entries[1].value.as.list == other->as.map->entries[1].value.as.list);
    sl_value_free(other);
    CHECK_INT(e->value.as.s->refs, 1);
    sl_value_free(copy);
    /* A full count makes a new string instead of wrapping around. */
    sl_vstr_t *s = sl__vstr_new("x", 1);
    s->refs = UINT32_MAX;
    sl_vstr_t *str = sl__vstr_share(s);
    CHECK(str != NULL && str != s && str->refs == 1 && strcmp(str->data, "x") == 0);
    sl__vstr_drop(str);
    s->refs = 1;
    sl__vstr_drop(s);
}

/* Every change to a shared list or map leaves the other holders' value as it was. */
static void test_copy_on_write(void)
{
    sl_value_t *list = sl_value_list(), *map = sl_value_map();
    CHECK_INT(sl_value_push(list, sl_value_int(1)), 0);
    CHECK_INT(sl_value_set(map, "a", sl_value_int(1)), 0);
    sl_value_t *l2 = sl_value_copy(list), *l3 = sl_value_copy(list), *m2 = sl_value_copy(map),
               *m3 = sl_value_copy(map), *m4 = sl_value_copy(map);
    CHECK_INT(list->as.list->refs, 3);
    CHECK_INT(sl_value_push(l2, sl_value_int(2)), 0);
    CHECK_INT(sl_value_reserve(l3, 100), 0);
    CHECK_INT(sl_value_set(m2, "a", sl_value_int(2)), 0);
    CHECK_INT(sl__value_map_append(m3, "b", 1, sl_value_int(3)), 0);
    CHECK_INT(sl__value_unshare(m4), 0);
    CHECK(m4->as.map != map->as.map && sl_value_equal(m4, map));
    CHECK(sl_value_len(list) == 1 && sl_value_len(l2) == 2 && sl_value_len(l3) == 1);
    CHECK(l3->as.list->cap >= 101 && l3->as.list != list->as.list);
    CHECK_INT(sl_value_int_of(sl_value_get(map, "a")), 1);
    CHECK_INT(sl_value_int_of(sl_value_get(m2, "a")), 2);
    CHECK(sl_value_len(map) == 1 && sl_value_len(m3) == 2);
    CHECK(list->as.list->refs == 1 && map->as.map->refs == 1);
    sl_value_t *all[] = {list, l2, l3, map, m2, m3, m4};
    for (size_t i = 0; i < SL_COUNTOF(all); i++)
        sl_value_free(all[i]);
    /* A full count copies the container instead of wrapping around. */
    list = sl_value_list();
    CHECK_INT(sl_value_push(list, sl_value_cstring("x")), 0);
    list->as.list->refs = UINT32_MAX;
    l2 = sl_value_copy(list);
    CHECK(l2 != NULL && l2->as.list != list->as.list && l2->as.list->refs == 1);
    CHECK(sl_value_equal(l2, list));
    sl_value_free(l2);
    list->as.list->refs = 1;
    sl_value_free(list);
    /* Out of memory while unsharing: the writer's value is unchanged, the item freed. */
    map = sl_value_map();
    CHECK_INT(sl_value_set(map, "a", sl_value_int(1)), 0);
    m2 = sl_value_copy(map);
    for (uint64_t n = 1; n < 6; n++) {
        sl_value_t *item = sl_value_int(9);
        sl__alloc_fail_at(n);
        int rc = sl_value_set(m2, "b", item);
        sl__alloc_fail_at(0);
        CHECK(rc == 0 || (rc == SL_ENOMEM && sl_value_len(m2) == 1));
    }
    CHECK(sl_value_len(map) == 1 && sl_value_len(m2) == 2);
    sl_value_free(map);
    sl_value_free(m2);
}

/* A container made with room holds its elements in the same block, and moves them out
 * when it grows past that room. */
static void test_room_made_up_front(void)
{
    sl_value_t list, map;
    CHECK_INT(sl__value_init_list(&list, 2), 0);
    CHECK_INT(sl__value_init_map(&map, 1), 0);
    CHECK(list.as.list->items == (sl_value_t *)(list.as.list + 1));
    for (int i = 0; i < 10; i++)
        CHECK_INT(sl_value_push(&list, sl_value_int(i)), 0);
    CHECK(list.as.list->items != (sl_value_t *)(list.as.list + 1));
    for (int i = 0; i < 10; i++)
        CHECK_INT(sl_value_int_of(sl_value_at(&list, (size_t)i)), i);
    CHECK_INT(sl_value_set(&map, "a", sl_value_cstring("1")), 0);
    CHECK_INT(sl_value_set(&map, "b", sl_value_cstring("2")), 0);
    CHECK_INT(sl_value_reserve(&map, 10), 0);
    CHECK_STR(sl_value_str(sl_value_get(&map, "a"), NULL), "1");
    CHECK_STR(sl_value_str(sl_value_get(&map, "b"), NULL), "2");
    sl_value_clear(&list);
    sl_value_clear(&map);
    CHECK_INT(sl__value_init_list(&list, SIZE_MAX / 8), SL_ENOMEM);
    CHECK_INT(list.type, SL_TYPE_NIL);
}

TEST_MAIN(30, T(test_scalars), T(test_containers), T(test_json_round_trip), T(test_json_errors),
          T(test_json_invalid_utf8_replaced),
          T(test_json_alloc_failure), T(test_copy_alloc_failure), T(test_copy_shares), T(test_copy_on_write),
          T(test_room_made_up_front))
