/*
 * The half of the host table that needs no scheduler: values, JSON, memory and error
 * text. The engine (host/host.c) and a worker process (pool/worker.c) start from it and
 * bind the task and HTTP functions to what runs their tasks.
 */
#include "plugin/registry.h"
#include "value/value.h"

void sl__plugin_host_init(sl_host_t *host)
{
    *host = (sl_host_t){
        .abi_major = SL_ABI_MAJOR,
        .abi_minor = SL_ABI_MINOR,
        .struct_size = sizeof(sl_host_t),
        .value_nil = sl_value_nil,
        .value_bool = sl_value_bool,
        .value_int = sl_value_int,
        .value_number = sl_value_number,
        .value_string = sl_value_string,
        .value_list = sl_value_list,
        .value_map = sl_value_map,
        .value_copy = sl_value_copy,
        .value_free = sl_value_free,
        .value_type = sl_value_type,
        .value_truthy = sl_value_truthy,
        .value_int_of = sl_value_int_of,
        .value_number_of = sl_value_number_of,
        .value_str = sl_value_str,
        .value_len = sl_value_len,
        .value_at = sl_value_at,
        .value_entry = sl_value_entry,
        .value_get = sl_value_get,
        .value_push = sl_value_push,
        .value_set = sl_value_set,
        .value_from_json = sl_value_from_json,
        .value_to_json = sl_value_to_json,
        .free = sl__free,
        .strerror = sl_strerror,
    };
}
