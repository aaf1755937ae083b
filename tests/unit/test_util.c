/* util/: durations, bounded buffers, diagnostics, edit distance, UTF-8, error strings. */
#include "test.h"
#include "util/fingerprint.h"
#include "util/sha256.h"
#include "util/util.h"

static void test_durations(void)
{
    int64_t ms = 0;
    CHECK_INT(sl__duration_parse("250ms", &ms), 0);
    CHECK_INT(ms, 250);
    CHECK_INT(sl__duration_parse("30s", &ms), 0);
    CHECK_INT(ms, 30000);
    CHECK_INT(sl__duration_parse("5m", &ms), 0);
    CHECK_INT(ms, 300000);
    CHECK_INT(sl__duration_parse("2h", &ms), 0);
    CHECK_INT(ms, 7200000);
    CHECK_INT(sl__duration_parse("1d", &ms), 0);
    CHECK_INT(ms, 86400000);
    CHECK_INT(sl__duration_parse("1.5", &ms), 0);
    CHECK_INT(ms, 1500);
    const char *bad[] = {"", "5x", "-1s", "s", "1 s", "ms", "1e400", "99999999d"};
    for (size_t i = 0; i < SL_COUNTOF(bad); i++)
        CHECK_INT(sl__duration_parse(bad[i], &ms), SL_EINVAL);
}

static void test_buffer_bound(void)
{
    sl_buf_t b;
    sl__buf_init(&b, 8);
    CHECK_INT(sl__buf_add(&b, "12345", 5), 0);
    CHECK_INT(sl__buf_add(&b, "6789", 4), SL_ELIMIT);
    CHECK_STR(b.data, "12345"); /* unchanged by the refused append */
    CHECK_INT(sl__buf_addf(&b, "%d", 678), 0);
    CHECK_STR(b.data, "12345678");
    CHECK_INT(sl__buf_addc(&b, 'x'), SL_ELIMIT);
    size_t len;
    char *taken = sl__buf_take(&b, &len);
    CHECK_INT(len, 8);
    CHECK(b.data == NULL && b.len == 0);
    sl__free(taken);
    sl__buf_close(&b);
}

static void test_diag_sorted(void)
{
    sl_diag_t d;
    sl__diag_init(&d);
    sl__diag_add(&d, "f.yaml", (sl_mark_t){9, 1}, "third");
    sl__diag_add(&d, "f.yaml", (sl_mark_t){2, 5}, "second");
    sl__diag_add(&d, "f.yaml", (sl_mark_t){2, 3}, "first %d", 1);
    sl__diag_sort(&d);
    CHECK_INT(d.count, 3);
    CHECK_STR(d.items[0].message, "first 1");
    CHECK_STR(d.items[2].message, "third");
    FILE *f = tmpfile();
    sl__diag_print(&d, f);
    rewind(f);
    char line[128];
    CHECK(fgets(line, sizeof(line), f) != NULL);
    CHECK_STR(line, "f.yaml:2:3: error: first 1\n");
    fclose(f);
    sl__diag_close(&d);
}

static void test_edit_distance(void)
{
    CHECK_INT(sl__edit_distance("steps", "stpes", 2), 2);
    CHECK_INT(sl__edit_distance("needs", "neds", 2), 1);
    CHECK_INT(sl__edit_distance("foreach", "x", 2), 3);
}

static void test_utf8(void)
{
    const char good[] = "h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80";
    CHECK_INT(sl__utf8_check(good, strlen(good)), strlen(good));
    CHECK_INT(sl__utf8_check("ab\xff", 3), 2);
    CHECK_INT(sl__utf8_check("a\xc3", 2), 1);        /* truncated */
    CHECK_INT(sl__utf8_check("\xc0\xaf", 2), 0);     /* overlong */
    CHECK_INT(sl__utf8_check("\xed\xa0\x80", 3), 0); /* surrogate */
}

static void test_array_grow(void)
{
    int *items = NULL;
    size_t cap = 0, count = 0;
    for (int i = 0; i < 100; i++) {
        CHECK_INT(sl__array_grow(&items, &cap, count, sizeof(*items), 4), 0);
        items[count++] = i;
    }
    CHECK(cap >= 100 && cap < 200);
    CHECK_INT(items[99], 99);
    size_t before = cap;
    CHECK_INT(sl__array_grow(&items, &cap, 10, sizeof(*items), 4), 0); /* room left */
    CHECK_INT(cap, before);
    sl__alloc_fail_at(1);
    CHECK_INT(sl__array_grow(&items, &cap, cap, sizeof(*items), 4), SL_ENOMEM);
    sl__alloc_fail_at(0);
    CHECK_INT(cap, before); /* unchanged on failure, items still valid */
    CHECK_INT(items[50], 50);
    sl__free(items);
}

