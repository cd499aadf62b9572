/* What the guest agent's files share (sbx-agent.c, files.c): its port to
 * the host, frames onto it, and its log lines on the console. */
#ifndef SBX_AGENT_H
#define SBX_AGENT_H

#include <stdbool.h>
#include <stdint.h>

#include "agent_proto.h"

void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* buf: a header's room, then len bytes of payload: one write, one frame. */
void send_built(char *buf, uint8_t type, uint64_t id, uint32_t len);
void send_frame(uint8_t type, uint64_t id, const void *p, uint32_t len);

/* files.c: the host's AG_FILE requests (agent_proto.h). */
void files_request(uint64_t id, const char *payload, uint32_t len);
void files_data(uint64_t id, const char *p, uint32_t len);
/* AG_CREDIT of a get; false when id is no request of files. */
bool files_credit(uint64_t id, long n);
void files_end(uint64_t id);
/* Every request dropped (a new host); a put not complete leaves nothing. */
void files_drop_all(void);
/* Sends what the gets' credit allows; true when one has more to send now. */
bool files_pump(void);

#endif
