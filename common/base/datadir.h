/*
 * datadir.h - where topicflow's data files (stop words, sample templates) are: the one
 * lookup every program and test uses, so that they never disagree.
 */
#ifndef TF_DATADIR_H
#define TF_DATADIR_H

/* $TOPICFLOW_DATA_DIR when set and not empty, else the source tree's data/ compiled in
 * (TOPICFLOW_SOURCE_DATA_DIR). The string is not owned by the caller. */
const char *tf_data_dir(void);

#endif
