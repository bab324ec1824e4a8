#define _GNU_SOURCE
/* A WebSocket echo server for the guest (tests only): `wsecho PORT`, one connection at a time,
 * each message sent back with its opcode. Static, libc only: the minimal guest has no runtime. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

static void sha1(const uint8_t *msg, size_t len, uint8_t out[20]) {
  uint32_t h[5] = {0x67452301, 0xEFCDAB89, 0x98BADCFE, 0x10325476, 0xC3D2E1F0};
  size_t total = ((len + 8) / 64 + 1) * 64;
  uint8_t *m = calloc(total, 1);
  memcpy(m, msg, len);
  m[len] = 0x80;
  uint64_t bits = (uint64_t)len * 8;
  for (int i = 0; i < 8; i++) m[total - 1 - i] = (uint8_t)(bits >> (8 * i));
  for (size_t off = 0; off < total; off += 64) {
    uint32_t w[80];
    for (int i = 0; i < 16; i++)
      w[i] = (uint32_t)m[off + 4 * i] << 24 | (uint32_t)m[off + 4 * i + 1] << 16 | (uint32_t)m[off + 4 * i + 2] << 8 |
             m[off + 4 * i + 3];
    for (int i = 16; i < 80; i++) {
      uint32_t x = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16];
      w[i] = x << 1 | x >> 31;
    }
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int i = 0; i < 80; i++) {
      uint32_t f, k;
      if (i < 20) f = (b & c) | (~b & d), k = 0x5A827999;
      else if (i < 40) f = b ^ c ^ d, k = 0x6ED9EBA1;
      else if (i < 60) f = (b & c) | (b & d) | (c & d), k = 0x8F1BBCDC;
      else f = b ^ c ^ d, k = 0xCA62C1D6;
      uint32_t t = (a << 5 | a >> 27) + f + e + k + w[i];
      e = d, d = c, c = b << 30 | b >> 2, b = a, a = t;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
  }
  free(m);
  for (int i = 0; i < 20; i++) out[i] = (uint8_t)(h[i / 4] >> (24 - 8 * (i % 4)));
}

static void base64(const uint8_t *in, size_t len, char *out) {
  const char *t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  size_t o = 0;
  for (size_t i = 0; i < len; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < len ? (uint32_t)in[i + 1] << 8 : 0) | (i + 2 < len ? in[i + 2] : 0);
    out[o++] = t[v >> 18 & 63];
    out[o++] = t[v >> 12 & 63];
    out[o++] = i + 1 < len ? t[v >> 6 & 63] : '=';
    out[o++] = i + 2 < len ? t[v & 63] : '=';
  }
  out[o] = 0;
}

static int readn(int fd, uint8_t *buf, size_t n) {
  for (size_t got = 0; got < n;) {
    ssize_t r = read(fd, buf + got, n - got);
    if (r <= 0) return -1;
    got += (size_t)r;
  }
  return 0;
}

static void serve(int fd) {
  char req[8192];
  size_t len = 0;
  while (len < sizeof req - 1) {
    ssize_t r = read(fd, req + len, sizeof req - 1 - len);
    if (r <= 0) return;
    len += (size_t)r;
    req[len] = 0;
    if (strstr(req, "\r\n\r\n")) break;
  }
  char *key = strcasestr(req, "sec-websocket-key:");
  if (!key) return;
  key += strlen("sec-websocket-key:");
  while (*key == ' ') key++;
  char accept_in[128];
  size_t k = 0;
  while (key[k] && key[k] != '\r' && k < 60) k++;
  snprintf(accept_in, sizeof accept_in, "%.*s258EAFA5-E914-47DA-95CA-C5AB0DC85B11", (int)k, key);
  uint8_t digest[20];
  sha1((const uint8_t *)accept_in, strlen(accept_in), digest);
  char accept[40];
  base64(digest, 20, accept);
  char head[256];
  int n = snprintf(head, sizeof head,
                   "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                   "Sec-WebSocket-Accept: %s\r\n\r\n",
                   accept);
  if (write(fd, head, (size_t)n) != n) return;
  for (;;) {
    uint8_t h[2], mask[4];
    if (readn(fd, h, 2)) return;
    uint64_t plen = h[1] & 0x7f;
    if (plen == 126) {
      uint8_t e[2];
      if (readn(fd, e, 2)) return;
      plen = (uint64_t)e[0] << 8 | e[1];
    } else if (plen == 127) {
      uint8_t e[8];
      if (readn(fd, e, 8)) return;
      plen = 0;
      for (int i = 0; i < 8; i++) plen = plen << 8 | e[i];
    }
    if (plen > 1 << 20) return;
    if ((h[1] & 0x80) && readn(fd, mask, 4)) return;
    uint8_t *p = malloc(plen + 10);
    if (readn(fd, p + 10, plen)) return;
    if (h[1] & 0x80)
      for (uint64_t i = 0; i < plen; i++) p[10 + i] ^= mask[i % 4];
    int op = h[0] & 0x0f;
    size_t hl;
    uint8_t *f;
    if (plen < 126) hl = 2, f = p + 8, f[1] = (uint8_t)plen;
    else if (plen < 65536) hl = 4, f = p + 6, f[1] = 126, f[2] = (uint8_t)(plen >> 8), f[3] = (uint8_t)plen;
    else {
      hl = 10, f = p, f[1] = 127;
      for (int i = 0; i < 8; i++) f[2 + i] = (uint8_t)(plen >> (56 - 8 * i));
    }
    f[0] = (uint8_t)(0x80 | (op == 9 ? 10 : op));
    ssize_t w = write(fd, f, hl + plen);
    free(p);
    if (w < 0 || op == 8) return;
  }
}

int main(int argc, char **argv) {
  int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(argc > 1 ? atoi(argv[1]) : 8081)};
  if (bind(s, (struct sockaddr *)&a, sizeof a) || listen(s, 8)) return perror("wsecho"), 1;
  for (;;) {
    int c = accept(s, 0, 0);
    if (c < 0) continue;
    serve(c);
    close(c);
  }
}
