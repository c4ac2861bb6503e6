/* The signals prefork runs a child's exit in (SIGTERM, SIGHUP: just_die ->
 * clean_child_exit -> apr_pool_destroy(pchild), inside the handler). That
 * exit joins the refresh threads (isr_refresh.c), so it must never run on
 * one of them, nor on a thread that holds the zone mutex a refresh thread
 * may be waiting for. Threads the module creates block these signals for
 * good (a new thread inherits the mask of its creator), and a thread
 * blocks them while it holds the zone mutex; Linux then delivers them to
 * a thread that does not block them, or right after the unlock. */
#ifndef ISR_SIGNAL_H
#define ISR_SIGNAL_H

#include <pthread.h>
#include <signal.h>

static inline void isr_signals_block(sigset_t *saved)
{
    sigset_t block;

    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &block, saved);
}

static inline void isr_signals_restore(const sigset_t *saved)
{
    pthread_sigmask(SIG_SETMASK, saved, NULL);
}

#endif /* ISR_SIGNAL_H */
