/*
 * datadir.c - the data directory lookup (see datadir.h).
 */
#include "base/datadir.h"

#include <stdlib.h>

const char *tf_data_dir(void)
{
    const char *d = getenv("TOPICFLOW_DATA_DIR");

    if (d && *d)
        return d;
#ifdef TOPICFLOW_SOURCE_DATA_DIR
    return TOPICFLOW_SOURCE_DATA_DIR;
#else
    return "data";
#endif
}
