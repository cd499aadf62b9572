/* A UDP service for the expose tests (netpolicy.bats): `udpecho PORT WORD`
 * answers every datagram to PORT with "WORD " and the datagram, so the sender
 * sees which sandbox answered and that its own bytes came back. Built static
 * and put into a copy of the busybox image, whose nc has no UDP.
 * `udpecho flood IP PORT COUNT` sends COUNT malformed DNS queries to IP:PORT
 * as fast as it can (the DNS forwarder's flood test): headers that claim
 * questions they lack, loops of compression pointers, labels past the end,
 * random bytes. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int flood(const char *ip, int port, long count)
{
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
	if (fd < 0 || inet_pton(AF_INET, ip, &a.sin_addr) != 1) {
		fprintf(stderr, "udpecho flood: bad address %s\n", ip);
		return 2;
	}
	unsigned char m[600];
	unsigned seed = 12345;
	for (long i = 0; i < count; i++) {
		size_t n = 12 + (seed = seed * 1103515245u + 12345u) % 500;
		for (size_t j = 0; j < n; j++)
			m[j] = (unsigned char)((seed = seed * 1103515245u + 12345u) >> 16);
		m[2] = m[3] = 0; /* a query */
		m[4] = 0, m[5] = 1;  /* one question */
		switch (i % 4) {
		case 0: m[12] = 0xc0, m[13] = 12; break;                     /* points at itself */
		case 1: m[12] = 1, m[13] = 'a', m[14] = 0xc0, m[15] = 12; break; /* a loop through a label */
		case 2: m[12] = 63; n = 20; break;                              /* a label past the end */
		default: break;                                                 /* random */
		}
		sendto(fd, m, n, 0, (struct sockaddr *)&a, sizeof(a));
	}
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 5 && !strcmp(argv[1], "flood"))
		return flood(argv[2], atoi(argv[3]), atol(argv[4]));
	if (argc != 3 || atoi(argv[1]) < 1 || atoi(argv[1]) > 65535) {
		fprintf(stderr, "usage: udpecho PORT WORD\n");
		return 2;
	}
	int fd = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1]))};
	if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
		perror("udpecho: bind");
		return 1;
	}
	char in[512], out[1024];
	for (;;) {
		struct sockaddr_in from;
		socklen_t len = sizeof(from);
		ssize_t n = recvfrom(fd, in, sizeof(in) - 1, 0, (struct sockaddr *)&from, &len);
		if (n < 0)
			continue;
		in[n] = '\0';
		int m = snprintf(out, sizeof(out), "%s %s", argv[2], in);
		sendto(fd, out, (size_t)m, 0, (struct sockaddr *)&from, len);
	}
}
