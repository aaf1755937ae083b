/*
 * Placeholder of the dashboard's events part while it is being written (issue 15): it
 * answers none of its paths yet.
 */
#include "dash/internal.h"

bool sl__dash_event_stream(sl_dash_t *dash, sl_http_exchange_t *ex, const sl_http_request_t *req)
{
    return false;
}

int sl__dash_events_new(sl_dash_t *dash)
{
    return 0;
}

void sl__dash_events_free(sl_dash_t *dash)
{
}
