/* A UDP service for the expose tests (netpolicy.bats): `udpecho PORT WORD`
 * answers every datagram to PORT with "WORD " and the datagram, so the sender
 * sees which sandbox answered and that its own bytes came back. Built static
 * and put into a copy of the busybox image, whose nc has no UDP. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
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
