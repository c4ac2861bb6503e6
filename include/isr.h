/* mod_isr: Incremental Static Regeneration (stale-while-revalidate) for httpd.
 * Common definitions shared by every source file. */
#ifndef ISR_H
#define ISR_H

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>

#define ISR_VERSION "0.1.0"

/* Our own log tags: AH numbers belong to modules shipped with httpd.
 * The next free number is kept in LOGNO-NEXT at the top of the repo. */
#define ISR_LOGNO(n) "ISR" #n ": "

extern module AP_MODULE_DECLARE_DATA isr_module;

/* mod_isr.c declares the module itself (AP_DECLARE_MODULE), which sets up
 * per-module logging there; every other file does it here. */
#ifndef ISR_MODULE_RECORD
APLOG_USE_MODULE(isr);
#endif

#endif /* ISR_H */
