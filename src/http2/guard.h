/* RFC 9113 checks that nghttp2 leaves undone, on the input before nghttp2 reads it.
 *
 * nghttp2 forgets a stream once it closes (we run it with no closed streams kept) and then
 * silently drops DATA and HEADERS for it, whatever the reason the stream closed; and with
 * RFC 7540 priorities off (SETTINGS_NO_RFC7540_PRIORITIES) it skips PRIORITY frames unread.
 * RFC 9113 still asks for an answer in these cases:
 *  - HEADERS or DATA on a stream below the newest one the client opened, that it never
 *    opened itself: connection error PROTOCOL_ERROR (§5.1.1, the stream was idle and is
 *    closed now);
 *  - ... on a stream closed after the client's END_STREAM: connection error STREAM_CLOSED
 *    (§5.1, "closed": the client knew it was done);
 *  - ... on a stream the client reset: stream error STREAM_CLOSED (§5.1), once per stream;
 *  - ... on a stream we reset: ignored, as nghttp2 does (§5.1: frames may be in flight);
 *  - PRIORITY on stream 0: connection error PROTOCOL_ERROR (§6.3);
 *  - PRIORITY that makes a stream depend on itself: stream error PROTOCOL_ERROR (§5.3.1),
 *    a connection error when the stream is not open (no RST_STREAM for idle streams);
 *  - SETTINGS_INITIAL_WINDOW_SIZE that takes an open stream's window over 2^31-1:
 *    connection error FLOW_CONTROL_ERROR (§6.9.2; nghttp2 resets the stream instead).
 *
 * The scanner follows the frame boundaries of the input and hands nghttp2 everything before
 * a frame it has to judge first, so the verdict sees the streams as the frames before it
 * left them. The closing state of the last H2_GUARD_HIST client streams is kept in two bits
 * each; older ones are judged as nghttp2 judges them (ignored). */
#ifndef SY_HTTP2_GUARD_H
#define SY_HTTP2_GUARD_H

#include <stddef.h>
#include <stdint.h>

#define H2_GUARD_HIST 512 /* client streams remembered below the newest (a power of two) */

typedef struct h2_guard {
    uint32_t preface;  /* client preface bytes still to pass */
    uint32_t skip;     /* payload bytes of the current frame still to pass */
    uint8_t hd[9 + 5]; /* the frame header being collected (and a PRIORITY payload) */
    uint8_t have, want;
    int32_t top;                     /* the newest client stream id seen in HEADERS */
    uint8_t hist[H2_GUARD_HIST / 4]; /* per odd stream id: enum h2_hist, 2 bits each */
    int32_t max_window, init_window; /* at the start of a SETTINGS frame (§6.9.2 check) */
} h2_guard;

/* What became of a client stream, for frames that arrive after it closed. */
enum h2_hist { H2_HIST_NONE = 0, H2_HIST_IGNORE, H2_HIST_ENDED, H2_HIST_RESET };

#endif