static void test_strerror(void)
{
    CHECK_STR(sl_strerror(SL_ENOMEM), "out of memory");
    CHECK_STR(sl_strerror(SL_EABI), "incompatible plugin ABI");
    CHECK_STR(sl_strerror(-9999), "unknown error");
}

/* FIPS 180-2's examples, the empty message, and one fed in uneven pieces across block
 * boundaries (the padding of 55, 56 and 64-byte tails differs). */
static void test_sha256(void)
{
    char hex[SL_SHA256_HEX_SIZE];
    sl__sha256_hex_of("abc", 3, hex);
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    sl__sha256_hex_of("", 0, hex);
    CHECK_STR(hex, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    sl__sha256_hex_of(two, strlen(two), hex);
    CHECK_STR(hex, "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
    static char million[1000000];
    memset(million, 'a', sizeof(million));
    sl_sha256_t ctx;
    uint8_t digest[SL_SHA256_BYTES];
    sl__sha256_init(&ctx);
    for (size_t at = 0, step = 1; at < sizeof(million); at += step, step = step % 97 + 13)
        sl__sha256_add(&ctx, million + at,
                       at + step > sizeof(million) ? sizeof(million) - at : step);
    sl__sha256_end(&ctx, digest);
    sl__sha256_hex(digest, hex);
    CHECK_STR(hex, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
    for (size_t n = 54; n <= 65; n++) { /* the same bytes in one piece or two agree */
        char a[SL_SHA256_HEX_SIZE];
        sl__sha256_hex_of(million, n, a);
        sl__sha256_init(&ctx);
        sl__sha256_add(&ctx, million, n / 2);
        sl__sha256_add(&ctx, million + n / 2, n - n / 2);
        sl__sha256_end(&ctx, digest);
        sl__sha256_hex(digest, hex);
        CHECK_STR(hex, a);
    }
}

/* Where the CPU has SHA instructions, both paths run: the vectors on each, then random
 * lengths and bytes hashed by both must agree. */
static void test_sha256_paths(void)
{
    sl__sha256_portable(true);
    test_sha256();
    sl__sha256_portable(false);
    test_sha256();
    static uint8_t bytes[4096];
    uint64_t x = 0x9e3779b97f4a7c15u;
    for (size_t i = 0; i < sizeof(bytes); i++, x = x * 6364136223846793005u + 1)
        bytes[i] = (uint8_t)(x >> 56);
    for (size_t n = 0; n < sizeof(bytes); n += 1 + n / 3) {
        char hw[SL_SHA256_HEX_SIZE], sw[SL_SHA256_HEX_SIZE];
        sl__sha256_hex_of(bytes + n % 7, n - n % 7, hw);
        sl__sha256_portable(true);
        sl__sha256_hex_of(bytes + n % 7, n - n % 7, sw);
        sl__sha256_portable(false);
        CHECK_STR(hw, sw);
    }
}

static void fingerprint_of(const char *text, size_t len, char hex[SL_FINGERPRINT_HEX_SIZE])
{
    sl_fingerprint_t fp;
    sl__fingerprint_init(&fp);
    sl__fingerprint_add(&fp, text, len);
    sl__fingerprint_hex(&fp, hex);
}

/* Pieces agree with the whole; every single-bit change of a short text, and the empty
 * text, give distinct fingerprints whose halves each differ (both lanes see every byte). */
static void test_fingerprint(void)
{
    char whole[SL_FINGERPRINT_HEX_SIZE], parts[SL_FINGERPRINT_HEX_SIZE];
    const char *text = "steps: { a: { uses: lua, with: { code: 'return 1' } } }";
    fingerprint_of(text, strlen(text), whole);
    CHECK(strlen(whole) == 32);
    sl_fingerprint_t fp;
    sl__fingerprint_init(&fp);
    sl__fingerprint_add(&fp, text, 7);
    sl__fingerprint_add(&fp, text + 7, strlen(text) - 7);
    sl__fingerprint_hex(&fp, parts);
    CHECK_STR(parts, whole);
    char empty[SL_FINGERPRINT_HEX_SIZE];
    fingerprint_of("", 0, empty);
    CHECK(strcmp(empty, whole) != 0);
    char flipped[64], other[SL_FINGERPRINT_HEX_SIZE];
    size_t len = strlen(text) < sizeof(flipped) ? strlen(text) : sizeof(flipped);
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit++) {
            memcpy(flipped, text, len);
            flipped[i] ^= (char)(1 << bit);
            fingerprint_of(flipped, len, other);
            CHECK(strncmp(other, whole, 16) != 0 && strncmp(other + 16, whole + 16, 16) != 0);
        }
    }
}

TEST_MAIN(30, T(test_sha256_paths), T(test_fingerprint), T(test_durations), T(test_buffer_bound),
          T(test_diag_sorted), T(test_edit_distance), T(test_utf8), T(test_array_grow),
          T(test_strerror))
