/* PROXY protocol v1 and v2 (HAProxy, doc/proxy-protocol.txt).  When
 * proxy_protocol is on, every connection must start with a header: a
 * connection that does not, or whose header is malformed, gets 400 and is
 * closed (the spec: "the receiver must not try to guess"). */
#include "proxy_proto.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const unsigned char v2_sig[12] = { 0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
					  0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A };

/* 2.1: "the maximum line lengths the receiver must support including the
 * CRLF are 107 characters" */
#define V1_MAX 107

static bool is_port(const char *s, int *port)
{
	size_t n = strspn(s, "0123456789");
	if (!n || n > 5 || s[n] || (s[0] == '0' && n > 1))
		return false;
	long v = strtol(s, NULL, 10);
	*port = (int)v;
	return v <= 65535;
}

/* "PROXY TCP4 SRC DST SPORT DPORT\r\n", or "PROXY UNKNOWN ...\r\n" */
static int parse_v1(const unsigned char *p, size_t n, char *addr, size_t cap, int *port)
{
	const unsigned char *crlf = NULL;
	for (size_t i = 0; i + 1 < n && i + 1 < V1_MAX; i++)
		if (p[i] == '\r' && p[i + 1] == '\n') {
			crlf = p + i;
			break;
		}
	if (!crlf)
		return n >= V1_MAX ? -1 : 0;
	char line[V1_MAX + 1], *f[7], *save = NULL;
	size_t len = (size_t)(crlf - p);
	memcpy(line, p, len);
	line[len] = '\0';
	int nf = 0;
	for (char *t = strtok_r(line, " ", &save); t && nf < 7; t = strtok_r(NULL, " ", &save))
		f[nf++] = t;
	int hlen = (int)len + 2;
	if (nf >= 2 && !strcmp(f[1], "UNKNOWN"))
		return hlen; /* the receiver must ignore the rest */
	if (nf != 6 || (strcmp(f[1], "TCP4") && strcmp(f[1], "TCP6")))
		return -1;
	unsigned char bin[16];
	int fam = f[1][3] == '4' ? AF_INET : AF_INET6;
	int dport;
	if (inet_pton(fam, f[2], bin) != 1 || inet_pton(fam, f[3], bin) != 1 ||
	    !is_port(f[4], port) || !is_port(f[5], &dport))
		return -1;
	snprintf(addr, cap, "%s", f[2]);
	return hlen;
}

/* 12-byte signature, version/command, family/protocol, 2-byte length */
static int parse_v2(const unsigned char *p, size_t n, char *addr, size_t cap, int *port)
{
	if (n < 16)
		return 0;
	unsigned ver = p[12] >> 4, cmd = p[12] & 0x0F, fam = p[13];
	size_t len = (size_t)p[14] << 8 | p[15];
	if (ver != 2 || cmd > 1)
		return -1;
	if (n < 16 + len)
		return 0;
	int total = (int)(16 + len);
	if (cmd == 0)
		return total; /* LOCAL: the proxy's own connection (health check) */
	const unsigned char *a = p + 16;
	if (fam == 0x11 || fam == 0x12) { /* TCP or UDP over IPv4 */
		if (len < 12)
			return -1;
		inet_ntop(AF_INET, a, addr, (socklen_t)cap);
		*port = a[8] << 8 | a[9];
	} else if (fam == 0x21 || fam == 0x22) { /* over IPv6 */
		if (len < 36)
			return -1;
		inet_ntop(AF_INET6, a, addr, (socklen_t)cap);
		*port = a[32] << 8 | a[33];
	} else if ((fam & 0xF0) > 0x30 || (fam & 0x0F) > 2) {
		return -1; /* not a defined family or protocol */
	}
	return total; /* UNSPEC or AF_UNIX: keep the connection's own peer */
}

int proxy_parse(const unsigned char *p, size_t n, char *addr, size_t cap, int *port)
{
	size_t k = n < 12 ? n : 12;
	if (!memcmp(p, v2_sig, k))
		return k < 12 ? 0 : parse_v2(p, n, addr, cap, port);
	k = n < 6 ? n : 6;
	if (!memcmp(p, "PROXY ", k))
		return k < 6 ? 0 : parse_v1(p, n, addr, cap, port);
	return -1;
}
