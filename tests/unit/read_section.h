/*
 * read_section.h - read sections that the unit tests count, so that a
 * teardown can end one a failed assertion left open: closing a store inside
 * a read section would wait forever.  Include once per test program.
 */
#ifndef SB_TEST_READ_SECTION_H
#define SB_TEST_READ_SECTION_H

#include "snapback.h"

static int read_depth;

static inline void read_begin(void)
{
    sb_read_lock();
    read_depth++;
}

static inline void read_end(void)
{
    read_depth--;
    sb_read_unlock();
}

#endif /* SB_TEST_READ_SECTION_H */
