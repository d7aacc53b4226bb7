/* WebSocket masking (RFC 6455 §5.3): XOR with a 4-byte key, word at a time. */
#ifndef SY_WS_MASK_H
#define SY_WS_MASK_H

#include "core/common.h"

/* XOR data[0..len) in place with key, starting at key position offset (0..3, the number of
 * payload bytes already unmasked mod 4). Returns the new offset ((offset + len) & 3). */
unsigned sy_ws_mask(uint8_t *data, size_t len, const uint8_t key[4], unsigned offset);
/* sy_ws_mask that also ORs every unmasked byte into *hi: (*hi & 0x8080808080808080) == 0
 * afterwards when all of them were ASCII (text validated in the unmasking pass). */
unsigned sy_ws_mask_hi(uint8_t *data, size_t len, const uint8_t key[4], unsigned offset,
                       uint64_t *hi);
/* Same, copying from src to dst (may not overlap unless dst == src). */
unsigned sy_ws_mask_copy(uint8_t *dst, const uint8_t *src, size_t len, const uint8_t key[4],
                         unsigned offset);

#endif
