/* isr-admin's live status page (src/isr_page.c). */
#ifndef ISR_PAGE_H
#define ISR_PAGE_H

#include <httpd.h>

/* The page (GET <admin>/ or <admin>/page): HTML with inline script that
 * polls <admin>/status and <admin>/entries. */
int isr_page_send(request_rec *r);

#endif /* ISR_PAGE_H */
