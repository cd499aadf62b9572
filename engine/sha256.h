/* SHA-256 (FIPS 180-4), small and dependency-free: what an OCI image's
 * digests are checked with. Incremental, so a blob is hashed as it streams. */
#ifndef SBX_SHA256_H
#define SBX_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define SHA256_BYTES 32
#define SHA256_HEX (2 * SHA256_BYTES + 1) /* hex digits and the NUL */

struct sha256 {
	uint32_t h[8];
	uint64_t len; /* bytes hashed so far */
	uint8_t block[64];
	size_t fill;
};

void sha256_init(struct sha256 *c);
void sha256_update(struct sha256 *c, const void *data, size_t n);
void sha256_final(struct sha256 *c, uint8_t out[SHA256_BYTES]);
/* The lower-case hex of a digest. */
void sha256_hex(const uint8_t d[SHA256_BYTES], char out[SHA256_HEX]);
/* One call: the hex digest of data. */
void sha256_hex_of(const void *data, size_t n, char out[SHA256_HEX]);

#endif
