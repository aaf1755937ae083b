/*
 * Placeholder of the dashboard's pages part while it is being written (issue 15): it
 * answers none of its paths yet.
 */
#include "dash/internal.h"

bool sl__dash_pages(sl_dash_t *dash, sl_http_exchange_t *ex, const sl_http_request_t *req)
{
    return false;
}
