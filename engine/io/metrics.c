/*
 * What the HTTP client counts for /metrics (docs/metrics.md): every transfer that ends (each
 * hop of a redirect, each attempt of a retry, robots.txt too), by the class of its status,
 * "error" when no response came (a transport failure), and the body bytes received. Loop
 * thread. The series are looked up once per process (the registry is never freed).
 */
#include "util/metrics.h"
#include "io/internal.h"

static sl_metrics_series_t *class_series[6]; /* error, 1xx … 5xx */
static sl_metrics_series_t *bytes_series;
static bool looked_up;

static void look_up(void)
{
    static const char *const names[6] = {"error", "1xx", "2xx", "3xx", "4xx", "5xx"};
    static const char *const labels[] = {"code_class", NULL};
    sl_metrics_t *m = sl__metrics_global();
    sl_metrics_family_t *requests =
        sl__metrics_family(m, "sluice_http_requests_total", SL_METRICS_COUNTER,
                           "HTTP transfers ended, by status class (error: no response).", labels);
    for (int i = 0; i < 6; i++)
        class_series[i] = sl__metrics_series(requests, (const char *[]){names[i]});
    bytes_series = sl__metrics_series(sl__metrics_family(m, "sluice_http_response_bytes_total",
                                                         SL_METRICS_COUNTER,
                                                         "Response body bytes received.", NULL),
                                      NULL);
    looked_up = bytes_series != NULL;
}

void sl__io_metrics_transfer(sl_http_t *req)
{
    if (!looked_up)
        look_up();
    long status = 0;
    curl_off_t bytes = 0;
    curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_easy_getinfo(req->easy, CURLINFO_SIZE_DOWNLOAD_T, &bytes);
    sl__metrics_add(class_series[status >= 100 && status < 600 ? status / 100 : 0], 1);
    if (bytes > 0)
        sl__metrics_add(bytes_series, (double)bytes);
}
