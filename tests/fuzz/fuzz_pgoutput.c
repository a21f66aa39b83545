/*
 * fuzz_pgoutput.c - the replication stream's framing and the pgoutput decoder
 * (wire/pgoutput.h) on arbitrary bytes: a frame is parsed, its payload decoded, and a change
 * turned into events for a table whose columns the first byte chooses; every event must
 * encode (the message the producer would publish).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "wire/pgoutput.h"

static tf_pgo_decoder *decoder;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    tf_repl_frame f;
    tf_pgo_message m;
    tf_pgo_table t;
    tf_pgo_events e;
    tf_err err;
    unsigned shape = size ? data[0] : 0;

    if (!decoder && !(decoder = tf_pgo_decoder_new()))
        abort();
    memset(&e, 0, sizeof(e));
    if (tf_repl_frame_parse(data, size, &f, &err) < 0 || f.kind != 'w')
        return 0;
    if (tf_pgo_decode(decoder, f.data, f.len, &m, &err) < 0)
        return 0;
    memset(&t, 0, sizeof(t));
    t.source = (tf_str){"public.t", 8};
    t.aggregate = (tf_str){"t", 1};
    t.id_col = shape & 3;
    t.n_text = 2;
    t.text_col[0] = (shape >> 2) & 7;
    t.text_col[1] = (shape >> 5) & 7;
    t.text_name[0] = (tf_str){"a", 1};
    t.text_name[1] = (tf_str){"b", 1};
    t.text_is_array[1] = 1;
    if (tf_pgo_change_events(&m, &t, f.wal_start, 0, f.clock_us, &e, &err) == 0)
        for (size_t i = 0; i < e.n; i++) {
            char *buf = NULL;
            size_t len;
            if (tf_event_encode(&e.ev[i], &buf, &len, &err) < 0)
                abort();
            free(buf);
        }
    tf_pgo_events_clear(&e);
    return 0;
}
