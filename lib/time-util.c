#include "time-util.h"

#include <errno.h>
#include <time.h>

int64_t time_now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int time_sleep_ms_cancellable(long ms, const volatile sig_atomic_t *cancel) {
        if (!cancel) {
                time_sleep_ms(ms);
                return 0;
        }
        /* An absolute end, so slices and interruptions do not add up to more than ms. */
        struct timespec end;
        clock_gettime(CLOCK_MONOTONIC, &end);
        end.tv_sec += ms / 1000;
        end.tv_nsec += (ms % 1000) * 1000000L;
        if (end.tv_nsec >= 1000000000L) {
                end.tv_sec++;
                end.tv_nsec -= 1000000000L;
        }
        for (;;) {
                if (*cancel)
                        return -ECANCELED;
                int64_t left = ((int64_t) end.tv_sec * 1000 + end.tv_nsec / 1000000) - time_now_ms();
                if (left <= 0)
                        return 0;
                if (left <= TIME_CANCEL_SLICE_MS) {
                        /* The last slice: to the exact end. */
                        int r = clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &end, NULL);
                        if (r == 0)
                                return 0;
                        continue; /* EINTR: look at the flag */
                }
                struct timespec slice = { .tv_sec = 0, .tv_nsec = TIME_CANCEL_SLICE_MS * 1000000L };
                (void) clock_nanosleep(CLOCK_MONOTONIC, 0, &slice, NULL);
        }
}

void time_sleep_ms(long ms) {
        struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };
        while (clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, &ts) == EINTR)
                ;
}
