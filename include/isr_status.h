/* mod_isr's section of mod_status (/server-status and ?auto). */
#ifndef ISR_STATUS_H
#define ISR_STATUS_H

#include <apr_pools.h>

void isr_status_register_hooks(apr_pool_t *p);

#endif /* ISR_STATUS_H */
