#include <stdint.h>
#include "CBerthTLS.h"

/* The BoringSSL that swift-nio-ssl vendors carries a CNIOBoringSSL_ prefix on every
   symbol; it is linked into every binary that uses NIOSSL. */
extern uint32_t CNIOBoringSSL_SSL_CTX_set_options(void *ctx, uint32_t options);
extern const void *CNIOBoringSSL_SSL_get_current_cipher(const void *ssl);
extern const char *CNIOBoringSSL_SSL_CIPHER_standard_name(const void *cipher);

#define BERTH_SSL_OP_CIPHER_SERVER_PREFERENCE 0x00400000u

void cberth_tls_prefer_server_ciphers(void *ssl_ctx) {
    CNIOBoringSSL_SSL_CTX_set_options(ssl_ctx, BERTH_SSL_OP_CIPHER_SERVER_PREFERENCE);
}

const char *cberth_tls_cipher_name(const void *ssl) {
    const void *cipher = CNIOBoringSSL_SSL_get_current_cipher(ssl);
    return cipher ? CNIOBoringSSL_SSL_CIPHER_standard_name(cipher) : 0;
}
