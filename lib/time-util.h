/* Monotonic time for deadlines and durations, and sleeping. */
#pragma once

#include <stdint.h>

/* CLOCK_MONOTONIC in milliseconds: only differences mean anything. Signed, so that
 * "deadline - time_now_ms()" may go negative. */
int64_t time_now_ms(void);

/* Sleep ms milliseconds on the monotonic clock, resuming after signal interruptions. */
void time_sleep_ms(long ms);
