/*
 * trainstate: a trainer's whole state in one file, so that training stopped
 * between two steps continues, in this process or another, bit for bit as
 * if it had never stopped.
 *
 * The file holds everything a trainer carries from one step to the next:
 * the parameter arena, every weighted layer's power-iteration vectors, cap,
 * estimate and scale, the optimizer's arenas (Adam's moments, SGD's
 * velocity) and step count, the RNG, the epoch's order and the position in
 * it, the epoch and step counters and the running statistics of the epoch;
 * the learning rate follows from the epoch (optim_set_epoch) and the loss's
 * allocation from the settings.  It is a safetensors file of flat arrays
 * (checkpoint_save_arrays) whose metadata names the settings it was trained
 * with: the network, mode, caps, l2 weight, optimizer, loss, batch, seed,
 * held-out count, the network's threads (results depend on them in the last
 * bits) and the training images (their count, shape and a hash of their
 * bytes).  The planned number of epochs is not a setting: a run may be
 * extended.  It is not a checkpoint PyTorch or `sectorlab certify` reads
 * (checkpoint.h writes those).
 *
 * Saving is atomic (io.h) and allowed between steps except while an epoch's
 * end is under way (trainer_ending).  Loading validates the whole file
 * before it changes the trainer: a file that is not a training state, is
 * truncated or crafted, or was saved with other settings is refused with a
 * message naming the file and the first setting that differs (SL_ERR_FORMAT,
 * or SL_ERR_ARG for other settings), and the trainer is left as it was.
 */
#ifndef SECTORLAB_TRAINSTATE_H
#define SECTORLAB_TRAINSTATE_H

#include "sectorlab/status.h"
#include "sectorlab/train.h"

/* Write t's state to path (atomically).  SL_ERR_ARG during an epoch's end. */
sl_status trainstate_save(const struct trainer *t, const char *path, struct sl_error *err);

/*
 * Load the state at path into t, a trainer built by trainer_new with the
 * settings and training images the state was saved with (any planned
 * epochs).  t then continues exactly where the saved trainer was.  On error
 * t is unchanged.
 */
sl_status trainstate_load(struct trainer *t, const char *path, struct sl_error *err);

#endif
