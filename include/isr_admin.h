/* The operator's API (SetHandler isr-admin): purge and revalidate by URL,
 * key, path prefix, tag or the whole zone (src/isr_admin.c). */
#ifndef ISR_ADMIN_H
#define ISR_ADMIN_H

#include <apr_pools.h>

#define ISR_ADMIN_HANDLER "isr-admin"

void isr_admin_register_hooks(apr_pool_t *p);

#endif /* ISR_ADMIN_H */
