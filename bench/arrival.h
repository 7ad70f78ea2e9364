/* arrival.h: when a notification reached the client's socket, as opposed
 * to when the load generator got round to reading it. On a 2-core box the
 * load generator shares the CPUs with the server, so its read times add
 * its own scheduling delays; the kernel's receive timestamp of the data
 * (SO_TIMESTAMPNS, CLOCK_REALTIME) does not. Both are reported. */
#ifndef HERON_BENCH_ARRIVAL_H
#define HERON_BENCH_ARRIVAL_H

#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

static inline uint64_t arrival_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Asks the kernel to stamp what this socket receives. */
static inline void arrival_enable(int fd)
{
	int one = 1;

	(void)setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof(one));
}

/* recv() that also returns the receive time (µs, CLOCK_REALTIME) of the
 * data read in *stamp_us (0: no stamp). flags MSG_PEEK leaves the data
 * queued (for a TLS client that must read through OpenSSL). */
static inline ssize_t arrival_recv(int fd, void *buf, size_t len, int flags,
				   uint64_t *stamp_us)
{
	char cbuf[CMSG_SPACE(sizeof(struct timespec))];
	struct iovec iov = { buf, len };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
			     .msg_control = cbuf,
			     .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *cm;
	ssize_t n = recvmsg(fd, &mh, flags | MSG_DONTWAIT);

	*stamp_us = 0;
	for (cm = n > 0 ? CMSG_FIRSTHDR(&mh) : NULL; cm != NULL;
	     cm = CMSG_NXTHDR(&mh, cm)) {
		struct timespec ts;

		if (cm->cmsg_level != SOL_SOCKET ||
		    cm->cmsg_type != SCM_TIMESTAMPNS)
			continue;
		memcpy(&ts, CMSG_DATA(cm), sizeof(ts));
		*stamp_us = (uint64_t)ts.tv_sec * 1000000u +
			(uint64_t)ts.tv_nsec / 1000u;
	}
	return n;
}

#endif
