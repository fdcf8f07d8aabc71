/* Monotonic time for deadlines and durations, and sleeping. */
#pragma once

#include <signal.h>
#include <stdint.h>

/* CLOCK_MONOTONIC in milliseconds: only differences mean anything. Signed, so that
 * "deadline - time_now_ms()" may go negative. */
int64_t time_now_ms(void);

/* Sleep ms milliseconds on the monotonic clock, resuming after signal interruptions. */
void time_sleep_ms(long ms);

/* The same, cut short once *cancel is nonzero (a flag a signal handler sets, such as
 * interrupt_signal_flag(); NULL: never). The flag is read before sleeping, whenever a signal
 * interrupts the sleep, and at least every TIME_CANCEL_SLICE_MS, so a flag set by another thread
 * or just before the sleep began is seen within that time. Returns 0 after the whole sleep, or
 * -ECANCELED. */
#define TIME_CANCEL_SLICE_MS 200
int time_sleep_ms_cancellable(long ms, const volatile sig_atomic_t *cancel);
