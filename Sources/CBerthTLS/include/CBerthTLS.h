#ifndef CBERTHTLS_H
#define CBERTHTLS_H
/* BoringSSL settings that swift-nio-ssl's TLSConfiguration does not offer. */

/* Sets SSL_OP_CIPHER_SERVER_PREFERENCE on an SSL_CTX: the server's order of cipher
   suites wins over the client's (RFC 9325 §4.2 recommends it for TLS 1.2). */
void cberth_tls_prefer_server_ciphers(void *ssl_ctx);

/* The standard (RFC) name of the cipher suite an SSL connection negotiated, or NULL
   before the handshake: for the mail log. */
const char *cberth_tls_cipher_name(const void *ssl);
#endif
