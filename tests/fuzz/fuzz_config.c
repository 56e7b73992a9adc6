/* fuzz_config.c: libFuzzer target for the config loader. Any input must
 * load or be refused without a crash, leak or sanitizer report, and a
 * configuration that loads must print to YAML that loads to the same values. */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A failed property is a crash, so libFuzzer keeps the input. */
static void require(int ok)
{
    if (!ok)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct config_report r;
    config_report_init(&r);
    struct config *c = NULL;
    enum shoal_err rc = config_load_string("fuzz", (const char *)data, size, &c, &r);
    require((rc == SHOAL_OK) == (c != NULL));
    require(rc == SHOAL_OK || r.n > 0 || r.dropped > 0);
    config_report_fini(&r);
    if (!c)
        return 0;

    struct shoal_buf b;
    shoal_buf_init(&b, 1 << 20);
    require(config_print(c, &b) == SHOAL_OK);
    struct config *again = NULL;
    config_report_init(&r);
    require(config_load_string("printed", b.data, b.len, &again, &r) == SHOAL_OK);
    require(!strcmp(c->listen.socket, again->listen.socket));
    require(c->listen.tcp == again->listen.tcp && c->listen.tcp_port == again->listen.tcp_port);
    require(!memcmp(&c->limits, &again->limits, sizeof(c->limits)));
    require(c->log_level == again->log_level);
    require((c->auth_token == NULL) == (again->auth_token == NULL));
    config_report_fini(&r);
    config_free(again);
    shoal_buf_fini(&b);
    config_free(c);
    return 0;
}
